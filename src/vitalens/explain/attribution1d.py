"""Attributions for 1D (ECG) nets, aligned to the input samples, per lead and pooled, in [0, 1].

Why more than Grad-CAM: Strodthoff et al. (2024) found Grad-CAM fails the model-randomisation sanity check on
12-lead ECG nets while gradient-based saliency passes; it is also as coarse as the last feature map and the same
for every lead. So this module offers both Grad-CAM 1D (``gradcam``, via ``vitalens.explain.gradcam_1d``) and
gradient attributions from captum (``saliency`` = |∂logit/∂x|, ``integrated_gradients`` from a zero baseline,
``input_x_gradient``); ``bench/ecg_explain_sanity.py`` runs the randomisation test for each on real records and the
model card's ``explanation_method`` names the one the analyzer uses.

Example:
    >>> a = attribute_1d(net, x, target_index=1, method="saliency")   # x: (12, 1000)   # doctest: +SKIP
    >>> a.per_lead.shape, a.pooled.shape                                               # doctest: +SKIP
    ((12, 1000), (1000,))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vitalens.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["METHODS", "Attribution1D", "attribute_1d", "attribute_1d_many", "normalize01", "downsample"]

logger = logging.getLogger(__name__)

#: Methods :func:`attribute_1d` accepts.
METHODS: tuple[str, ...] = ("saliency", "integrated_gradients", "input_x_gradient", "gradcam")


@dataclass(frozen=True)
class Attribution1D:
    """One explanation of one signal and target.

    Attributes:
        per_lead: ``(leads, samples)`` float32 in [0, 1] (one min–max over all leads, so leads are comparable;
            Grad-CAM gives every lead the same row).
        pooled: ``(samples,)`` float32 in [0, 1]: the per-lead magnitudes summed over leads, renormalised.
        method: the method name.
        target_index: the explained output column.
    """

    per_lead: np.ndarray
    pooled: np.ndarray
    method: str
    target_index: int


def normalize01(a: np.ndarray) -> np.ndarray:
    """Min–max to [0, 1] over the whole array (all zeros when constant); float32, NaN-free."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(a, dtype=np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)


def downsample(a: np.ndarray, n: int) -> np.ndarray:
    """Max-pool the last axis of ``a`` to ``n`` bins (keeps peaks; for JSON payloads and plots)."""
    length = a.shape[-1]
    if n >= length:
        return a.astype(np.float32)
    edges = np.linspace(0, length, n + 1).astype(int)
    return np.stack([a[..., s:e].max(axis=-1) for s, e in zip(edges[:-1], edges[1:], strict=True)], axis=-1)


def attribute_1d(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    target_index: int,
    *,
    method: str = "saliency",
    ig_steps: int = 32,
) -> Attribution1D:
    """Explain ``model``'s logit ``target_index`` for one signal ``x`` ``(leads, samples)``.

    Args:
        model: ``model(x) -> (B, K)`` logits on ``(B, leads, samples)``; left in the mode it was in.
        x: the preprocessed (z-scored) signal, ``(leads, samples)``.
        target_index: output column to explain.
        method: one of :data:`METHODS`.
        ig_steps: integration steps of ``integrated_gradients``.

    Returns:
        An :class:`Attribution1D` whose sample ``i`` is sample ``i`` of ``x``.

    Raises:
        UnknownNameError: unknown ``method``.
        InputError: ``x`` is not 2-D.
    """
    import torch

    if method not in METHODS:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("attribution method", method, METHODS)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x).float()
    if xt.ndim != 2:
        raise InputError(f"expected one signal (leads, samples), got shape {tuple(xt.shape)}", field="ecg")
    device = next(model.parameters()).device
    batch = xt.unsqueeze(0).to(device)
    if method == "gradcam":
        from vitalens.explain.gradcam import gradcam_1d

        heat = np.asarray(gradcam_1d(model, batch, int(target_index)), dtype=np.float32).reshape(-1)
        per_lead = np.repeat(heat[None, :], xt.shape[0], axis=0)
        return Attribution1D(normalize01(per_lead), normalize01(heat), method, int(target_index))
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    was_training = model.training
    try:
        model.eval()
        inp = batch.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            if method == "saliency":
                attr = Saliency(model).attribute(inp, target=int(target_index), abs=True)
            elif method == "input_x_gradient":
                attr = InputXGradient(model).attribute(inp, target=int(target_index))
            else:
                attr = IntegratedGradients(model).attribute(
                    inp, baselines=torch.zeros_like(inp), target=int(target_index), n_steps=ig_steps
                )
    finally:
        model.train(was_training)
    mag = attr.detach().abs()[0].cpu().numpy().astype(np.float32)
    return Attribution1D(normalize01(mag), normalize01(mag.sum(axis=0)), method, int(target_index))


def attribute_1d_many(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    target_indices: list[int],
    *,
    method: str = "saliency",
    ig_steps: int = 32,
) -> list[Attribution1D]:
    """:func:`attribute_1d` for several targets of one signal: ONE forward, one backward per target.

    Why: the analyzer explains every shown finding; saliency, input × gradient and Grad-CAM need only the gradient
    of each logit, which one forward's graph gives for every target. The results equal :func:`attribute_1d`'s
    target by target (tests check it). Integrated gradients runs its own path per target (each step is a different
    input, so no forward is shared).
    """
    import torch

    if method not in METHODS:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("attribution method", method, METHODS)
    if method == "integrated_gradients" or not target_indices:
        return [attribute_1d(model, x, int(t), method=method, ig_steps=ig_steps) for t in target_indices]
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x).float()
    if xt.ndim != 2:
        raise InputError(f"expected one signal (leads, samples), got shape {tuple(xt.shape)}", field="ecg")
    from vitalens.explain.gradcam import _captured, _mode_kept, resolve_layer

    device = next(model.parameters()).device
    inp = xt.unsqueeze(0).to(device).detach().requires_grad_(True)
    out: list[Attribution1D] = []
    layer = resolve_layer(model) if method == "gradcam" else None
    with _mode_kept(model), torch.enable_grad(), _captured(layer if layer is not None else model) as acts:
        model.eval()
        row = model(inp)[0]
        wrt = acts[-1] if method == "gradcam" else inp
        for k, t in enumerate(target_indices):
            (grad,) = torch.autograd.grad(row[int(t)], wrt, retain_graph=k < len(target_indices) - 1)
            if method == "gradcam":
                heat = _gradcam_1d_map(wrt, grad, inp.shape[-1])
                per_lead = np.repeat(heat[None, :], xt.shape[0], axis=0)
                out.append(Attribution1D(normalize01(per_lead), normalize01(heat), method, int(t)))
                continue
            attr = grad.abs() if method == "saliency" else grad * inp
            mag = attr.detach().abs()[0].cpu().numpy().astype(np.float32)
            out.append(Attribution1D(normalize01(mag), normalize01(mag.sum(axis=0)), method, int(t)))
    return out


def _gradcam_1d_map(act: torch.Tensor, grads: torch.Tensor, length: int) -> np.ndarray:
    """:func:`vitalens.explain.gradcam_1d`'s arithmetic for one signal: (1, C, l) activations → (length,) map."""
    from vitalens.explain.gradcam import cam_1d

    return cam_1d(act, grads, length)[0]
