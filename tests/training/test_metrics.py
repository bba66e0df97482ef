"""Held-out metrics: exact values on hand-made data, the ODIR-2019 score, single-class labels never crash."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitalens.training.metrics import multilabel_metrics, nan_to_none, odir_challenge_score, per_label_metrics


def test_per_label_metrics_exact() -> None:
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    m = per_label_metrics(y, s, threshold=0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 2, 1)
    assert m["sensitivity"] == 0.5
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / (2 + 1 + 1))
    assert m["auroc"] == pytest.approx(5 / 6)  # pairs: (0.9 > all 3), (0.4 > 0.2, 0.1)
    # the boundary: a score equal to the threshold is positive
    assert per_label_metrics(np.array([1, 0]), np.array([0.5, 0.2]), 0.5)["sensitivity"] == 1.0


def test_single_class_label_gives_nan_and_note() -> None:
    y = np.array([[1, 0], [0, 0], [1, 0]])
    p = np.array([[0.8, 0.1], [0.3, 0.7], [0.6, 0.2]])
    m = multilabel_metrics(y, p, [0.5, 0.5], ["A", "B"])
    assert math.isnan(m["per_label"]["B"]["auroc"])
    assert "only one class" in m["per_label"]["B"]["note"]
    assert m["macro_auroc"] == 1.0  # label A only
    assert m["notes"] == ["B: only one class (negative) in this split"]
    assert nan_to_none(m)["per_label"]["B"]["auroc"] is None


def test_odir_score_hand_made() -> None:
    # 2 patients × 2 labels, flattened: gt [1,0,0,1], scores [0.9,0.4,0.6,0.8] → predictions at 0.5: [1,0,1,1]
    gt = np.array([[1, 0], [0, 1]])
    pr = np.array([[0.9, 0.4], [0.6, 0.8]])
    s = odir_challenge_score(gt, pr, 0.5)
    # kappa: po = 3/4; pe = P(gt=1)P(pred=1) + P(gt=0)P(pred=0) = 0.5·0.75 + 0.5·0.25 = 0.5 → κ = 0.5
    assert s["kappa"] == pytest.approx(0.5)
    # the challenge's micro F1 on flattened binary data is the accuracy: 3/4
    assert s["f1"] == pytest.approx(0.75)
    # AUC on flattened scores: positives {0.9, 0.8} vs negatives {0.4, 0.6} → all 4 pairs ordered
    assert s["auc"] == pytest.approx(1.0)
    assert s["final"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)


def test_odir_score_per_label_thresholds() -> None:
    gt = np.array([[1, 0], [0, 1]])
    pr = np.array([[0.9, 0.4], [0.6, 0.8]])
    s = odir_challenge_score(gt, pr, [0.7, 0.5])  # label 0 threshold 0.7: 0.6 becomes negative
    assert s["kappa"] == pytest.approx(1.0) and s["f1"] == pytest.approx(1.0)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        multilabel_metrics(np.zeros((3, 2)), np.zeros((3, 3)), [0.5, 0.5], ["A", "B"])
