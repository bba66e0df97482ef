"""The glossary shown in the web app's sidebar: conditions, indicators and measurements, with references.

Why a module of plain data: the same entries feed the glossary page and the tooltips on result pages, and a
reviewer can check every sentence and reference in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["GlossaryEntry", "GLOSSARY", "glossary_sections"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlossaryEntry:
    """One term: ``section`` groups entries, ``code`` is the label code where there is one."""

    section: str
    term: str
    code: str | None
    text: str
    reference: str


_ODIR = "Li N. et al., ODIR-2019 Ocular Disease Intelligent Recognition challenge dataset, Peking University, 2019."
_ECG_STD = (
    "Rautaharju P.M. et al., AHA/ACCF/HRS recommendations for the standardization and interpretation of the ECG, "
    "part IV: ST segment, T and U waves, and the QT interval. Circulation 2009;119:e241–e250."
)

GLOSSARY: tuple[GlossaryEntry, ...] = (
    GlossaryEntry("Conditions (fundus)", "Normal", "N", "No sign of the other seven categories in either eye.", _ODIR),
    GlossaryEntry(
        "Conditions (fundus)",
        "Diabetic retinopathy",
        "D",
        "Damage to the retinal vessels from diabetes: microaneurysms, haemorrhages, hard exudates.",
        _ODIR,
    ),
    GlossaryEntry(
        "Conditions (fundus)",
        "Glaucoma",
        "G",
        "Optic-nerve damage, seen as an enlarged optic cup (high cup-to-disc ratio).",
        _ODIR,
    ),
    GlossaryEntry("Conditions (fundus)", "Cataract", "C", "Clouding of the lens, which blurs the whole image.", _ODIR),
    GlossaryEntry(
        "Conditions (fundus)",
        "Age-related macular degeneration",
        "A",
        "Drusen and pigment changes at the macula in older adults.",
        _ODIR,
    ),
    GlossaryEntry(
        "Conditions (fundus)",
        "Hypertensive retinopathy",
        "H",
        "Vessel narrowing, arteriovenous nicking, flame haemorrhages from high blood pressure.",
        "Wong T.Y., Mitchell P., Hypertensive retinopathy. N Engl J Med 2004;351:2310–2317.",
    ),
    GlossaryEntry(
        "Conditions (fundus)",
        "Pathological myopia",
        "M",
        "Degenerative changes of a highly myopic eye: tessellation, atrophy around the disc.",
        _ODIR,
    ),
    GlossaryEntry("Conditions (fundus)", "Other abnormalities", "O", "Any other finding graded by the readers.", _ODIR),
    GlossaryEntry(
        "Indicators",
        "Cardiovascular risk band",
        None,
        "Low / Medium / High from the eyes → heart proxies (retinal signs of hypertension and "
        "diabetes, with age). Shown in green, amber or red and always spelled out in words.",
        "Poplin R. et al., Prediction of cardiovascular risk factors from retinal fundus photographs "
        "via deep learning. Nat Biomed Eng 2018;2:158–164.",
    ),
    GlossaryEntry(
        "Indicators",
        "Proxy",
        None,
        "A model output used as a stand-in for a risk factor that was not measured (e.g. hypertension "
        "suggested by retinal vessels). A proxy is not a measurement of blood pressure or glucose.",
        "Wong T.Y., Mitchell P., N Engl J Med 2004;351:2310–2317.",
    ),
    GlossaryEntry(
        "Indicators",
        "ECG risk tier",
        None,
        "Low / Moderate / High from calibrated probabilities of the ECG superclasses; the edges are shown beside the "
        "tier on the results page and in the report.",
        "Wagner P. et al., PTB-XL, a large publicly available electrocardiography dataset. Sci Data 2020;7:154.",
    ),
    GlossaryEntry(
        "Indicators",
        "Threshold",
        None,
        "The probability at or above which a finding is called positive, chosen on held-out data by the "
        "method named in the model card.",
        "Model card of each analyzer (shown on the results page).",
    ),
    GlossaryEntry(
        "Indicators",
        "Heat map (Grad-CAM)",
        None,
        "Where in the image the model's evidence for a finding was strongest. It shows attention, not a "
        "lesion outline.",
        "Selvaraju R.R. et al., Grad-CAM. ICCV 2017; Adebayo J. et al., Sanity checks for saliency maps. NeurIPS 2018.",
    ),
    GlossaryEntry(
        "Measurements (ECG)",
        "Heart rate",
        None,
        "Beats per minute from the R–R intervals; 50–100 bpm is the usual resting range in adults.",
        _ECG_STD,
    ),
    GlossaryEntry(
        "Measurements (ECG)",
        "PR interval",
        None,
        "Atrial depolarisation to ventricular onset; about 120–200 ms.",
        _ECG_STD,
    ),
    GlossaryEntry(
        "Measurements (ECG)",
        "QRS duration",
        None,
        "Ventricular depolarisation; wider than 120 ms suggests a conduction delay (bundle-branch block).",
        _ECG_STD,
    ),
    GlossaryEntry(
        "Measurements (ECG)",
        "QT / QTc",
        None,
        "QT is ventricular depolarisation plus repolarisation; QTc corrects it for heart rate "
        "(Bazett: QT/√RR; Fridericia: QT/∛RR). Long QTc raises the risk of arrhythmia.",
        "Bazett H.C., Heart 1920;7:353–370; Fridericia L.S., Acta Med Scand 1920;53:469–486.",
    ),
    GlossaryEntry(
        "Measurements (ECG)",
        "Electrical axis",
        None,
        "The mean direction of ventricular depolarisation in the frontal plane; −30° to +90° is normal.",
        _ECG_STD,
    ),
)


def glossary_sections() -> list[tuple[str, list[GlossaryEntry]]]:
    """The entries grouped by section, in declaration order."""
    sections: dict[str, list[GlossaryEntry]] = {}
    for entry in GLOSSARY:
        sections.setdefault(entry.section, []).append(entry)
    return list(sections.items())
