"""Fusion heads on cached features: they learn a separable label out of fold, average views and members as
documented, need per-eye targets for the auxiliary loss, and load into the bilateral net with identical logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from vitalens.training.odir_features import EyeFeatures
from vitalens.training.odir_heads import FeatureHead, HeadConfig, crossval_heads, head_logits, train_head

FAST = HeadConfig(
    epochs=40, batch_size=16, lr=1e-2, head_hidden=(32, 16), age_dim=8, feature_dropout=0.0, drop_rate=0.0
)


def _toy(n: int = 150, f: int = 12, views: int = 2, seed: int = 0) -> tuple[EyeFeatures, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 2, views, f)).astype(np.float32)
    y = np.zeros((n, 3), dtype=np.float32)
    y[:, 1] = feats[:, 0, 0, 0] > 0.3  # label 1: the left eye's feature 0
    y[:, 2] = feats[:, 1, 0, 1] > 0.3  # label 2: the right eye's feature 1
    y[:, 0] = (y[:, 1:].sum(1) == 0).astype(np.float32)  # N: no other label
    feats[:, :, 1] = feats[:, :, 0]  # the second view carries the same signal
    ages = rng.uniform(40, 80, size=n)
    names = ("id", "hflip")[:views]
    return EyeFeatures(feats, [str(i) for i in range(n)], names, "toy", "none", 64), ages, y


def test_crossval_learns_each_eyes_label_out_of_fold() -> None:
    features, ages, y = _toy()
    folds = np.arange(len(y)) % 3
    oof = crossval_heads(features, ages, y, folds, FAST)
    assert oof.logits.shape == y.shape and np.isfinite(oof.logits).all()
    assert roc_auc_score(y[:, 1], oof.logits[:, 1]) > 0.9
    assert roc_auc_score(y[:, 2], oof.logits[:, 2]) > 0.9
    np.testing.assert_array_equal(oof.folds, folds)


def test_derived_normal_head_outputs_no_other_label() -> None:
    features, ages, y = _toy()
    cfg = HeadConfig(**{**FAST.to_dict(), "derived_normal": True})
    head = train_head(features.feats[:, :, [0]], (ages - 60) / 10, y, cfg)
    z = head_logits([head], features.feats[:, :, [0]], (ages - 60) / 10)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(p[:, 0], np.prod(1 - p[:, 1:], axis=1), rtol=1e-4, atol=1e-6)


def test_head_logits_average_views_and_members() -> None:
    features, ages, y = _toy()
    a = (ages - 60) / 10
    heads = [train_head(features.feats[:, :, [0]], a, y, FAST, seed=s) for s in (1, 2)]
    both = head_logits(heads, features.feats, a)
    parts = [head_logits([h], features.feats[:, :, [v]], a) for h in heads for v in (0, 1)]
    np.testing.assert_allclose(both, np.mean(parts, axis=0), rtol=1e-5, atol=1e-6)


def test_aux_loss_needs_per_eye_targets_and_trains_its_head() -> None:
    features, ages, y = _toy()
    cfg = HeadConfig(**{**FAST.to_dict(), "aux_weight": 0.5})
    with pytest.raises(ValueError, match="per-eye targets"):
        train_head(features.feats, ages, y, cfg)
    eye_y = np.stack([y, y], axis=1)
    head = train_head(features.feats, ages, y, cfg, eye_y=eye_y)
    assert head.eye_head is not None
    assert not any(k.startswith("eye_head") for k in head.head_state())


def test_head_state_loads_into_the_bilateral_net_with_identical_logits() -> None:
    from vitalens.nets import create_net

    torch.manual_seed(0)
    net = create_net("odir_test", num_classes=3, derived_normal=True).eval()
    cfg = HeadConfig(head_hidden=(32, 16), age_dim=8, derived_normal=True)
    head = FeatureHead(net.num_features, 3, cfg).eval()
    missing = net.load_state_dict(head.head_state(), strict=False)
    assert not missing.unexpected_keys and all(k.startswith("encoder.") for k in missing.missing_keys)
    left, right, age = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.tensor([0.5, -0.2])
    with torch.no_grad():
        expected = head(net.encode(left), net.encode(right), age)
        torch.testing.assert_close(net(left, right, age), expected)
