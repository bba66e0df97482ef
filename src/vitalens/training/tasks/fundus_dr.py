"""The ``fundus.dr`` training task: one fundus photograph → ICDR diabetic-retinopathy grade 0–4 (ordinal).

Reads APTOS 2019 (``train.csv`` + ``train_images/``) or RetinaMNIST (``retinamnist[_N].npz``, official splits).
The grade is ordinal: the recipe's loss picks softmax cross-entropy, CORN or regression with learned cut-points.
Referable DR (grade ≥ 2, moderate NPDR or worse) is a derived finding whose operating threshold is chosen on the
validation split at the recipe's target sensitivity (screening programmes work at ≥ 85–90 %).
"""

from __future__ import annotations

import logging

from vitalens.data.aptos import DR_GRADE_NAMES, DR_GRADES, REFERABLE_DR_MIN_GRADE
from vitalens.training.tasks._base import register_task
from vitalens.training.tasks._image import AdapterChoice, SingleImageTask

__all__ = ["FundusDrTask"]

logger = logging.getLogger(__name__)


@register_task("fundus.dr")
class FundusDrTask(SingleImageTask):
    """Diabetic-retinopathy grading from one fundus photograph."""

    labels = list(DR_GRADES)
    label_names = dict(DR_GRADE_NAMES)
    problem = "ordinal"
    modality = "fundus"
    input_slot = "fundus"
    derived_findings = {
        "RDR": (
            "Referable diabetic retinopathy (ICDR grade ≥ 2)",
            [g for g in DR_GRADES if int(g) >= REFERABLE_DR_MIN_GRADE],
        )
    }
    adapters = (
        AdapterChoice(name="aptos2019", cls="vitalens.data.aptos.AptosDataset"),
        AdapterChoice(
            name="medmnist-retina", cls="vitalens.data.medmnist.MedMnistDataset", kwargs={"flag": "retinamnist"}
        ),
    )
    default_intended_use = (
        "Research and decision support: grades diabetic retinopathy (ICDR 0–4) on one colour fundus photograph "
        "of an adult with diabetes and flags referable DR (grade ≥ 2) for review by an eye-care professional. "
        "Not a diagnosis; does not replace a dilated eye examination."
    )
    default_limitations = (
        "APTOS 2019 images come from one Indian hospital network and name no patient (each image is treated as its "
        "own patient, so two images of one person may sit in different splits); grades are single-grader labels. "
        "Macular oedema is not graded. Performance on other cameras and populations is unknown. Decision support only."
    )
