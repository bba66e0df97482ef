"""``oct.c8``: one macular OCT B-scan → AMD, CNV, CSR, DME, DR, DRUSEN, MH or NORMAL (OCT-C8 classes).

No model is bundled: no OCT-C8 images exist in this project's data, and a model trained on the synthetic twin would
say nothing about patients. The analyzer therefore reports "no bundled model" with the command that trains one
(``vitalens train oct.c8 --data OCT-C8/``, the design's ConvNeXt recipe in ``recipes/oct.c8.yaml``) and runs on any
artifact given to it (``vitalens analyze oct.c8 --artifact runs/oct-c8/artifact ...``).
"""

from __future__ import annotations

import logging

from vitalens.analyzers._contract import Classes, Narrative, Overlays, Table
from vitalens.analyzers._oct import OctClassAnalyzer, oct_labels
from vitalens.analyzers._registry import register_analyzer
from vitalens.data.octc8 import OCTC8_LABEL_NAMES, OCTC8_LABELS
from vitalens.domain import InputName, Modality
from vitalens.slots import ImageLimits

__all__ = ["OctC8Analyzer"]

logger = logging.getLogger(__name__)


@register_analyzer(
    "oct.c8",
    modality=Modality.OCT,
    title="OCT B-scan (8 classes)",
    inputs=(InputName.OCT,),
    limits={"oct": ImageLimits(colour="gray", min_side=128, max_aspect=4.0)},
    default_artifact="oct-c8",
    dataset="octc8",
    quality_gates={"oct": ("oct.gradable",)},
    render=(
        Classes(title="OCT class", codes=OCTC8_LABELS, ordered=False, expected_key=None),
        Table(
            title="Suggested next step (decision support)",
            key="recommendations",
            columns=(("finding", "Finding"), ("next_step", "Suggested next step"), ("source", "Source")),
        ),
        Overlays(title="Grad-CAM heat map", slots=("oct",)),
        Narrative(),
    ),
    labels=oct_labels(OCTC8_LABELS, OCTC8_LABEL_NAMES),
    description="One OCT B-scan → 8 OCT-C8 classes (no bundled model: train one on OCT-C8)",
    train_command="vitalens train oct.c8 --data OCT-C8/ --out runs/oct-c8",
)
class OctC8Analyzer(OctClassAnalyzer):
    """Eight-class retinal OCT (OCT-C8)."""

    plausibility_gate = "oct.c8.plausibility"
