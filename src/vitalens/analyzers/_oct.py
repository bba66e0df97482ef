"""What the OCT analyzers (``oct.kermany4``, ``oct.c8``) share: the per-class next steps and the B-scan check.

Why here: both classify one macular B-scan into overlapping class sets (CNV, DME, DRUSEN, NORMAL, and AMD, CSR, DR,
MH for OCT-C8); a CNV means the same urgent referral whichever model found it, so the wording (written by the project
from the cited guidelines, as a suggested next step) is kept once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from vitalens.analyzers._single_image import (
    BLANK_STD,
    BSCAN_RATIO_FLAG,
    BSCAN_RATIO_REFUSE,
    Recommendation,
    SingleImageAnalyzer,
    blank_measure,
    bscan_structure_ratio,
)
from vitalens.domain import AnalysisResult, Explanation, Finding, QualityResult, StudyInputs
from vitalens.terminology import snomed

__all__ = ["OCT_RECOMMENDATIONS", "OctClassAnalyzer"]

logger = logging.getLogger(__name__)

AAO_AMD = "American Academy of Ophthalmology, Age-Related Macular Degeneration Preferred Practice Pattern (2019)"
NICE_AMD = "NICE guideline NG82, Age-related macular degeneration (2018)"
AAO_DR = "American Academy of Ophthalmology, Diabetic Retinopathy Preferred Practice Pattern (2019)"
AAO_MH = "American Academy of Ophthalmology, Idiopathic Macular Hole Preferred Practice Pattern (2019)"
CSC_GUIDE = (
    "van Rijssen T.J. et al., Central serous chorioretinopathy: towards an evidence-based treatment guideline, "
    "Prog. Retin. Eye Res. 73:100770 (2019)"
)

OCT_RECOMMENDATIONS: dict[str, Recommendation] = {
    "CNV": Recommendation(
        code="CNV",
        finding="Choroidal neovascularisation (neovascular AMD pattern)",
        next_step="Urgent referral to a retina (macular) service for assessment of anti-VEGF treatment.",
        urgency="urgent",
        source=f"{NICE_AMD}; {AAO_AMD}",
    ),
    "DME": Recommendation(
        code="DME",
        finding="Diabetic macular oedema",
        next_step="Refer to a retina specialist; centre-involving oedema with vision loss is treated with anti-VEGF.",
        urgency="soon",
        source=AAO_DR,
    ),
    "DRUSEN": Recommendation(
        code="DRUSEN",
        finding="Drusen (early or intermediate AMD)",
        next_step="Routine ophthalmology review; Amsler self-monitoring; AREDS2 supplements if intermediate AMD.",
        urgency="routine",
        source=AAO_AMD,
    ),
    "AMD": Recommendation(
        code="AMD",
        finding="Age-related macular degeneration",
        next_step="Refer to a macular service to stage the AMD (urgently if new distortion or vision loss).",
        urgency="referral",
        source=f"{NICE_AMD}; {AAO_AMD}",
    ),
    "CSR": Recommendation(
        code="CSR",
        finding="Central serous chorioretinopathy",
        next_step="Non-urgent retina referral; review for persistence beyond 3 months; stop corticosteroids if taken.",
        urgency="referral",
        source=CSC_GUIDE,
    ),
    "DR": Recommendation(
        code="DR",
        finding="Diabetic retinopathy changes",
        next_step="Refer to an eye specialist for grading of the retinopathy and a macular assessment.",
        urgency="referral",
        source=AAO_DR,
    ),
    "MH": Recommendation(
        code="MH",
        finding="Macular hole",
        next_step="Refer to a vitreoretinal surgeon (full-thickness holes: assessment for vitrectomy).",
        urgency="soon",
        source=AAO_MH,
    ),
    "NORMAL": Recommendation(
        code="NORMAL",
        finding="No abnormality on this B-scan",
        next_step="Routine care; one B-scan does not exclude disease elsewhere in the volume.",
        urgency="routine",
        source="—",
    ),
}

#: SNOMED CT codes where one code fits the class.
OCT_CODES = {"AMD": (snomed("267718000", "Age-related macular degeneration"),)}


class OctClassAnalyzer(SingleImageAnalyzer):
    """One B-scan → exclusive class probabilities, the most probable class, its next step and its Grad-CAM."""

    normal_code = "NORMAL"

    def plausibility(self, slot: str, image: np.ndarray) -> QualityResult:
        """Refuse a blank image or one without the horizontal layers of a B-scan; flag a weakly layered one."""
        from vitalens.quality import flagged, passed, refused

        gate = self.plausibility_gate
        std = blank_measure(image)
        if std < BLANK_STD:
            return refused(slot, gate, f"blank image (luminance std {std:.2f} < {BLANK_STD:g})", luminance_std=std)
        ratio = bscan_structure_ratio(image)
        metrics = {"luminance_std": round(std, 3), "bscan_structure_ratio": round(ratio, 3)}
        if ratio < BSCAN_RATIO_REFUSE:
            return refused(
                slot,
                gate,
                f"not an OCT B-scan: no layered horizontal structure (vertical/horizontal gradient energy {ratio:.2f} "
                f"< {BSCAN_RATIO_REFUSE:g}); a photograph or a fundus image?",
                **metrics,
            )
        if ratio < BSCAN_RATIO_FLAG:
            return flagged(
                slot, gate, f"weakly layered for an OCT B-scan (gradient energy ratio {ratio:.2f})", **metrics
            )
        return passed(slot, gate, **metrics)

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        card = self.card
        slot = self.spec.slots[0]
        image = inputs.get(slot)
        probs, geometries, batch = self.classify([image])
        p = probs[0]
        k = int(np.argmax(p))
        labels = list(card.labels)
        calibrated = card.calibration.method != "none"
        findings = [
            Finding(
                code=code,
                name=card.name_of(code),
                probability=float(np.clip(p[j], 0, 1)),
                threshold=card.threshold(code) if code in card.thresholds else None,
                positive=j == k,
                calibrated=calibrated,
                input_name=slot,
                codes=list(OCT_CODES.get(code, ())),
            )
            for j, code in enumerate(labels)
        ]
        runner_up = int(np.argsort(p)[-2]) if len(p) > 1 else k
        rec = OCT_RECOMMENDATIONS.get(labels[k])
        summary = (
            f"Most probable: {card.name_of(labels[k])} (p = {p[k]:.2f}); next: {card.name_of(labels[runner_up])} "
            f"(p = {p[runner_up]:.2f})."
        )
        if rec is not None:
            summary += f" Suggested next step (decision support, {rec['source']}): {rec['next_step']}"
        others = [
            OCT_RECOMMENDATIONS[c] | {"probability": f"{p[labels.index(c)]:.2f}"}
            for c in labels
            if c != labels[k]
            and c != self.normal_code
            and c in card.thresholds
            and p[labels.index(c)] >= card.threshold(c)
        ]
        extras: dict[str, Any] = {
            "most_probable": labels[k],
            "recommendations": ([dict(rec)] if rec else []) + [dict(o) for o in others],
            "backend": self.backend,
        }
        result = self.base_result(findings=findings, explanation=summary, extras=extras)
        if others:
            result.warnings.append(
                "Also above its one-vs-rest threshold: "
                + ", ".join(f"{o['finding']} ({o['probability']})" for o in others)
            )
        if card.demonstration:
            result.warnings.append(
                f"Demonstration model trained on {card.trained_on}: not validated, not for clinical use."
            )
        if explain and labels[k] != self.normal_code:
            heat = self.gradcam(batch[0], [labels[k]], geometries[0])
            from vitalens.explain import overlay_png

            result.explanations.append(
                Explanation(
                    target=labels[k],
                    input_name=slot,
                    method="grad-cam",
                    heatmap=heat,
                    overlay_png=overlay_png(image, heat),
                    note=f"Grad-CAM of log P({card.name_of(labels[k])}) on the B-scan",
                )
            )
        return result


def oct_labels(codes: Sequence[str], names: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((c, names[c]) for c in codes)
