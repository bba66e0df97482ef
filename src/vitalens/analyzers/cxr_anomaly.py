"""``cxr.anomaly``: one frontal chest radiograph → how unlike the normal radiographs it is (anomaly score).

The detector was fitted on **normal radiographs only** (see its card): a frozen ImageNet encoder's pooled features,
the design's VAE (reconstruction error, KL) and latent Transformer scorer fused as
0.4·σ(z(recon)) + 0.2·σ(z(KL)) + 0.4·scorer, and beside them the Mahalanobis and kNN distances to the training
normals; the card names the score that ships (the best on validation) and its threshold (Youden's J on validation).
The score says "unlike the normals", not which disease, and it is not a probability.

What is never scored with confidence: a colour image (a chest radiograph has no colour: refused at upload), and an
image whose features lie beyond every validation radiograph (flagged) or far beyond them (refused) — a fundus
photograph or a document scored by an anomaly detector would otherwise read as "highly abnormal". The
``cxr.gradable`` quality gate (exposure, sharpness, likeness to genuine radiographs) runs before the model too.

Explanations: Grad-CAM of the shipped score on the encoder's deepest stage used, in the uploaded image's
coordinates, drawn over a CLAHE-enhanced copy of the radiograph (original | heat map | overlay); and the scorer's CLS
attention over the 8 latent patches (which parts of the latent code the scorer read — not image regions).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.analyzers._base import Analyzer
from vitalens.analyzers._contract import Findings, Narrative, Scores, Table, ThreePanel
from vitalens.analyzers._registry import register_analyzer
from vitalens.domain import AnalysisResult, Explanation, Finding, Modality, StudyInputs
from vitalens.errors import InputError, QualityRefusal
from vitalens.slots import ImageLimits

if TYPE_CHECKING:
    import torch

__all__ = [
    "CxrAnomalyAnalyzer",
    "COMPONENT_NAMES",
    "COMPONENT_FORMULAS",
    "DISTRIBUTION_GATE",
    "FLAG_COLOUR_SPREAD",
    "MAX_COLOUR_SPREAD",
    "colour_spread",
]

logger = logging.getLogger(__name__)

#: Name under which the model's own out-of-distribution check reports (it is part of the analyzer, not a gate).
DISTRIBUTION_GATE = "cxr.anomaly.distribution"
#: Mean channel difference (0–255, over pixels brighter than luma 16) above which an image is not a grayscale
#: radiograph. Measured on the shared images: the 700 COVID-19 Radiography films (also re-saved as JPEG q75) and the
#: 218 Kermany OCT scans 0.0 exactly; fundus photographs ODIR ≥ 8.1, DRIVE ≥ 57.6, APTOS (Gaussian-filtered) ≥ 2.86.
#: Above REFUSE the upload is refused; above FLAG (a tinted photograph of a film) it is scored and flagged.
MAX_COLOUR_SPREAD = 2.5
FLAG_COLOUR_SPREAD = 1.0
_DARK_LUMA = 16.0

COMPONENT_NAMES: dict[str, str] = {
    "fusion": "Fused score (design)",
    "recon": "σ(z(reconstruction error))",
    "kl": "σ(z(KL divergence))",
    "scorer": "Latent Transformer scorer",
    "recon_kl": "Reconstruction + KL",
    "mahalanobis": "Mahalanobis distance to the normals, σ(z)",
    "knn": "Distance to the 5 nearest normals, σ(z)",
}
COMPONENT_FORMULAS: dict[str, str] = {
    "fusion": "0.4·σ(z(recon)) + 0.2·σ(z(KL)) + 0.4·scorer",
    "recon": "σ((recon error − mean) / sd), mean and sd of the training normals",
    "kl": "σ((KL − mean) / sd), mean and sd of the training normals",
    "scorer": "sigmoid of the CLS token of a 6-layer Transformer over the VAE latent",
    "recon_kl": "(0.4·σ(z(recon)) + 0.2·σ(z(KL))) / 0.6",
    "mahalanobis": "σ(z(Mahalanobis distance)) to the training normals' Gaussian",
    "knn": "σ(z(mean distance to the 5 nearest training normals))",
}


def colour_spread(image: np.ndarray) -> float:
    """Mean absolute difference between the colour channels, 0–255 scale, over the pixels brighter than luma 16.

    ``(|R − G| + |G − B| + |R − B|) / 3`` averaged over those pixels (a fundus photograph's black surround is left
    out); ``0.0`` for ``(H, W)``, ``(H, W, 1)`` or an all-dark image.
    """
    a = np.asarray(image)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return 0.0
    rgb = a[:, :, :3].astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    bright = (0.299 * r + 0.587 * g + 0.114 * b) > _DARK_LUMA
    if not bright.any():
        return 0.0
    return float(((np.abs(r - g) + np.abs(g - b) + np.abs(r - b)) / 3.0)[bright].mean())


@register_analyzer(
    "cxr.anomaly",
    modality=Modality.CXR,
    title="Chest X-ray anomaly screen",
    inputs=("cxr",),
    limits={"cxr": ImageLimits(colour="gray", min_side=128, max_aspect=2.0)},
    default_artifact="cxr-anomaly",
    dataset="covid19_radiography",
    quality_gates={"cxr": ("cxr.gradable",)},
    render=(
        # What the model was fitted on is the card's to say (the narrative reads it): a design-variant card whose
        # scorer saw labelled anomalies must not sit under a "normal radiographs only" heading.
        Findings(
            title="Anomaly score against normal radiographs (a score, not a probability)",
            chart=True,
            value="Anomaly score",
        ),
        Scores(
            title="Score components (0–1)",
            key="components",
            names=COMPONENT_NAMES,
            formulas=COMPONENT_FORMULAS,
            note="Every component compares this radiograph with the normal radiographs the model was fitted on; the "
            "card names the one that decides (the best on validation).",
        ),
        ThreePanel(title="Grad-CAM over the CLAHE-enhanced radiograph", slot="cxr"),
        Table(
            title="Scorer attention over the latent code (not image regions)",
            key="latent_attention",
            columns=(("patch", "Latent patch"), ("dims", "Dimensions"), ("weight", "CLS attention")),
        ),
        Narrative(),
    ),
    labels=(("anomaly", "Abnormal chest radiograph (anomaly score)"),),
    description="Frontal chest radiograph → anomaly score against normal radiographs (normal-only training)",
    train_command="make model-cxr-anomaly (vitalens train cxr.anomaly --data COVID-19_Radiography_Dataset/ "
    "--out runs/cxr-anomaly)",
)
class CxrAnomalyAnalyzer(Analyzer):
    """Frontal chest radiograph → anomaly score against normal radiographs (normal-only training)."""

    def slot_limits(self, slot: str) -> Any:
        """The contract's limits, with the smallest side the card accepts."""
        limits = super().slot_limits(slot)
        if slot == "cxr" and isinstance(limits, ImageLimits) and self.availability().ready:
            # colour="gray" explicitly: ImageLimits defaults to "rgb", and tighten() keeps the stricter colour rule.
            limits = limits.tighten(ImageLimits(colour="gray", min_side=self.card.input.min_size or 64))
        return limits

    def validate_input(self, slot: str, value: Any) -> None:
        """The slot's limits, and no colour: a colour photograph is not a radiograph (refused before it is stored)."""
        super().validate_input(slot, value)
        if slot == "cxr":
            spread = colour_spread(value)
            if spread > MAX_COLOUR_SPREAD:
                raise InputError(
                    f"a colour image (mean channel difference {spread:.1f} > {MAX_COLOUR_SPREAD:g} on 0–255) where a "
                    "grayscale chest radiograph is expected; is this a photograph (e.g. a fundus photograph)?",
                    field=slot,
                )

    # -- analysis -------------------------------------------------------------------------------------------
    def _preprocess(self) -> Any:
        from vitalens.data.cxr_transforms import CxrPreprocess

        spec = self.card.input
        size = spec.size[0] if spec.size else 224
        return CxrPreprocess(size, spec.mean, spec.std)

    def _ood(self, distance: float) -> tuple[str, str]:
        """(``pass``/``flag``/``refuse``, reason) from the card's limits on the Mahalanobis distance."""
        limits = self.card.extra.get("ood") or {}
        flag, refuse = limits.get("flag_above"), limits.get("refuse_above")
        if refuse is not None and distance > float(refuse):
            return "refuse", (
                f"the image's features are far from every chest radiograph the model was validated on (Mahalanobis "
                f"distance {distance:.1f} > {float(refuse):.1f}); it is probably not a frontal chest radiograph, so it "
                "is not scored"
            )
        if flag is not None and distance > float(flag):
            return "flag", (
                f"unlike any validation radiograph (Mahalanobis distance {distance:.1f} > {float(flag):.1f}): the "
                "score is outside the range the model was validated on; check that this is a frontal chest radiograph"
            )
        return "pass", ""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        import torch

        from vitalens.quality import flagged

        card, net = self.card, self.model()
        image = inputs.get("cxr")
        pre = self._preprocess()
        x = pre(image).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            scores = {k: v.float().cpu() for k, v in net.scores(x).items()}
        distance = float(scores["mahalanobis_distance"][0])
        verdict, reason = self._ood(distance)
        if verdict == "refuse":
            raise QualityRefusal(reason, field="cxr")
        spread = colour_spread(image)
        if spread > FLAG_COLOUR_SPREAD:
            verdict, reason = (
                (
                    "flag",
                    f"a tinted image (mean channel difference {spread:.1f} > {FLAG_COLOUR_SPREAD:g}): a photograph of "
                    "a film? score with care",
                )
                if verdict == "pass"
                else (verdict, reason)
            )
        shipped = str(getattr(net, "output", card.extra.get("shipped_score", "fusion")))
        score = float(scores[shipped][0])
        threshold = card.threshold("anomaly")
        finding = Finding(
            code="anomaly",
            name=card.name_of("anomaly"),
            probability=float(np.clip(score, 0.0, 1.0)),
            threshold=threshold,
            positive=score >= threshold,
            calibrated=False,
            input_name="cxr",
        )
        components = {k: float(scores[k][0]) for k in COMPONENT_NAMES if k in scores}
        attention = self._latent_attention(net, scores["latent"].to(self.device))
        extras: dict[str, Any] = {
            "components": components,
            "shipped_score": shipped,
            "score_is_probability": False,
            "trained_on_normal_images_only": bool(card.extra.get("trained_on_normal_images_only", False)),
            "labelled_images_seen": card.extra.get("labelled_images_seen", {}),
            "threshold_method": card.threshold_method,
            "raw": {
                "reconstruction_error": float(scores["recon_error"][0]),
                "kl_divergence": float(scores["kl_divergence"][0]),
                "mahalanobis_distance": distance,
            },
            "latent_attention": attention,
            "out_of_distribution": {"verdict": verdict, "distance": distance, **(card.extra.get("ood") or {})},
        }
        result = self.base_result(findings=[finding], extras=extras, explanation=self._narrative(finding, shipped))
        if verdict == "flag":
            limits = card.extra.get("ood") or {}
            result.quality.append(
                flagged(
                    "cxr", DISTRIBUTION_GATE, reason, mahalanobis_distance=distance, flag_above=limits.get("flag_above")
                )
            )
            result.warnings.append(f"input quality (cxr, {DISTRIBUTION_GATE}): {reason}")
        if card.demonstration:
            result.warnings.append(
                f"Demonstration model trained on {card.trained_on}: not validated, not for clinical use."
            )
        if explain:
            result.explanations.append(self._gradcam(net, x, pre, image))
        return result

    def _latent_attention(self, net: torch.nn.Module, latent: torch.Tensor) -> list[dict[str, Any]]:
        import torch

        with torch.inference_mode():
            att = net.scorer.cls_attention(latent)[0].float().cpu().numpy()
        width = int(net.scorer.patch_dim)
        return [
            {"patch": i + 1, "dims": f"{i * width + 1}–{(i + 1) * width}", "weight": round(float(w), 4)}
            for i, w in enumerate(att)
        ]

    def _gradcam(self, net: torch.nn.Module, x: torch.Tensor, pre: Any, image: np.ndarray) -> Explanation:
        """Grad-CAM of the shipped score, back in the upload's coordinates, over the CLAHE-enhanced radiograph."""
        from vitalens.data.cxr_transforms import ClaheEnhance
        from vitalens.explain import gradcam_2d, overlay_png

        heat = gradcam_2d(net, x, target_index=0)
        heat = np.asarray(pre.geometry(image).to_input(heat), dtype=np.float32)
        enhanced = ClaheEnhance()(image)
        return Explanation(
            target="anomaly",
            input_name="cxr",
            method="grad-cam",
            heatmap=heat,
            overlay_png=overlay_png(enhanced, heat),
            note="Grad-CAM of the anomaly score (encoder's deepest stage used) over the CLAHE-enhanced radiograph",
        )

    def _narrative(self, finding: Finding, shipped: str) -> str:
        card = self.card
        td = card.training_data
        n_normals = (td.splits.get("class_counts", {}).get("train") or {}).get("Normal") or sum(
            (td.splits.get("class_counts", {}).get("train") or {}).values()
        )
        verdict = "above" if finding.positive else "below"
        seen = card.extra.get("labelled_images_seen") or {}
        chose = int(seen.get("threshold_and_selection") or 0)
        chose_text = (
            f"; {chose} labelled abnormal validation radiographs (never trained on) chose the operating threshold"
            if chose
            else ""
        )
        if card.extra.get("trained_on_normal_images_only"):
            fitted = f"The model was fitted on {n_normals} normal radiographs only{chose_text}"
        else:
            fitted = (
                f"The model was fitted on {n_normals} normal radiographs and its scorer also on "
                f"{int(seen.get('scorer') or 0)} labelled abnormal radiographs (the design's variant: not a "
                f"normal-only model){chose_text}"
            )
        return (
            f"Anomaly score {finding.probability:.2f} ({COMPONENT_NAMES.get(shipped, shipped)}), {verdict} the "
            f"operating threshold {finding.threshold:.2f} ({card.threshold_method}). {fitted}. It scores how unlike "
            "the normals this radiograph is; a high score means 'review first', not a diagnosis, and it does not "
            "say which condition. The heat map shows where the encoder's features drove the score."
        )
