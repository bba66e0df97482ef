"""Gradient × input saliency (captum ``InputXGradient``): a pixel-level attribution to set beside Grad-CAM.

Why: Grad-CAM is as coarse as the last feature map (7×7 at 224 px); gradient × input is pixel-sharp but noisier.
Showing both, and running the same randomisation sanity check on both, keeps the explanation honest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vitalens.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["saliency_2d"]

logger = logging.getLogger(__name__)


def saliency_2d(model: nn.Module, x: torch.Tensor, target_index: int | Sequence[int]) -> np.ndarray:
    """|gradient × input| summed over channels, min–max normalised per image.

    Args:
        model: ``model(x) -> (B, K)`` logits.
        x: (C, H, W) or (B, C, H, W) preprocessed input.
        target_index: the logit to explain, one for all or one per batch item.

    Returns:
        (H, W) float32 in [0, 1] for one image (no batch dim or a batch of 1), else (B, H, W); input coordinates.
    """
    import torch
    from captum.attr import InputXGradient

    if x.ndim not in (3, 4):
        raise InputError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}", field="x")
    squeeze = x.ndim == 3 or x.shape[0] == 1
    batch = (x.unsqueeze(0) if x.ndim == 3 else x).detach().clone().requires_grad_(True)
    if isinstance(target_index, int | np.integer):
        target: int | list[int] = int(target_index)
    else:
        target = [int(t) for t in target_index]
        if len(target) != batch.shape[0]:
            raise InputError(f"{len(target)} target indices for a batch of {batch.shape[0]}", field="target_index")
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            attr = InputXGradient(model).attribute(batch, target=target)
    finally:
        model.train(was_training)
    heat = attr.detach().abs().sum(dim=1)
    heat = heat - heat.flatten(1).amin(dim=1)[:, None, None]
    heat = heat / (heat.flatten(1).amax(dim=1)[:, None, None] + 1e-12)
    maps = np.clip(np.nan_to_num(heat.cpu().numpy().astype(np.float32)), 0.0, 1.0)
    return maps[0] if squeeze else maps
