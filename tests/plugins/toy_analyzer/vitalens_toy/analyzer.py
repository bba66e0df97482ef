"""``toy.brightness``: one grayscale scan → the fraction of bright pixels (a toy; decision support, not a diagnosis).

Everything a plug-in writes lives here: its slot (``toy_scan``, with a synthetic example), its analyzer and its
contract. It needs no model, so it is always available; its numbers are computed from the pixels, never invented.
"""

from __future__ import annotations

import numpy as np

from vitalens.analyzers import Analyzer, Findings, Measurements, Narrative, Overlays, register_analyzer
from vitalens.domain import AnalysisResult, Explanation, Finding, Measurement, ModelInfo, StudyInputs
from vitalens.slots import ImageLimits, SlotKind, SlotSpec, is_slot, register_slot

SLOT = "toy_scan"
#: A pixel is bright at or above this grey level (0–255).
BRIGHT_LEVEL = 128


def _example(seed: int) -> tuple[str, bytes, dict[str, str]]:
    """A synthetic 96×128 scan: a bright disc on a dark background (never a patient's image)."""
    from vitalens.io.images import encode_png

    yy, xx = np.mgrid[0:96, 0:128]
    disc = ((yy - 48) ** 2 + (xx - 64) ** 2) < (20 + seed % 10) ** 2
    return "toy.png", encode_png(np.where(disc, 220, 30).astype(np.uint8)), {}


if not is_slot(SLOT):
    register_slot(
        SlotSpec(
            SLOT,
            SlotKind.IMAGE,
            "Toy scan",
            ImageLimits(colour="gray", min_side=32, max_aspect=3.0),
            modality="toy",
            accept=(".png", ".jpg", ".jpeg"),
            description="Any grayscale image (the toy plug-in's input).",
            example=_example,
        )
    )


@register_analyzer(
    "toy.brightness",
    modality="toy",
    title="Toy brightness",
    inputs=(SLOT,),
    default_artifact=None,
    render=(Findings(title="Bright scan"), Measurements(), Overlays(slots=(SLOT,)), Narrative()),
    labels=(("BRIGHT", "Mostly bright"),),
    description="Fraction of pixels at or above grey level 128 (a plug-in test analyzer).",
)
class ToyBrightness(Analyzer):
    """One grayscale scan → the fraction of bright pixels, positive above one half."""

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            name="toy-brightness",
            analyzer=self.name,
            version="0.1.0",
            demonstration=True,
            trained_on="nothing (a rule)",
        )

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        from vitalens.explain import overlay_png

        image = np.asarray(inputs.get(SLOT))
        bright = image >= BRIGHT_LEVEL
        fraction = float(bright.mean())
        finding = Finding(
            code="BRIGHT", name="Mostly bright", probability=fraction, threshold=0.5, positive=fraction >= 0.5
        )
        result = AnalysisResult(
            analyzer=self.name,
            model=self.model_info(),
            trained_on="nothing (a rule)",
            demonstration=True,
            findings=[finding],
            measurements=[
                Measurement(name="Mean grey level", value=float(image.mean()), unit="grey level", method="mean")
            ],
            explanation=f"{fraction:.1%} of the pixels are at or above grey level {BRIGHT_LEVEL}.",
        )
        if explain:
            heat = bright.astype(np.float32)  # the uploaded image's own height and width
            result.explanations.append(
                Explanation(
                    target="BRIGHT",
                    input_name=SLOT,
                    method="threshold",
                    heatmap=heat,
                    overlay_png=overlay_png(image, heat),
                )
            )
        return result
