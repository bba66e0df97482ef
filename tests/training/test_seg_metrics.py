"""Pixel metrics from histograms: exact values on hand-counted pixels, and agreement with scikit-learn's AUC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vitalens.training.seg_metrics import ScoreHistogram, best_f1_threshold, bootstrap_pixel_metrics, pixel_metrics


def test_confusion_at_threshold_is_exact() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    s = np.array([0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.1, 0.0])
    m = pixel_metrics(ScoreHistogram.from_pixels(y, s, bins=10), 0.5)
    # ≥ 0.5: tp 2 (0.9, 0.6), fp 1 (0.7); fn 1, tn 4
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["f1"] == pytest.approx(4 / 6)
    assert m["n_pixels"] == 8 and m["n_positive"] == 3


def test_mask_excludes_pixels() -> None:
    y = np.array([[1, 0], [1, 0]], bool)
    s = np.array([[0.9, 0.9], [0.1, 0.1]])
    mask = np.array([[True, False], [True, True]])
    m = pixel_metrics(ScoreHistogram.from_pixels(y, s, mask, bins=10), 0.5)
    assert m["n_pixels"] == 3 and m["specificity"] == 1.0 and m["sensitivity"] == 0.5


def test_auc_matches_sklearn_with_ties_as_half() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(5000) < 0.2
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.15), 0, 1).round(4)  # quantised: exact at 10,000 bins
    assert ScoreHistogram.from_pixels(y, s).auc() == pytest.approx(roc_auc_score(y, s), abs=1e-4)


def test_auc_perfect_and_single_class() -> None:
    assert ScoreHistogram.from_pixels(np.array([0, 1], bool), np.array([0.1, 0.9])).auc() == 1.0
    assert np.isnan(ScoreHistogram.from_pixels(np.array([1, 1], bool), np.array([0.1, 0.9])).auc())


def test_best_f1_threshold() -> None:
    y = np.array([1, 1, 0, 0], bool)
    s = np.array([0.8, 0.6, 0.4, 0.2])
    t = best_f1_threshold(ScoreHistogram.from_pixels(y, s, bins=10))
    assert 0.4 < t <= 0.6  # every edge in (0.4, 0.6] separates perfectly; the highest is taken
    assert t == pytest.approx(0.6)


def test_bootstrap_interval_brackets_the_point() -> None:
    rng = np.random.default_rng(1)
    hists = []
    for _ in range(10):
        y = rng.random(2000) < 0.15
        hists.append(ScoreHistogram.from_pixels(y, np.clip(rng.normal(0.3 + 0.35 * y, 0.15), 0, 1), bins=1000))
    out = bootstrap_pixel_metrics(hists, 0.5, n_boot=200)
    for k in ("f1", "auc", "accuracy"):
        assert out[k]["low"] <= out[k]["value"] <= out[k]["high"]


def test_bad_scores_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ScoreHistogram.from_pixels(np.array([1], bool), np.array([1.5]))
