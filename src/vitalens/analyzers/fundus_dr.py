"""``fundus.dr``: a colour fundus photograph of each eye present → ICDR diabetic-retinopathy grade 0–4.

Per eye: the five grade probabilities (the card's ordinal head and calibration), the most probable and the expected
grade ``Σ k·p_k``, and the **referable DR** finding (grade ≥ 2) at the threshold the card chose on validation at a
stated sensitivity. The card's preprocessing applies the Ben-Graham filter to a raw photograph (skipped for an image
that is already filtered, as the APTOS training images were), so an ODIR or clinic photograph reaches the net the way
the training images did. Each grade carries the follow-up the ICO Guidelines for Diabetic Eye Care (2017) give for it,
worded as a suggested next step for the clinician.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vitalens.analyzers._contract import Classes, Findings, Narrative, Overlays, Table
from vitalens.analyzers._registry import register_analyzer
from vitalens.analyzers._single_image import (
    BLANK_STD,
    FUNDUS_MIN_COLOURFULNESS,
    FUNDUS_RED_DOMINANCE_FLAG,
    FUNDUS_RED_DOMINANCE_REFUSE,
    Recommendation,
    SingleImageAnalyzer,
    blank_measure,
    fundus_colour_measures,
)
from vitalens.artifacts import expected_grade
from vitalens.domain import (
    AnalysisResult,
    Coding,
    Explanation,
    Finding,
    InputName,
    Modality,
    QualityResult,
    StudyInputs,
)
from vitalens.slots import ImageLimits
from vitalens.terminology import snomed

__all__ = ["FundusDrAnalyzer", "DR_RECOMMENDATIONS", "ICO_2017"]

logger = logging.getLogger(__name__)

ICO_2017 = "International Council of Ophthalmology, ICO Guidelines for Diabetic Eye Care (updated 2017), Table 4"

#: Follow-up per ICDR grade (without macular oedema), after ICO 2017; a suggestion for the clinician, not an order.
DR_RECOMMENDATIONS: dict[str, Recommendation] = {
    "0": Recommendation(
        code="0",
        finding="No apparent diabetic retinopathy",
        next_step="Rescreen in 1–2 years; continue glycaemic, blood-pressure and lipid control.",
        urgency="routine",
        source=ICO_2017,
    ),
    "1": Recommendation(
        code="1",
        finding="Mild non-proliferative DR",
        next_step="Rescreen in 1–2 years (sooner if control is poor); no referral unless macular oedema is suspected.",
        urgency="routine",
        source=ICO_2017,
    ),
    "2": Recommendation(
        code="2",
        finding="Moderate non-proliferative DR (referable)",
        next_step="Refer to an eye specialist; re-examination within 6–12 months.",
        urgency="referral",
        source=ICO_2017,
    ),
    "3": Recommendation(
        code="3",
        finding="Severe non-proliferative DR (referable)",
        next_step="Refer to an eye specialist to be seen within 3 months; consider panretinal photocoagulation.",
        urgency="soon",
        source=ICO_2017,
    ),
    "4": Recommendation(
        code="4",
        finding="Proliferative DR (referable)",
        next_step="Urgent referral: to be seen by an eye specialist within 1 month (laser or anti-VEGF treatment).",
        urgency="urgent",
        source=ICO_2017,
    ),
}

#: SNOMED CT codes of the grades that name one disorder.
GRADE_CODES: dict[str, tuple[Coding, ...]] = {
    "1": (snomed("312903003", "Mild nonproliferative diabetic retinopathy"),),
    "2": (snomed("312904009", "Moderate nonproliferative diabetic retinopathy"),),
    "3": (snomed("312905005", "Severe nonproliferative diabetic retinopathy"),),
    "4": (snomed("59276001", "Proliferative diabetic retinopathy"),),
    "RDR": (snomed("4855003", "Diabetic retinopathy"),),
}

_EYES = (InputName.FUNDUS_RIGHT.value, InputName.FUNDUS_LEFT.value)
_EYE_NAME = {"fundus_right": "right eye (OD)", "fundus_left": "left eye (OS)"}


@register_analyzer(
    "fundus.dr",
    modality=Modality.FUNDUS,
    title="Diabetic retinopathy grade",
    any_of=[(InputName.FUNDUS_RIGHT, InputName.FUNDUS_LEFT)],
    limits={
        "fundus_left": ImageLimits(colour="rgb", min_side=128, max_aspect=2.0),
        "fundus_right": ImageLimits(colour="rgb", min_side=128, max_aspect=2.0),
    },
    default_artifact="fundus-dr",
    dataset="aptos2019",
    quality_gates={"fundus_left": ("fundus.gradable",), "fundus_right": ("fundus.gradable",)},
    render=(
        Findings(title="Referable diabetic retinopathy", codes=("RDR",)),
        Classes(title="DR grade (ICDR)", codes=("0", "1", "2", "3", "4"), ordered=True, expected_key="expected_grade"),
        Table(
            title="Suggested next step (decision support)",
            key="recommendations",
            columns=(
                ("eye", "Eye"),
                ("finding", "Finding"),
                ("next_step", "Suggested next step"),
                ("source", "Source"),
            ),
        ),
        Overlays(title="Grad-CAM heat maps", slots=("fundus_right", "fundus_left")),
        Narrative(),
    ),
    labels=(
        ("0", "No DR"),
        ("1", "Mild non-proliferative DR"),
        ("2", "Moderate non-proliferative DR"),
        ("3", "Severe non-proliferative DR"),
        ("4", "Proliferative DR"),
    ),
    description="One fundus photograph per eye → ICDR DR grade 0–4 and referable DR (grade ≥ 2)",
    train_command="vitalens train fundus.dr --data aptos2019/ --out runs/fundus-dr",
)
class FundusDrAnalyzer(SingleImageAnalyzer):
    """Diabetic-retinopathy grading of each eye present."""

    plausibility_gate = "fundus.dr.plausibility"

    def slot_limits(self, slot: str) -> Any:
        limits = super().slot_limits(slot)
        if slot in _EYES and isinstance(limits, ImageLimits) and self.availability().ready:
            limits = limits.tighten(ImageLimits(min_side=self.card.input.min_size or 64))
        return limits

    def plausibility(self, slot: str, image: np.ndarray) -> QualityResult:
        """Refuse a blank or greyscale image or one of non-fundus colours; flag a weakly red one."""
        from vitalens.quality import flagged, passed, refused

        gate = self.plausibility_gate
        std = blank_measure(image)
        colourfulness, red = fundus_colour_measures(image)
        metrics = {
            "luminance_std": round(std, 3),
            "colourfulness": round(colourfulness, 3),
            "red_dominance": round(red, 3),
        }
        if std < BLANK_STD:
            return refused(slot, gate, f"blank image (luminance std {std:.2f} < {BLANK_STD:g})", **metrics)
        if colourfulness < FUNDUS_MIN_COLOURFULNESS:
            return refused(
                slot,
                gate,
                f"greyscale image where a colour fundus photograph is expected (colourfulness {colourfulness:.1f} "
                f"< {FUNDUS_MIN_COLOURFULNESS:g}): an OCT scan or a radiograph?",
                **metrics,
            )
        if red < FUNDUS_RED_DOMINANCE_REFUSE:
            return refused(slot, gate, f"colours unlike a fundus photograph (red dominance {red:.1f})", **metrics)
        if red < FUNDUS_RED_DOMINANCE_FLAG:
            return flagged(slot, gate, f"weakly red for a fundus photograph (red dominance {red:.1f})", **metrics)
        return passed(slot, gate, **metrics)

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        card = self.card
        slots = [s for s in _EYES if inputs.get(s) is not None]
        images = [inputs.get(s) for s in slots]
        probs, geometries, batch = self.classify(images)
        rdr = next((d for d in card.derived if d.code == "RDR"), None)
        grades = list(card.labels)
        findings: list[Finding] = []
        expected: dict[str, float] = {}
        top: dict[str, str] = {}
        recommendations: list[dict[str, str]] = []
        lines: list[str] = []
        calibrated = card.calibration.method != "none" or card.output.head == "regression"
        for slot, p in zip(slots, probs, strict=True):
            k = int(np.argmax(p))
            top[slot] = grades[k]
            expected[slot] = float(expected_grade(p[None])[0])
            for j, code in enumerate(grades):
                findings.append(
                    Finding(
                        code=code,
                        name=card.name_of(code),
                        probability=float(np.clip(p[j], 0, 1)),
                        positive=j == k,
                        calibrated=calibrated,
                        input_name=slot,
                        codes=list(GRADE_CODES.get(code, ())),
                    )
                )
            line = (
                f"{_EYE_NAME[slot][0].upper()}{_EYE_NAME[slot][1:]}: most probable grade {grades[k]} "
                f"({card.name_of(grades[k])}, "
                f"p = {p[k]:.2f}); expected grade {expected[slot]:.1f}"
            )
            severity = k
            if rdr is not None:
                p_rdr = float(np.clip(p[[grades.index(c) for c in rdr.classes]].sum(), 0, 1))
                positive = p_rdr >= rdr.threshold
                findings.append(
                    Finding(
                        code="RDR",
                        name=rdr.name,
                        probability=p_rdr,
                        threshold=rdr.threshold,
                        positive=positive,
                        calibrated=calibrated,
                        input_name=slot,
                        codes=list(GRADE_CODES["RDR"]),
                    )
                )
                line += (
                    f"; referable DR {p_rdr:.2f} {'≥' if positive else '<'} threshold {rdr.threshold:.2f} "
                    f"({rdr.threshold_method})"
                )
                if positive:
                    severity = max(severity, 2)
            rec = DR_RECOMMENDATIONS.get(grades[severity])
            if rec is not None:
                recommendations.append({"eye": _EYE_NAME[slot], **rec})
            lines.append(line + ".")
        worst = max(recommendations, key=lambda r: int(r["code"]), default=None)
        summary = " ".join(lines)
        if worst is not None:
            summary += f" Suggested next step (decision support, {worst['source']}): {worst['next_step']}"
        pre = self.preprocess()
        extras: dict[str, Any] = {
            "expected_grade": expected,
            "most_probable_grade": top,
            "recommendations": recommendations,
            "backend": self.backend,
            "preprocessing": "Ben-Graham filter (skipped where the image is already filtered)"
            if pre.ben_graham is not None
            else "no Ben-Graham filter",
        }
        result = self.base_result(findings=findings, explanation=summary, extras=extras)
        if card.demonstration:
            result.warnings.append(
                f"Demonstration model trained on {card.trained_on}: not validated, not for clinical use."
            )
        if explain:
            result.explanations.extend(self._explain(slots, images, findings, batch, geometries, rdr))
        return result

    def _explain(
        self,
        slots: list[str],
        images: list[np.ndarray],
        findings: list[Finding],
        batch: Any,
        geometries: list[Any],
        rdr: Any,
    ) -> list[Explanation]:
        """Grad-CAM per positive finding of each eye: the referable-DR map, and the most probable grade if > 0."""
        from vitalens.explain import overlay_png

        out: list[Explanation] = []
        for i, slot in enumerate(slots):
            targets: list[tuple[str, list[str], str]] = []
            for f in findings:
                if f.input_name != slot or not f.positive:
                    continue
                if f.code == "RDR" and rdr is not None:
                    targets.append(("RDR", list(rdr.classes), f.name))
                elif f.code != "RDR" and f.code != "0":
                    targets.append((f.code, [f.code], f"grade {f.code} ({f.name})"))
            heats = self.gradcams(batch[i], [classes for _, classes, _ in targets], geometries[i])
            for (code, _classes, what), heat in zip(targets, heats, strict=True):
                out.append(
                    Explanation(
                        target=code,
                        input_name=slot,
                        method="grad-cam",
                        heatmap=heat,
                        overlay_png=overlay_png(images[i], heat),
                        note=f"Grad-CAM of log P({what}) on the {_EYE_NAME[slot]}",
                    )
                )
        return out
