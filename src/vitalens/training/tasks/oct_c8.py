"""The ``oct.c8`` training task: one OCT B-scan → AMD, CNV, CSR, DME, DR, DRUSEN, MH or NORMAL (multi-class).

Reads OCT-C8 (``train|val|test/<CLASS>/*``, its published splits). No OCT-C8 images exist in this project's data,
so no model is bundled; ``vitalens train oct.c8 --data OCT-C8/`` trains one where the data is at hand (the design's
recipe: ``recipes/oct.c8.yaml``, ConvNeXt at 224 px).
"""

from __future__ import annotations

import logging

from vitalens.data.octc8 import OCTC8_LABEL_NAMES, OCTC8_LABELS
from vitalens.training.tasks._base import register_task
from vitalens.training.tasks._image import AdapterChoice, SingleImageTask

__all__ = ["OctC8Task"]

logger = logging.getLogger(__name__)


@register_task("oct.c8")
class OctC8Task(SingleImageTask):
    """Eight-class retinal OCT classification (OCT-C8)."""

    labels = list(OCTC8_LABELS)
    label_names = dict(OCTC8_LABEL_NAMES)
    problem = "multiclass"
    modality = "oct"
    input_slot = "oct"
    adapters = (AdapterChoice(name="oct-c8", cls="vitalens.data.octc8.OctC8Dataset"),)
    default_intended_use = (
        "Research and decision support: classifies one macular OCT B-scan into eight classes (AMD, CNV, CSR, DME, "
        "DR, drusen, macular hole, normal) for review by a retina specialist. Not a diagnosis."
    )
    default_limitations = (
        "OCT-C8 names no patient, so its published split may hold images of one patient on both sides; classes are "
        "exclusive. Performance outside its sources is unknown. Decision support only."
    )
