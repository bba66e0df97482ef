"""Plumbing of the single-image analyzers (``fundus.dr``, ``oct.kermany4``, ``oct.c8``): image → class probabilities.

Why shared: the three analyzers differ in their slots, classes, recommendations and plausibility checks; running the
card's preprocessing (:class:`~vitalens.data.image_preprocess.ImagePreprocess`), the forward pass (ONNX Runtime when
the artifact holds a verified ``model.onnx`` and onnxruntime is installed, else PyTorch), the card's output link and
calibration (:func:`~vitalens.artifacts.predict_probabilities`), and Grad-CAM of a class or derived finding mapped
back onto the uploaded image are the same.

Plausibility: before the model runs, each analyzer checks that the image is the kind it reads with a few classical
measures (a blank image, a greyscale picture where a colour fundus photograph is expected, a picture without the
layered horizontal structure of a B-scan). A clear mismatch refuses, a borderline one flags; the general quality
gates of ``vitalens.quality`` (embedding distance to genuine images) run as well where the contract names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.analyzers._base import Analyzer
from vitalens.artifacts import predict_probabilities
from vitalens.domain import QualityResult, StudyInputs
from vitalens.errors import InputError

if TYPE_CHECKING:
    import torch

    from vitalens.data.image_preprocess import ImageGeometry, ImagePreprocess

__all__ = [
    "SingleImageAnalyzer",
    "Recommendation",
    "bscan_structure_ratio",
    "fundus_colour_measures",
    "blank_measure",
]

logger = logging.getLogger(__name__)

#: Luminance standard deviation (0–255) below which an image is blank (one flat colour).
BLANK_STD = 2.0
#: A B-scan's energy of vertical over horizontal gradients (its layers run across the image). On the 218 real
#: Kermany scans: min 1.18, 5th percentile 1.92; on ODIR, APTOS and DRIVE fundi, chest X-rays and natural photographs:
#: at most 1.87. Below REFUSE the image is not a B-scan; below FLAG it is analysed but flagged.
BSCAN_RATIO_REFUSE = 1.0
BSCAN_RATIO_FLAG = 2.0
#: Mean |R − G| + |G − B| (0–255) of a colour photograph; a greyscale image stored as RGB has ≈ 0 (APTOS ≥ 8.7,
#: ODIR ≥ 11.3, DRIVE ≥ 60 measured on the shared images).
FUNDUS_MIN_COLOURFULNESS = 4.0
#: Mean red minus max(mean green, mean blue) inside the field of view; fundi are red-dominant (APTOS ≥ 0.5, even
#: after the Ben-Graham filter; ODIR ≥ 1.8), a blue or green picture is not a fundus.
FUNDUS_RED_DOMINANCE_REFUSE = -5.0
FUNDUS_RED_DOMINANCE_FLAG = 0.3


class Recommendation(dict[str, str]):
    """``{"code", "finding", "next_step", "urgency", "source"}``: a clinical next step for one class."""


def _grey(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float32)
    return a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def blank_measure(image: np.ndarray) -> float:
    """Standard deviation of the luminance, 0–255 (≈ 0 for a blank image)."""
    return float(_grey(image).std())


def bscan_structure_ratio(image: np.ndarray) -> float:
    """Energy of vertical over horizontal luminance gradients at 256 px (layers of a B-scan give ≫ 1)."""
    from PIL import Image
    from scipy import ndimage

    g = np.asarray(Image.fromarray(np.clip(_grey(image), 0, 255).astype(np.uint8)).resize((256, 256)), np.float32)
    g = ndimage.gaussian_filter(g, 1.5)
    gy, gx = ndimage.sobel(g, 0), ndimage.sobel(g, 1)
    return float((gy**2).sum() / max(float((gx**2).sum()), 1e-6))


def fundus_colour_measures(image: np.ndarray) -> tuple[float, float]:
    """(colourfulness, red dominance) of an RGB image: see the module constants."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3:
        return 0.0, 0.0
    colourfulness = float((np.abs(a[..., 0] - a[..., 1]) + np.abs(a[..., 1] - a[..., 2])).mean())
    fov = a.mean(axis=2) > 20
    if fov.mean() < 0.05:
        return colourfulness, 0.0
    r, g, b = (float(a[..., c][fov].mean()) for c in range(3))
    return colourfulness, r - max(g, b)


class SingleImageAnalyzer(Analyzer):
    """Base of the single-image analyzers; subclasses implement :meth:`analyze` and :meth:`plausibility`."""

    #: Gate name of the analyzer's own plausibility check (shown in ``result.quality``).
    plausibility_gate = "plausibility"

    # -- model --------------------------------------------------------------------------------------------
    def preprocess(self) -> ImagePreprocess:
        """The card's pipeline (``input.extra.preprocess``), rebuilt exactly."""
        from vitalens.data.image_preprocess import ImagePreprocess

        config = self.card.input.extra.get("preprocess")
        if not config:
            raise InputError(f"the card of {self.card.name} has no preprocessing config", field="card")
        return ImagePreprocess.from_config(config)

    def raw_outputs(self, batch: torch.Tensor) -> np.ndarray:
        """Raw net outputs ``(B, n_outputs)`` of a preprocessed batch: ONNX Runtime when available, else PyTorch
        (:meth:`~vitalens.analyzers._base.Analyzer.forward_outputs`)."""
        return self.forward_outputs(batch).astype(np.float64)

    def classify(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[ImageGeometry], Any]:
        """Probabilities ``(N, K)`` in the card's label order, the geometries, and the input batch."""
        import torch

        pre = self.preprocess()
        batch = torch.stack([pre(img) for img in images])
        probs = predict_probabilities(self.card, self.raw_outputs(batch))
        return probs, [pre.geometry(img) for img in images], batch

    # -- explanations ----------------------------------------------------------------------------------------
    def class_log_prob(self, classes: Sequence[str]) -> Callable[[torch.Tensor], torch.Tensor]:
        """A Grad-CAM target: log P(any of ``classes``) through the card's head (uncalibrated: same direction)."""
        import torch

        from vitalens.training.problems import Problem, torch_class_probabilities

        card = self.card
        idx = [card.labels.index(c) for c in classes]
        problem = Problem(kind=card.output.problem, head=card.output.head, n_classes=len(card.labels))

        def target(output: torch.Tensor) -> torch.Tensor:
            out = output if output.ndim == 2 else output[None]
            p = torch_class_probabilities(problem, out)[:, idx].sum(dim=1)
            return torch.log(p.clamp_min(1e-8)).sum()

        return target

    def gradcam(self, x: torch.Tensor, classes: Sequence[str], geometry: ImageGeometry) -> np.ndarray:
        """Grad-CAM of log P(``classes``) on the net's ``target_layer``, in the uploaded image's coordinates."""
        from pytorch_grad_cam import GradCAM

        from vitalens.explain.gradcam import resolve_layer

        net = self.model()
        layer = resolve_layer(net, getattr(net, "target_layer", None))
        was_training = net.training
        net.eval()
        try:
            with GradCAM(model=net, target_layers=[layer]) as cam:
                heat = cam(input_tensor=x.to(self.device)[None], targets=[self.class_log_prob(classes)])[0]
        finally:
            net.train(was_training)
        return np.asarray(geometry.to_input(np.asarray(heat, dtype=np.float32)), dtype=np.float32)

    def gradcams(
        self, x: torch.Tensor, class_groups: Sequence[Sequence[str]], geometry: ImageGeometry
    ) -> list[np.ndarray]:
        """:meth:`gradcam` for several targets of one image: one forward, one backward per target (same maps)."""
        from vitalens.explain.gradcam import gradcam_2d_many

        net = self.model()
        targets = [self.class_log_prob(classes) for classes in class_groups]
        heats = gradcam_2d_many(net, x.to(self.device), targets)
        return [np.asarray(geometry.to_input(h), dtype=np.float32) for h in heats]

    # -- plausibility ----------------------------------------------------------------------------------------
    def plausibility(self, slot: str, image: np.ndarray) -> QualityResult:
        """This analyzer's own check that ``image`` is the kind it reads (subclasses override)."""
        from vitalens.quality import passed

        return passed(slot, self.plausibility_gate)

    def quality(self, inputs: StudyInputs) -> list[QualityResult]:
        """The contract's gates, then this analyzer's own plausibility check of each image slot present."""
        results = super().quality(inputs)
        for slot in self.spec.slots:
            value = inputs.get(slot)
            if isinstance(value, np.ndarray):
                results.append(self.plausibility(slot, value))
        return results
