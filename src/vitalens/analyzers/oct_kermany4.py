"""``oct.kermany4``: one macular OCT B-scan → CNV, DME, DRUSEN or NORMAL (Kermany OCT2017 classes; decision support).

The card's head (softmax) and temperature give the class probabilities; the most probable class carries its next
step (NICE NG82 and the AAO Preferred Practice Patterns, worded as a suggestion) and a Grad-CAM map on the B-scan.
A photograph, a fundus image or a blank picture sent as an OCT is refused before the model runs.
"""

from __future__ import annotations

import logging

from vitalens.analyzers._contract import Classes, Narrative, Overlays, Table
from vitalens.analyzers._oct import OctClassAnalyzer, oct_labels
from vitalens.analyzers._registry import register_analyzer
from vitalens.data.kermany import KERMANY_LABEL_NAMES, KERMANY_LABELS
from vitalens.domain import InputName, Modality
from vitalens.slots import ImageLimits

__all__ = ["OctKermany4Analyzer"]

logger = logging.getLogger(__name__)


@register_analyzer(
    "oct.kermany4",
    modality=Modality.OCT,
    title="OCT B-scan (4 classes)",
    inputs=(InputName.OCT,),
    limits={"oct": ImageLimits(colour="gray", min_side=128, max_aspect=4.0)},
    default_artifact="oct-kermany4",
    dataset="kermany",
    quality_gates={"oct": ("oct.gradable",)},
    render=(
        Classes(title="OCT class", codes=KERMANY_LABELS, ordered=False, expected_key=None),
        Table(
            title="Suggested next step (decision support)",
            key="recommendations",
            columns=(("finding", "Finding"), ("next_step", "Suggested next step"), ("source", "Source")),
        ),
        Overlays(title="Grad-CAM heat map", slots=("oct",)),
        Narrative(),
    ),
    labels=oct_labels(KERMANY_LABELS, KERMANY_LABEL_NAMES),
    description="One OCT B-scan → CNV, DME, drusen or normal",
    train_command="vitalens train oct.kermany4 --data OCT2017/ --out runs/oct-kermany4",
)
class OctKermany4Analyzer(OctClassAnalyzer):
    """Four-class retinal OCT (Kermany et al. 2018)."""

    plausibility_gate = "oct.kermany4.plausibility"
