"""``retina.fusion``: a fundus photograph and an OCT scan → one normal-vs-disease score (late fusion), shown beside
the single-modality findings of ``fundus.dr`` and ``oct.kermany4``.

The fusion artifact holds only the head; its card names the two frozen encoder artifacts (analyzer, folder, sha256
of their weights). They are loaded from the same models folder and refused if their weights are not the ones the head
was trained on. Each image goes through its encoder's own preprocessing (from that encoder's card) and plausibility
check; the pooled embeddings are concatenated and scored; the card's temperature and threshold apply.

It was trained and tested on **virtual pairs** (images of different people paired by label): every result says so.
Explanations: Grad-CAM of the fusion logit on each encoder's target layer, the other modality's embedding held
fixed, in each uploaded image's coordinates.

An artifact trained with ``task.head.kind: multiclass`` (its card's ``output.params.groups``) instead outputs, per
eye, the DR grade 0–4 of that photograph and the OCT class of the scan (each group's probabilities sum to 1, the
most probable class of each marked), rendered by the generic :class:`Classes` blocks below (which show nothing for
the binary head, as its :class:`Findings` block shows nothing for the multiclass one); its Grad-CAM targets the most
probable DR grade through the fundus encoder and the most probable OCT class through the OCT encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.analyzers._base import Analyzer
from vitalens.analyzers._contract import Classes, Findings, Narrative, Overlays, SlotUse, Table
from vitalens.analyzers._registry import register_analyzer
from vitalens.data.aptos import DR_GRADES
from vitalens.data.kermany import KERMANY_LABELS
from vitalens.domain import AnalysisResult, Explanation, Finding, Modality, QualityResult, StudyInputs
from vitalens.errors import ArtifactError
from vitalens.slots import ImageLimits

if TYPE_CHECKING:
    import torch

__all__ = ["RetinaFusionAnalyzer", "FUSION_EYES"]

logger = logging.getLogger(__name__)

FUSION_EYES: tuple[str, ...] = ("fundus_right", "fundus_left")
_ENCODERS = {"fundus": "fundus.dr", "oct": "oct.kermany4"}
_GROUP_TITLE = {"dr_grade": "DR grade", "oct_class": "OCT class"}


@register_analyzer(
    "retina.fusion",
    modality=Modality.FUNDUS,
    title="Fundus + OCT fusion (virtual-pair model)",
    uses=(
        SlotUse("fundus_right", any_of="eye", limits=ImageLimits(colour="rgb", min_side=128, max_aspect=2.0)),
        SlotUse("fundus_left", any_of="eye", limits=ImageLimits(colour="rgb", min_side=128, max_aspect=2.0)),
        SlotUse("oct", limits=ImageLimits(colour="gray", min_side=128, max_aspect=4.0)),
    ),
    default_artifact="retina-fusion",
    dataset=None,
    no_export_reason=(
        "fuses the retina analyzers' own outputs; its training set is built from their datasets "
        "(make model-retina-fusion), and each eye's reviews are exported by those analyzers"
    ),
    quality_gates={"fundus_right": ("fundus.gradable",), "fundus_left": ("fundus.gradable",), "oct": ("oct.gradable",)},
    render=(
        Findings(title="Retinal disease, fundus + OCT combined (virtual-pair model)"),
        Classes(
            title="DR grade of each photograph, fundus + OCT combined (virtual-pair multiclass model)",
            codes=DR_GRADES,
            ordered=True,
            expected_key="expected_grade",
        ),
        Classes(
            title="OCT class of the scan, with each photograph (virtual-pair multiclass model)",
            codes=KERMANY_LABELS,
            ordered=False,
            expected_key=None,
        ),
        Table(
            title="Fusion beside each modality alone (held-out virtual pairs)",
            key="comparison",
            columns=(("model", "Model"), ("auroc", "AUROC"), ("ci", "95 % CI"), ("ece", "ECE")),
        ),
        Table(
            title="Multiclass fusion beside each modality's own analyzer (held-out virtual pairs)",
            key="comparison_multiclass",
            columns=(
                ("output", "Output"),
                ("model", "Model"),
                ("metric", "Metric"),
                ("value", "Value"),
                ("ci", "95 % CI"),
                ("ece", "Top-label ECE"),
                ("n", "n pairs"),
            ),
        ),
        Overlays(title="Grad-CAM of the fusion score", slots=("fundus_right", "fundus_left", "oct")),
        Narrative(),
    ),
    labels=(("disease", "Retinal disease (fundus + OCT fusion, virtual pairs)"),),
    description="Fundus photograph + OCT scan → normal vs disease by late fusion of the frozen fundus.dr and "
    "oct.kermany4 encoders (trained on virtual pairs)",
    train_command="make model-retina-fusion (vitalens train retina.fusion --data DIR --out runs/retina-fusion)",
)
class RetinaFusionAnalyzer(Analyzer):
    """Fundus photograph + OCT scan → normal vs disease (late fusion, virtual pairs)."""

    # -- the encoders -------------------------------------------------------------------------------------------
    def encoder(self, modality: str) -> Analyzer:
        """The frozen encoder's analyzer (``fundus.dr`` / ``oct.kermany4``) on the artifact the head was trained on.

        Raises:
            ArtifactError: the card names no encoder, the folder is missing, or its weights differ from the ones the
                head was trained on (sha256 in the card).
        """
        from vitalens.analyzers import create_analyzer
        from vitalens.artifacts import WEIGHTS_FILE

        cache = self.__dict__.setdefault("_encoders", {})
        if modality in cache:
            return cache[modality]
        info = (self.card.extra.get("encoders") or {}).get(modality)
        if not info:
            raise ArtifactError(f"the card of {self.card.name} names no {modality} encoder")
        folder = Path(self.artifact).parent / str(info["artifact"])  # type: ignore[arg-type]
        sub = create_analyzer(_ENCODERS[modality], artifact=folder, cache=self.cache, device=self.device)
        if not sub.availability().ready:
            raise ArtifactError(
                f"{self.name} needs its {modality} encoder {info['analyzer']} at {folder}; it is missing"
            )
        actual = sub.card.files.get(WEIGHTS_FILE)
        if info.get("weights_sha256") and actual != info["weights_sha256"]:
            raise ArtifactError(
                f"the {modality} encoder at {folder} is not the one {self.card.name} was trained on (weights sha256 "
                f"{str(actual)[:12]}… vs {str(info['weights_sha256'])[:12]}…); retrain the fusion head on it"
            )
        cache[modality] = sub
        return sub

    def validate_input(self, slot: str, value: Any) -> None:
        """The contract's limits, then the encoder analyzer's own limits for that slot (its card's min size)."""
        super().validate_input(slot, value)
        if self.availability().ready:
            modality = "oct" if slot == "oct" else "fundus"
            sub = self.encoder(modality)
            sub_slot = slot if slot in sub.spec.slots else None
            if sub_slot is not None:
                sub.validate_input(sub_slot, value)

    def quality(self, inputs: StudyInputs) -> list[QualityResult]:
        """The contract's gates, then each encoder analyzer's plausibility check (a B-scan for OCT, a colour fundus)."""
        results = super().quality(inputs)
        for slot in (*FUSION_EYES, "oct"):
            value = inputs.get(slot)
            sub = self.encoder("oct" if slot == "oct" else "fundus")
            check = getattr(sub, "plausibility", None)
            if value is not None and check is not None:
                results.append(check(slot, value))
        return results

    # -- analysis -----------------------------------------------------------------------------------------------
    def _embed(self, modality: str, image: np.ndarray) -> tuple[Any, Any, Any]:
        import torch

        sub = self.encoder(modality)
        pre = sub.preprocess()  # type: ignore[attr-defined]
        x = pre(image).unsqueeze(0).to(self.device)
        net = sub.model()
        with torch.inference_mode():
            emb = net.encode(x).float()
        return emb, x, pre.geometry(image)

    @property
    def groups(self) -> dict[str, list[int]]:
        """Softmax group → output columns for a multiclass artifact, ``{}`` for the binary head."""
        from vitalens.artifacts.outputs import softmax_groups

        return softmax_groups(self.card.output)

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        import torch
        from scipy.special import expit

        if self.groups:
            return self._analyze_multiclass(inputs, explain=explain)
        card, head = self.card, self.model()
        temperature = (
            float(card.calibration.params.get("temperature", 1.0)) if card.calibration.method == "temperature" else 1.0
        )
        oct_image = inputs.get("oct")
        oct_emb, oct_x, oct_geo = self._embed("oct", oct_image)
        threshold = card.threshold("disease")
        findings: list[Finding] = []
        explanations: list[Explanation] = []
        for eye, image, (f_emb, f_x, f_geo) in self._eyes(inputs):
            with torch.inference_mode():
                logit = float(head(f_emb, oct_emb).reshape(-1)[0])
            p = float(expit(logit / temperature))
            side = "right" if eye.endswith("right") else "left"
            findings.append(
                Finding(
                    code="disease",
                    name=f"{card.name_of('disease')}, {side} eye",
                    probability=p,
                    threshold=threshold,
                    positive=p >= threshold,
                    calibrated=card.calibration.method != "none",
                    input_name=eye,
                )
            )
            if explain:
                explanations += self._gradcam(head, f_x, f_geo, image, oct_emb, oct_x, oct_geo, oct_image, eye)
        notice = str(card.extra.get("virtual_pairs", ""))
        comparison = self._comparison()
        result = self.base_result(
            findings=findings,
            explanations=explanations,
            extras={"virtual_pairs": notice, "comparison": comparison, "encoders": card.extra.get("encoders", {})},
            explanation=self._narrative(findings, notice),
        )
        result.warnings.append(notice)
        if card.demonstration:
            result.warnings.append(f"Demonstration model trained on {card.trained_on}: not for clinical use.")
        return result

    def _eyes(self, inputs: StudyInputs) -> Iterator[tuple[str, Any, tuple[Any, Any, Any]]]:
        """Each photographed eye with its image and its fundus embedding (``_embed``): both heads pair each eye's
        photograph with the one OCT scan."""
        for eye in FUSION_EYES:
            image = inputs.get(eye)
            if image is not None:
                yield eye, image, self._embed("fundus", image)

    def _analyze_multiclass(self, inputs: StudyInputs, *, explain: bool) -> AnalysisResult:
        """Per eye: the photograph's DR grade and the scan's OCT class from the pair's embeddings (two softmaxes)."""
        import torch

        from vitalens.artifacts import expected_grade, predict_probabilities

        card, head, groups = self.card, self.model(), self.groups
        for group, classes in (("dr_grade", DR_GRADES), ("oct_class", KERMANY_LABELS)):
            cols = groups.get(group, [])
            if [card.labels[c] for c in cols] != list(classes):
                raise ArtifactError(
                    f"the card of {card.name} has softmax groups {dict(groups)} over labels {card.labels}; "
                    f"{self.name} expects {group} = {list(classes)}"
                )
        oct_image = inputs.get("oct")
        oct_emb, oct_x, oct_geo = self._embed("oct", oct_image)
        findings: list[Finding] = []
        explanations: list[Explanation] = []
        expected: dict[str, float] = {}
        lines: list[str] = []
        for eye, image, (f_emb, f_x, f_geo) in self._eyes(inputs):
            with torch.inference_mode():
                raw = head(f_emb, oct_emb).double().cpu().numpy()
            p = predict_probabilities(card, raw)[0]
            top: dict[str, int] = {}
            for group, cols in groups.items():
                k = cols[int(np.argmax(p[cols]))]
                top[group] = k
                for j in cols:
                    findings.append(
                        Finding(
                            code=card.labels[j],
                            name=card.name_of(card.labels[j]),
                            probability=float(np.clip(p[j], 0, 1)),
                            positive=j == k,
                            calibrated=card.calibration.method != "none",
                            input_name=eye,
                        )
                    )
            expected[eye] = float(expected_grade(p[groups["dr_grade"]][None])[0])
            side = "right" if eye.endswith("right") else "left"
            lines.append(
                f"{side.capitalize()} eye with the scan: most probable DR grade {card.labels[top['dr_grade']]} "
                f"(p = {p[top['dr_grade']]:.2f}, expected grade {expected[eye]:.1f}), most probable OCT class "
                f"{card.labels[top['oct_class']]} (p = {p[top['oct_class']]:.2f})"
            )
            if explain:
                explanations += self._gradcam(
                    head,
                    f_x,
                    f_geo,
                    image,
                    oct_emb,
                    oct_x,
                    oct_geo,
                    oct_image,
                    eye,
                    targets=(top["dr_grade"], top["oct_class"]),
                    codes=(card.labels[top["dr_grade"]], card.labels[top["oct_class"]]),
                )
        notice = str(card.extra.get("virtual_pairs", ""))
        result = self.base_result(
            findings=findings,
            explanations=explanations,
            extras={
                "virtual_pairs": notice,
                "head": "multiclass",
                "expected_grade": expected,
                "comparison_multiclass": self._comparison_multiclass(),
                "encoders": card.extra.get("encoders", {}),
            },
            explanation="; ".join(lines)
            + ". The DR grade is a label of the photograph and the OCT class a label of the scan; read them beside "
            "the fundus.dr and oct.kermany4 findings, which come from the same encoders. "
            + notice
            + " Decision support, not a diagnosis.",
        )
        result.warnings.append(notice)
        if card.demonstration:
            result.warnings.append(f"Demonstration model trained on {card.trained_on}: not for clinical use.")
        return result

    def _comparison_multiclass(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        metrics = {"dr_grade": ("accuracy", "quadratic_kappa"), "oct_class": ("accuracy", "macro_auroc")}
        words = {"accuracy": "accuracy", "quadratic_kappa": "quadratic kappa", "macro_auroc": "macro AUROC"}
        for group, res in (self.card.extra.get("comparison_multiclass_test") or {}).items():
            for who in ("fusion", "alone"):
                part = res.get(who) or {}
                model = "Fundus + OCT (fusion)" if who == "fusion" else f"{part.get('analyzer', '?')} alone"
                for metric in metrics.get(group, ("accuracy",)):
                    m = part.get(metric) or {}
                    lo, hi = m.get("ci_low"), m.get("ci_high")
                    ece = (part.get("top_label_ece") or {}).get("value")
                    rows.append(
                        {
                            "output": _GROUP_TITLE.get(group, group),
                            "model": model,
                            "metric": words[metric],
                            "value": None if m.get("value") is None else round(float(m["value"]), 3),
                            "ci": None if lo is None or hi is None else f"{lo:.3f}–{hi:.3f}",
                            "ece": None if ece is None else round(float(ece), 3),
                            "n": m.get("n"),
                        }
                    )
        return rows

    def _comparison(self) -> list[dict[str, Any]]:
        names = {"fusion": "Fundus + OCT (fusion)", "fundus_only": "Fundus only", "oct_only": "OCT only"}
        rows = []
        for key, res in (self.card.extra.get("comparison_test") or {}).items():
            auc = res.get("test_auroc") or {}
            lo, hi = auc.get("ci_low"), auc.get("ci_high")
            rows.append(
                {
                    "model": names.get(key, key),
                    "auroc": None if auc.get("value") is None else round(float(auc["value"]), 3),
                    "ci": None if lo is None or hi is None else f"{lo:.3f}–{hi:.3f}",
                    "ece": (res.get("calibration_test") or {}).get("ece"),
                    "n": auc.get("n"),
                }
            )
        return rows

    def _gradcam(
        self,
        head: torch.nn.Module,
        f_x: Any,
        f_geo: Any,
        f_image: np.ndarray,
        oct_emb: Any,
        oct_x: Any,
        oct_geo: Any,
        oct_image: np.ndarray,
        eye: str,
        targets: tuple[int, int] = (0, 0),
        codes: tuple[str, str] = ("disease", "disease"),
    ) -> list[Explanation]:
        """Grad-CAM of the fusion logit through each encoder, the other modality's embedding held fixed.

        ``targets``: the logit column explained through the fundus and the OCT encoder (the binary head's one logit;
        the multiclass head's most probable DR grade and OCT class), ``codes`` their finding codes.
        """
        import torch
        from torch import nn

        from vitalens.explain import gradcam_2d, overlay_png

        f_net, o_net = self.encoder("fundus").model(), self.encoder("oct").model()
        with torch.no_grad():
            f_emb = f_net.encode(f_x).float()

        class _Through(nn.Module):
            def __init__(self, net: nn.Module, fixed: torch.Tensor, first: bool) -> None:
                super().__init__()
                self.net, self.fixed, self.first = net, fixed.detach(), first

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                e = self.net.encode(x)
                fixed = self.fixed.expand(e.shape[0], -1)
                return head(e, fixed) if self.first else head(fixed, e)

        out = []
        for slot, net, x, geo, image, fixed, first, target, code in (
            (eye, f_net, f_x, f_geo, f_image, oct_emb, True, targets[0], codes[0]),
            ("oct", o_net, oct_x, oct_geo, oct_image, f_emb, False, targets[1], codes[1]),
        ):
            wrapper = _Through(net, fixed, first).eval()
            heat = gradcam_2d(wrapper, x, target_index=target, target_layer=net.get_submodule(net.target_layer))
            heat = np.asarray(geo.to_input(np.asarray(heat, dtype=np.float32)), dtype=np.float32)
            out.append(
                Explanation(
                    target=code,
                    input_name=slot,
                    method="grad-cam",
                    heatmap=heat,
                    overlay_png=overlay_png(image if image.ndim == 3 else np.repeat(image[..., None], 3, 2), heat),
                    note=(
                        "Grad-CAM of the fusion score"
                        if code == "disease"
                        else f"Grad-CAM of the fusion head's {'DR grade' if first else 'OCT class'} {code} logit"
                    )
                    + f" through the {'fundus' if first else 'OCT'} encoder"
                    + (
                        f" ({eye.replace('fundus_', '')} eye)"
                        if first
                        else f" (with the {eye.replace('fundus_', '')} eye)"
                    ),
                )
            )
        return out

    def _narrative(self, findings: list[Finding], notice: str) -> str:
        parts = [
            f"{f.name}: {f.probability:.2f} ({'at or above' if f.positive else 'below'} the threshold "
            f"{f.threshold:.2f})"
            for f in findings
        ]
        return (
            "; ".join(parts)
            + ". Read it beside the fundus.dr and oct.kermany4 findings, which come from the same encoders. "
            + notice
            + " Decision support, not a diagnosis."
        )
