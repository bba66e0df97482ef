"""``fundus.odir``: both eyes + age → 8 ODIR conditions → cardiovascular risk proxies and band.

The EYE HEART CONNECTION design: one shared encoder sees the left and the right fundus, an age MLP adds the
patient's age, a fusion head gives the 8 ODIR labels (N, D, G, C, A, H, M, O); the probabilities of
hypertensive retinopathy, diabetic retinopathy and AMD then feed the cardiovascular proxies of
``vitalens.risk.cardio``. Labels, preprocessing, thresholds and calibration all come from the model card.

The forward pass runs on ONNX Runtime when the artifact holds a verified ``model.onnx`` (three inputs: both eyes and
the age) and the device is the CPU, else on PyTorch (``extras["backend"]`` says which); Grad-CAM always uses the
PyTorch net, which is loaded only when a map is drawn.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.analyzers._base import Analyzer
from vitalens.analyzers._contract import Alias, AliasField, Findings, Narrative, Overlays, Scores, Summary
from vitalens.analyzers._registry import register_analyzer
from vitalens.artifacts import apply_calibration
from vitalens.domain import AnalysisResult, Coding, Explanation, Finding, InputName, Modality, StudyInputs
from vitalens.risk import cardio_proxies, explain_proxies, risk_band
from vitalens.risk.cardio import BAND_LOW_MAX, BAND_MEDIUM_MAX, OVERALL_WEIGHTS, PROXY_WEIGHTS, band_definition
from vitalens.slots import ImageLimits
from vitalens.terminology import snomed

if TYPE_CHECKING:
    import torch

__all__ = ["FundusOdirAnalyzer", "PROXY_FORMULAS"]

logger = logging.getLogger(__name__)

_CODE_TEXT = {"H": "P(hypertensive retinopathy)", "D": "P(diabetic retinopathy)", "A": "P(AMD)"}


def _formula(weights: dict[str, float], names: dict[str, str]) -> str:
    return " + ".join(f"{w:g}·{names.get(k, k)}" for k, w in weights.items())


#: Each proxy's formula in words, built from the weights ``risk.cardio`` computes with (so text and code agree).
PROXY_FORMULAS: dict[str, str] = {
    **{name: _formula(w, _CODE_TEXT) for name, w in PROXY_WEIGHTS.items()},
    "overall": _formula(OVERALL_WEIGHTS, {}),
}


#: SNOMED CT codes of the ODIR labels that name one disorder (N, H, M and O have none that fits exactly).
LABEL_CODES: dict[str, tuple[Coding, ...]] = {
    "D": (snomed("4855003", "Diabetic retinopathy"),),
    "G": (snomed("23986001", "Glaucoma"),),
    "C": (snomed("193570009", "Cataract"),),
    "A": (snomed("267718000", "Age-related macular degeneration"),),
}


@register_analyzer(
    "fundus.odir",
    modality=Modality.FUNDUS,
    title="Eyes → heart",
    inputs=(InputName.FUNDUS_LEFT, InputName.FUNDUS_RIGHT, InputName.AGE),
    optional_inputs=(InputName.SEX,),
    limits={
        "fundus_left": ImageLimits(colour="rgb", max_aspect=2.0),
        "fundus_right": ImageLimits(colour="rgb", max_aspect=2.0),
    },
    default_artifact="fundus-odir",
    dataset="odir",
    quality_gates={"fundus_left": ("fundus.gradable",), "fundus_right": ("fundus.gradable",)},
    render=(
        Summary(fields=("band",), glossary={"band": "band"}),
        Findings(title="Eye conditions", normal="N"),
        Scores(
            title="Retinal proxy scores (0–1)",
            key="proxies",
            names={
                "hypertension": "Hypertension proxy",
                "diabetes": "Diabetes proxy",
                "atherosclerotic": "Atherosclerotic proxy",
                "overall": "Overall",
            },
            formulas=PROXY_FORMULAS,
            note=(
                f"Retinal screening proxies on a 0–1 scale, not chances of disease. Band: Low ≤ {BAND_LOW_MAX:g}, "
                f"Medium ≤ {BAND_MEDIUM_MAX:g}, High above."
            ),
        ),
        Overlays(title="Grad-CAM heat maps", slots=("fundus_left", "fundus_right")),
        Narrative(),
    ),
    labels=(
        ("N", "Normal"),
        ("D", "Diabetic retinopathy"),
        ("G", "Glaucoma"),
        ("C", "Cataract"),
        ("A", "Age-related macular degeneration"),
        ("H", "Hypertensive retinopathy"),
        ("M", "Pathological myopia"),
        ("O", "Other abnormalities"),
    ),
    description="Bilateral fundus + age → 8 ODIR conditions → cardiovascular risk proxies and band",
    train_command="vitalens train fundus.odir --data ODIR-5K/ --out runs/fundus-odir",
    # the first version's ``POST /api/v1/predict/fundus`` (left, right, age) and ``vitalens analyze fundus``
    aliases=(
        Alias(
            "fundus",
            fields=(
                AliasField("left", "fundus_left", description="Left-eye fundus photograph (JPEG/PNG, colour)."),
                AliasField("right", "fundus_right", description="Right-eye fundus photograph (JPEG/PNG, colour)."),
                AliasField("age", "age", description="Patient age in years (0–120)."),
            ),
        ),
    ),
)
class FundusOdirAnalyzer(Analyzer):
    """Bilateral fundus + age → ODIR conditions → cardiovascular proxies."""

    def slot_limits(self, slot: str) -> Any:
        """The contract's limits, with the smallest side the card accepts for the fundus photographs."""
        limits = super().slot_limits(slot)
        if slot in ("fundus_left", "fundus_right") and isinstance(limits, ImageLimits) and self.availability().ready:
            limits = limits.tighten(ImageLimits(min_side=self.card.input.min_size or 64))
        return limits

    def _tensors(self, inputs: StudyInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[Any]]:
        import torch

        from vitalens.data.transforms import FundusPreprocess

        spec = self.card.input
        size = spec.size[0] if spec.size else 224
        pre = FundusPreprocess(size=size, mean=spec.mean, std=spec.std)
        tensors, geometries = [], []
        for name in ("fundus_left", "fundus_right"):
            image = getattr(inputs, name)
            tensors.append(pre(image).unsqueeze(0).to(self.device))
            geometries.append(pre.geometry(image))
        age_mean = float(spec.extra.get("age_mean", 0.0))
        age_std = float(spec.extra.get("age_std", 1.0)) or 1.0
        age = torch.tensor(
            [[(float(inputs.age_years or 0.0) - age_mean) / age_std]], dtype=torch.float32, device=self.device
        )
        return tensors[0], tensors[1], age, geometries

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        card = self.card
        left, right, age, geometries = self._tensors(inputs)
        logits = self.forward_outputs(left, right, age).astype(np.float64)
        probs = apply_calibration(card.calibration, logits)[0]
        findings = []
        for j, code in enumerate(card.labels):
            p = float(probs[j])
            t = card.threshold(code)
            findings.append(
                Finding(
                    code=code,
                    name=card.name_of(code),
                    probability=p,
                    threshold=t,
                    positive=p >= t,
                    calibrated=card.calibration.method != "none",
                    codes=list(LABEL_CODES.get(code, ())),
                )
            )
        prob_map = {f.code: f.probability for f in findings}
        proxies = cardio_proxies(prob_map)
        band = risk_band(proxies.overall)
        result = self.base_result(
            findings=findings,
            proxies=proxies.as_dict(),
            band=band,
            explanation=explain_proxies(prob_map, proxies, band),
            extras={"band_definition": band_definition(), "backend": self.backend},
        )
        if card.demonstration:
            result.warnings.append(
                f"Demonstration model trained on {card.trained_on}: not validated, not for clinical use."
            )
        if explain and any(f.positive for f in findings):
            result.explanations.extend(self._explain(self.model(), inputs, left, right, age, geometries, findings))
        return result

    def _explain(
        self,
        net: torch.nn.Module,
        inputs: StudyInputs,
        left: torch.Tensor,
        right: torch.Tensor,
        age: torch.Tensor,
        geometries: list[Any],
        findings: list[Finding],
    ) -> list[Explanation]:
        """Grad-CAM for every positive finding, one map per eye, mapped back to the uploaded image.

        One forward through the net for both eyes and one backward per positive finding (not a forward per map).
        """
        from vitalens.explain import gradcam_bilateral_many, overlay_png

        shown = [j for j, finding in enumerate(findings) if finding.positive]
        maps = gradcam_bilateral_many(net, left, right, age, shown)
        out: list[Explanation] = []
        for k, j in enumerate(shown):
            finding = findings[j]
            for eye, geometry, image in (
                ("left", geometries[0], inputs.fundus_left),
                ("right", geometries[1], inputs.fundus_right),
            ):
                heat = np.asarray(geometry.to_input(maps[eye][k]), dtype=np.float32)
                out.append(
                    Explanation(
                        target=finding.code,
                        input_name=f"fundus_{eye}",
                        method="grad-cam",
                        heatmap=heat,
                        overlay_png=overlay_png(image, heat),
                        note=f"Grad-CAM for {finding.name} on the {eye} eye",
                    )
                )
        return out
