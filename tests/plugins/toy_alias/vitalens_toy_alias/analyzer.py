"""``toy.darkness`` (one grayscale strip → the fraction of dark pixels) and its companion ``toy.size`` (the strip's
width and height), with the short names ``toy`` and ``toy-dark`` (toys; decision support, not a diagnosis).

Everything the plug-in declares lives here: its slot, both analyzers, the aliases and the companion. Neither needs
a model; every number is computed from the pixels.
"""

from __future__ import annotations

import numpy as np

from vitalens.analyzers import Alias, AliasField, Analyzer, Findings, Measurements, Narrative, register_analyzer
from vitalens.domain import AnalysisResult, Explanation, Finding, Measurement, ModelInfo, StudyInputs
from vitalens.slots import ImageLimits, SlotKind, SlotSpec, is_slot, register_slot

SLOT = "toy_strip"
#: A pixel is dark below this grey level (0–255).
DARK_LEVEL = 128
#: The companion measures strips at least this many pixels on each side (smaller ones: a warning, not a failure).
SIZE_MIN_SIDE = 80


def _example(seed: int) -> tuple[str, bytes, dict[str, str]]:
    """A synthetic 96×128 strip, its left quarter dark (never a patient's image)."""
    from vitalens.io.images import encode_png

    strip = np.full((96, 128), 200, np.uint8)
    strip[:, : 32 + seed % 4] = 20
    return "strip.png", encode_png(strip), {}


if not is_slot(SLOT):
    register_slot(
        SlotSpec(
            SLOT,
            SlotKind.IMAGE,
            "Toy strip",
            ImageLimits(colour="gray", min_side=32, max_aspect=3.0),
            modality="toy",
            accept=(".png",),
            description="Any grayscale image (the toy alias plug-in's input).",
            example=_example,
        )
    )


def _model(name: str, analyzer: str) -> ModelInfo:
    return ModelInfo(name=name, analyzer=analyzer, version="0.1.0", demonstration=True, trained_on="nothing (a rule)")


@register_analyzer(
    "toy.size",
    modality="toy",
    title="Toy size",
    inputs=(SLOT,),
    limits={SLOT: ImageLimits(colour="gray", min_side=SIZE_MIN_SIDE)},
    default_artifact=None,
    no_export_reason="measurements of the pixels: no model, no labels",
    render=(Measurements(), Narrative()),
    description="The strip's width and height in pixels (a plug-in companion).",
)
class ToySize(Analyzer):
    """One strip → its width and height."""

    def model_info(self) -> ModelInfo:
        return _model("toy-size", self.name)

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        height, width = np.asarray(inputs.get(SLOT)).shape[:2]
        return AnalysisResult(
            analyzer=self.name,
            model=self.model_info(),
            trained_on="nothing (a rule)",
            demonstration=True,
            measurements=[
                Measurement(name="Width", value=float(width), unit="px", method="pixel count"),
                Measurement(name="Height", value=float(height), unit="px", method="pixel count"),
            ],
            explanation=f"{width} × {height} px.",
        )


@register_analyzer(
    "toy.darkness",
    modality="toy",
    title="Toy darkness",
    inputs=(SLOT,),
    default_artifact=None,
    no_export_reason="a rule on the pixels: no model, no labels",
    render=(Findings(title="Dark strip"), Narrative()),
    labels=(("DARK", "Mostly dark"),),
    description="Fraction of pixels below grey level 128 (a plug-in test analyzer with aliases)",
    companions=("toy.size",),
    aliases=(
        Alias(
            "toy", fields=(AliasField("scan", SLOT, option="", description="The strip (PNG)."),), companions_key="size"
        ),
        "toy-dark",
    ),
)
class ToyDarkness(Analyzer):
    """One strip → the fraction of dark pixels, positive above one half; the map is the dark pixels."""

    def model_info(self) -> ModelInfo:
        return _model("toy-darkness", self.name)

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        from vitalens.explain import overlay_png

        image = np.asarray(inputs.get(SLOT))
        dark = image < DARK_LEVEL
        fraction = float(dark.mean())
        result = AnalysisResult(
            analyzer=self.name,
            model=self.model_info(),
            trained_on="nothing (a rule)",
            demonstration=True,
            findings=[
                Finding(code="DARK", name="Mostly dark", probability=fraction, threshold=0.5, positive=fraction >= 0.5)
            ],
            explanation=f"{fraction:.1%} of the pixels are below grey level {DARK_LEVEL}.",
        )
        if explain:
            heat = dark.astype(np.float32)
            result.explanations.append(
                Explanation(
                    target="DARK",
                    input_name=SLOT,
                    method="threshold",
                    heatmap=heat,
                    overlay_png=overlay_png(image, heat),
                )
            )
        return result
