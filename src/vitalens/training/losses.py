"""Multi-label losses: BCE with optional positive weights and label smoothing, and focal loss.

Why these: retinal and ECG labels are rare and imbalanced (hypertension, AMD); positive weights and the focal
term (Lin et al., 2017, "Focal Loss for Dense Object Detection") keep the rare labels from being ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from vitalens.training.recipe import LossSection

__all__ = ["FocalLoss", "SmoothedBCEWithLogitsLoss", "auto_pos_weight", "build_loss"]

logger = logging.getLogger(__name__)


def _smooth(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Binary label smoothing: 1 → 1 − ε/2, 0 → ε/2."""
    return target * (1.0 - smoothing) + 0.5 * smoothing if smoothing > 0 else target


class SmoothedBCEWithLogitsLoss(nn.Module):
    """``BCEWithLogitsLoss`` with binary label smoothing ε (targets 0/1 become ε/2 and 1 − ε/2).

    Args:
        pos_weight: ``(L,)`` weight of positives per label, or None.
        label_smoothing: ε in [0, 0.5).
    """

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else None)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            logits, _smooth(target.float(), self.label_smoothing), pos_weight=self.pos_weight
        )


class FocalLoss(nn.Module):
    """Sigmoid focal loss for multi-label targets, mean over batch and labels.

    ``FL = −α_t (1 − p_t)^γ log(p_t)`` with ``p_t`` the probability of the true class and ``α_t = α`` for
    positives, ``1 − α`` for negatives (no α weighting when ``alpha`` is None). γ = 0 and α = None is BCE.

    Args:
        gamma: focusing parameter γ ≥ 0.
        alpha: weight of positives in [0, 1], or None.
        label_smoothing: ε applied to the targets before the loss.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be ≥ 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"focal alpha must be in [0, 1], got {alpha}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = _smooth(target.float(), self.label_smoothing)
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        loss = ce * (1 - p_t).pow(self.gamma)
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1 - self.alpha) * (1 - target))
        return loss.mean()


def auto_pos_weight(train_targets: np.ndarray, max_weight: float = 20.0) -> np.ndarray:
    """Negatives / positives per label on the training split, clipped to ``[1, max_weight]``.

    A label without positives gets weight 1 (nothing to up-weight).

    Args:
        train_targets: ``(N, L)`` 0/1 array.
    """
    y = np.asarray(train_targets, dtype=float)
    pos = y.sum(axis=0)
    neg = y.shape[0] - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(pos > 0, neg / np.maximum(pos, 1e-12), 1.0)
    return np.clip(w, 1.0, max_weight)


def build_loss(section: LossSection, train_targets: np.ndarray | None = None) -> nn.Module:
    """The loss a recipe's ``loss:`` section asks for."""
    pos_weight: torch.Tensor | None = None
    if isinstance(section.pos_weight, list):
        pos_weight = torch.tensor(section.pos_weight, dtype=torch.float32)
    elif section.pos_weight == "auto":
        if train_targets is None:
            raise ValueError("pos_weight 'auto' needs the training targets")
        pos_weight = torch.tensor(auto_pos_weight(train_targets, section.pos_weight_max), dtype=torch.float32)
        logger.info("BCE positive weights (auto): %s", [round(float(w), 2) for w in pos_weight])
    if section.name == "focal":
        if pos_weight is not None:
            logger.warning("pos_weight is ignored by the focal loss (alpha weights positives)")
        return FocalLoss(section.focal_gamma, section.focal_alpha, section.label_smoothing)
    return SmoothedBCEWithLogitsLoss(pos_weight, section.label_smoothing)
