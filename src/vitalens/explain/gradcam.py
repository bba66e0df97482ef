"""Grad-CAM maps in input coordinates, for any net exposing a ``target_layer`` (2D via pytorch-grad-cam, 1D here).

Why: clinicians must see *where* a finding came from. Grad-CAM (Selvaraju et al. 2017) weights the target
layer's feature maps by the mean gradient of the class logit and keeps the positive part. The target layer comes
from the net's ``target_layer`` attribute (a dotted module path), so no architecture is special-cased. The 2D
maps use the maintained ``grad-cam`` package; it has no 1D path, so :func:`gradcam_1d` does the same arithmetic
on (B, C, L) activations for the ECG nets.

Every map is float32 in [0, 1] (min–max per image; an all-zero map stays zero), has the input's spatial size,
and contains no NaN. The model's train/eval mode is restored afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import numpy as np

from vitalens.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch
    from torch import nn

__all__ = [
    "resolve_layer",
    "gradcam_2d",
    "gradcam_2d_many",
    "gradcam_bilateral",
    "gradcam_bilateral_many",
    "gradcam_1d",
    "bilateral_eye_model",
]

#: A Grad-CAM target: a logit column, or a callable from one output row ``(K,)`` to a scalar score.
Target = int | Callable[["torch.Tensor"], "torch.Tensor"]

logger = logging.getLogger(__name__)


def resolve_layer(model: nn.Module, target_layer: str | nn.Module | None = None) -> nn.Module:
    """The module to explain: ``target_layer`` itself, its dotted path in ``model``, or ``model.target_layer``.

    Raises:
        InputError: no target layer given and the model has no ``target_layer``, or the path names no module.
    """
    from torch import nn

    if isinstance(target_layer, nn.Module):
        return target_layer
    name = target_layer if target_layer is not None else getattr(model, "target_layer", None)
    if not isinstance(name, str):
        raise InputError(
            f"{type(model).__name__} has no 'target_layer'; pass target_layer= (a dotted module path)",
            field="target_layer",
        )
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise InputError(f"{type(model).__name__} has no module '{name}'", field="target_layer") from exc


def _targets(target_index: int | Sequence[int], batch: int) -> list[int]:
    indices = [int(target_index)] * batch if isinstance(target_index, int | np.integer) else list(target_index)
    if len(indices) != batch:
        raise InputError(f"{len(indices)} target indices for a batch of {batch}", field="target_index")
    return indices


@contextmanager
def _mode_kept(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    try:
        yield
    finally:
        model.train(was_training)


def _finish(maps: np.ndarray, squeeze: bool) -> np.ndarray:
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    maps = np.clip(maps, 0.0, 1.0)
    return maps[0] if squeeze else maps


def gradcam_2d(
    model: nn.Module,
    x: torch.Tensor,
    target_index: int | Sequence[int],
    target_layer: str | nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM of logit ``target_index`` for an image model ``model(x) -> (B, K)``.

    Args:
        model: the net; its ``target_layer`` is used when ``target_layer`` is ``None``.
        x: (C, H, W) or (B, C, H, W) float input, preprocessed as the model expects.
        target_index: the logit (class) to explain, one for all or one per batch item.
        target_layer: module or dotted path whose output is a (B, C', h, w) feature map.

    Returns:
        (H, W) float32 in [0, 1] for a single image (no batch dim, or a batch of 1), else (B, H, W).

    Example:
        >>> heat = gradcam_2d(net, image, target_index=3)   # net.target_layer = "layer4"
    """
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if x.ndim not in (3, 4):
        raise InputError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}", field="x")
    squeeze = x.ndim == 3 or x.shape[0] == 1
    batch = x.unsqueeze(0) if x.ndim == 3 else x
    layer = resolve_layer(model, target_layer)
    targets = [ClassifierOutputTarget(i) for i in _targets(target_index, batch.shape[0])]
    with _mode_kept(model), torch.enable_grad():
        with GradCAM(model=model, target_layers=[layer]) as cam:
            cam.compute_input_gradient = True  # gradients flow even through a frozen encoder
            maps = cam(input_tensor=batch.detach(), targets=targets)
    return _finish(maps, squeeze)


def _score(target: Target, row: torch.Tensor) -> torch.Tensor:
    return row[int(target)] if isinstance(target, int | np.integer) else target(row)


def _cams_from(acts: torch.Tensor, grads: torch.Tensor, size_wh: tuple[int, int]) -> np.ndarray:
    """pytorch-grad-cam's GradCAM arithmetic on (B, C, h, w) activations and gradients, in numpy as it does it."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    a = acts.detach().cpu().numpy()
    g = grads.detach().cpu().numpy()
    weights = np.mean(g, axis=(2, 3))
    cam = np.maximum((weights[:, :, None, None] * a).sum(axis=1), 0)
    scaled = scale_cam_image(cam, size_wh)[:, None, :]
    return scale_cam_image(np.mean(np.maximum(scaled, 0), axis=1))


@contextmanager
def _captured(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Every output of ``layer`` during the block (a shared encoder run per eye fires it once per eye)."""
    outputs: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


def gradcam_2d_many(
    model: nn.Module,
    x: torch.Tensor,
    targets: Sequence[Target],
    target_layer: str | nn.Module | None = None,
) -> list[np.ndarray]:
    """Grad-CAM of several targets of one image from ONE forward pass and one backward pass per target.

    Why: an analysis explains every shown finding; :func:`gradcam_2d` (pytorch-grad-cam) repeats the forward per
    target. The maps equal :func:`gradcam_2d`'s for each target (same arithmetic, ``tests`` check it).

    Args:
        model: ``model(x) -> (1, K)``; its ``target_layer`` when ``target_layer`` is ``None``.
        x: (C, H, W) or (1, C, H, W) preprocessed image.
        targets: logit columns or callables ``row (K,) -> scalar`` (e.g. log P(any of some classes)).

    Returns:
        One (H, W) float32 map in [0, 1] per target, in order (empty for no targets: no forward is run).
    """
    import torch

    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[0] != 1):
        raise InputError(f"expected (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}", field="x")
    if not targets:
        return []
    batch = (x.unsqueeze(0) if x.ndim == 3 else x).detach().requires_grad_(True)
    layer = resolve_layer(model, target_layer)
    out: list[np.ndarray] = []
    with _mode_kept(model), torch.enable_grad(), _captured(layer) as acts:
        model.eval()
        row = model(batch)[0]
        act = acts[-1]
        for k, target in enumerate(targets):
            (grads,) = torch.autograd.grad(_score(target, row), act, retain_graph=k < len(targets) - 1)
            out.append(_finish(_cams_from(act, grads, (batch.shape[-1], batch.shape[-2])), True))
    return out


def gradcam_bilateral_many(
    net: nn.Module, left: torch.Tensor, right: torch.Tensor, age: torch.Tensor, targets: Sequence[Target]
) -> dict[str, list[np.ndarray]]:
    """Grad-CAM of both eyes for several targets from ONE forward of the bilateral net, one backward per target.

    The gradient of a logit with respect to one eye's feature map does not depend on whether the other eye's
    features are held fixed, so one forward through the shared encoder (both eyes) and one backward per target
    give both eyes' maps, equal to :func:`gradcam_bilateral`'s (which costs two forwards per target).

    Returns:
        ``{"left": [...], "right": [...]}``: one (H, W) map in [0, 1] per target for each eye (B = 1).
    """
    import torch

    if left.shape[0] != 1 or right.shape[0] != 1:
        raise InputError("one patient at a time (batch of 1 per eye)", field="x")
    maps: dict[str, list[np.ndarray]] = {"left": [], "right": []}
    if not targets:
        return maps
    layer = resolve_layer(net, getattr(net, "target_layer", None))
    l_in, r_in = left.detach().requires_grad_(True), right.detach().requires_grad_(True)
    with _mode_kept(net), torch.enable_grad(), _captured(layer) as acts:
        net.eval()
        row = net(l_in, r_in, age)[0]
        for k, target in enumerate(targets):
            grads = torch.autograd.grad(_score(target, row), acts, retain_graph=k < len(targets) - 1)
            rows = [(a[i : i + 1], g[i : i + 1]) for a, g in zip(acts, grads, strict=True) for i in range(a.shape[0])]
            if len(rows) != 2:
                raise InputError(f"target layer ran on {len(rows)} images; expected the two eyes")
            for (act, grad), (eye, image) in zip(rows, (("left", l_in), ("right", r_in)), strict=True):
                maps[eye].append(_finish(_cams_from(act, grad, (image.shape[-1], image.shape[-2])), True))
    return maps


def bilateral_eye_model(
    net: nn.Module, left: torch.Tensor, right: torch.Tensor, age: torch.Tensor, eye: Literal["left", "right"]
) -> tuple[nn.Module, torch.Tensor]:
    """A module ``f(eye_image) -> logits`` with the other eye's features and age held fixed, and that eye's image.

    The other eye's pooled features are computed once, without gradient, so any single-input explainer (Grad-CAM,
    gradient × input...) sees only the chosen eye as the differentiable input and the shared encoder runs once.

    Args:
        net: a bilateral net with ``encode`` and ``forward_head`` (e.g. BilateralFusionNet).
        left, right: (B, C, H, W) preprocessed images.
        age: (B,) or (B, 1) normalised age.
        eye: ``"left"`` or ``"right"``.
    """
    import torch
    from torch import nn

    if eye not in ("left", "right"):
        raise InputError(f"eye is '{eye}'; expected 'left' or 'right'", field="eye")
    for name in ("encode", "forward_head"):
        if not hasattr(net, name):
            raise InputError(f"{type(net).__name__} has no '{name}': not a bilateral net", field="net")
    image, other = (left, right) if eye == "left" else (right, left)
    with torch.no_grad():
        other_feat = net.encode(other).detach()

    class OneEye(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feat = self.net.encode(x)
            fixed = other_feat.expand(feat.shape[0], -1)
            if eye == "left":
                return self.net.forward_head(feat, fixed, age)
            return self.net.forward_head(fixed, feat, age)

    return OneEye(), image


def gradcam_bilateral(
    net: nn.Module,
    left: torch.Tensor,
    right: torch.Tensor,
    age: torch.Tensor,
    *,
    target_index: int | Sequence[int],
    eye: Literal["left", "right"],
) -> np.ndarray:
    """Grad-CAM of one eye for a bilateral net (``encode``/``forward_head``/``target_layer``, e.g. BilateralFusionNet).

    Only the chosen eye's image is the differentiable input: the other eye's pooled features are computed once
    without gradient and held fixed, so the shared encoder runs once per pass and the map is that eye's alone.

    Args:
        net: the bilateral net.
        left, right: (B, C, H, W) preprocessed images (B = 1 usually).
        age: (B,) or (B, 1) normalised age, as the net takes it.
        target_index: the logit (label column) to explain.
        eye: ``"left"`` or ``"right"``.

    Returns:
        (H, W) float32 in [0, 1] in the chosen eye's *input* coordinates for B = 1, else (B, H, W).
    """
    layer = resolve_layer(net, getattr(net, "target_layer", None))
    with _mode_kept(net):
        net.eval()
        wrapper, image = bilateral_eye_model(net, left, right, age, eye)
        return gradcam_2d(wrapper, image, target_index, layer)


def gradcam_1d(
    model: nn.Module,
    x: torch.Tensor,
    target_index: int | Sequence[int],
    target_layer: str | nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM for a 1D (signal) net ``model(x) -> (B, K)`` with a (B, C', l) target layer.

    Same arithmetic as 2D Grad-CAM: channel weights = mean gradient over time, map = ReLU(Σ weight × activation),
    linearly interpolated to the input length and min–max normalised per signal.

    Args:
        x: (C, L) or (B, C, L) signal (e.g. 12 leads × samples).
        target_index: the logit to explain, one for all or one per batch item.
        target_layer: module or dotted path; ``model.target_layer`` when ``None``.

    Returns:
        (L,) float32 in [0, 1] for one signal, else (B, L); index i is sample i of the input.
    """
    import torch

    if x.ndim not in (2, 3):
        raise InputError(f"expected (C, L) or (B, C, L), got shape {tuple(x.shape)}", field="x")
    squeeze = x.ndim == 2 or x.shape[0] == 1
    batch = (x.unsqueeze(0) if x.ndim == 2 else x).detach().requires_grad_(True)
    layer = resolve_layer(model, target_layer)
    indices = _targets(target_index, batch.shape[0])
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    try:
        with _mode_kept(model), torch.enable_grad():
            model.eval()
            logits = model(batch)
            act = store["act"]
            if act.ndim != 3:
                raise InputError(f"target layer output has shape {tuple(act.shape)}; expected (B, C, l)")
            score = logits[torch.arange(batch.shape[0]), torch.as_tensor(indices)].sum()
            (grads,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    return _finish(cam_1d(act, grads, batch.shape[-1]), squeeze)


def cam_1d(act: torch.Tensor, grads: torch.Tensor, length: int) -> np.ndarray:
    """Grad-CAM 1D from (B, C, l) activations and their gradients: (B, length) float32, min–max per signal."""
    import torch
    import torch.nn.functional as F

    weights = grads.mean(dim=-1, keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=length, mode="linear", align_corners=False)[:, 0]
    cam = cam - cam.amin(dim=-1, keepdim=True)
    cam = cam / (cam.amax(dim=-1, keepdim=True) + 1e-7)
    return _finish(cam.cpu().numpy(), False)
