"""Losses: focal reduces to BCE, exact focal value, auto positive weights, label smoothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vitalens.training.losses import FocalLoss, SmoothedBCEWithLogitsLoss, auto_pos_weight, build_loss
from vitalens.training.recipe import LossSection


def test_focal_with_gamma_0_and_no_alpha_is_bce() -> None:
    z = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert FocalLoss(0.0, None)(z, y).item() == pytest.approx(F.binary_cross_entropy_with_logits(z, y).item())


def test_focal_exact_value() -> None:
    # one positive with logit 0: p = 0.5, CE = ln 2, (1 - p_t)^2 = 0.25, alpha 0.25 → 0.25·0.25·ln 2
    loss = FocalLoss(2.0, 0.25)(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    assert loss.item() == pytest.approx(0.0625 * math.log(2))


def test_auto_pos_weight_exact_and_clipped() -> None:
    y = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 1]])
    # label 0: 3 neg / 1 pos = 3; label 1: no positive → 1; label 2: 2/2 = 1
    np.testing.assert_allclose(auto_pos_weight(y), [3.0, 1.0, 1.0])
    np.testing.assert_allclose(auto_pos_weight(y, max_weight=2.0), [2.0, 1.0, 1.0])


def test_label_smoothing_targets() -> None:
    z = torch.tensor([[0.3]])
    smoothed = SmoothedBCEWithLogitsLoss(label_smoothing=0.2)(z, torch.tensor([[1.0]]))
    assert smoothed.item() == pytest.approx(F.binary_cross_entropy_with_logits(z, torch.tensor([[0.9]])).item())


def test_build_loss_from_recipe() -> None:
    y = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    bce = build_loss(LossSection(pos_weight="auto"), y)
    assert isinstance(bce, SmoothedBCEWithLogitsLoss)
    torch.testing.assert_close(bce.pos_weight, torch.tensor([3.0, 3.0]))
    assert isinstance(build_loss(LossSection(name="focal", focal_gamma=1.0)), FocalLoss)
