"""Held-out metrics of multi-class and ordinal classifiers, and of the binary findings derived from them.

Why beside the multi-label metrics: a DR grade and an OCT class are judged by accuracy, quadratic weighted kappa
(the APTOS and DeepDRiD challenge metric), macro one-vs-rest AUROC (MedMNIST's table), per-class precision, recall
and F1, the confusion matrix and the top-label calibration error, none of which the per-label view gives. A
referable-DR finding (grade ≥ 2) is scored like a binary label: AUROC and sensitivity/specificity at its threshold.
All from scikit-learn; NaN with a note where a split lacks a class.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = ["multiclass_metrics", "derived_metrics", "top_label_ece", "quadratic_kappa"]

logger = logging.getLogger(__name__)


def quadratic_kappa(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa with quadratic weights over classes ``0..n_classes-1`` (NaN when undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = skm.cohen_kappa_score(y_true, y_pred, labels=list(range(n_classes)), weights="quadratic")
    return float(k)


def top_label_ece(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> float:
    """ECE of the top-label confidence (Guo et al. 2017): Σ_b n_b/n · |accuracy_b − confidence_b|."""
    p = np.asarray(probs, dtype=float)
    if p.size == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def macro_auroc_ovr(y: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """Mean one-vs-rest AUROC over the classes that have both positives and negatives among class indices ``y``,
    and how many classes that is (NaN, 0 when none has)."""
    aucs = [
        float(skm.roc_auc_score(y == c, probs[:, c]))
        for c in range(probs.shape[1])
        if 0 < int((y == c).sum()) < int(y.size)
    ]
    return (float(np.mean(aucs)) if aucs else float("nan")), len(aucs)


def multiclass_metrics(
    y_onehot: np.ndarray, probs: np.ndarray, labels: Sequence[str], *, ordinal: bool = False, n_bins: int = 10
) -> dict[str, Any]:
    """Metrics of an exclusive-class prediction (argmax of ``probs``).

    Args:
        y_onehot: ``(N, K)`` one-hot truth.
        probs: ``(N, K)`` class probabilities (rows sum to 1).
        labels: class codes in column order.
        ordinal: also report the kappas and the mean absolute grade error (classes are ordered grades).

    Returns:
        ``{"n", "accuracy", "balanced_accuracy", "macro_auroc_ovr", "per_class": {label: {precision, recall, f1,
        support}}, "confusion_matrix" (rows truth, columns prediction), "top_label_ece", ...}`` (+ ``quadratic_kappa``,
        ``linear_kappa``, ``mean_abs_error`` when ordinal).
    """
    y1 = np.asarray(y_onehot)
    p = np.asarray(probs, dtype=float)
    k = len(labels)
    if y1.shape != p.shape or p.shape[1] != k:
        raise ValueError(f"shapes differ: y {y1.shape}, probs {p.shape}, {k} labels")
    y = y1.argmax(axis=1)
    pred = p.argmax(axis=1)
    out: dict[str, Any] = {"n": int(y.size), "notes": []}
    if y.size == 0:
        out.update(accuracy=float("nan"), balanced_accuracy=float("nan"), macro_auroc_ovr=float("nan"))
        return out
    present = np.unique(y)
    out["accuracy"] = float((pred == y).mean())
    recalls = [float((pred[y == c] == c).mean()) for c in present]
    out["balanced_accuracy"] = float(np.mean(recalls))
    out["macro_auroc_ovr"], n_scored = macro_auroc_ovr(y, p)
    if n_scored < k:
        out["notes"].append(f"macro AUROC over the {n_scored} of {k} classes present in this split")
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=np.nan)
    out["per_class"] = {
        lab: {
            "precision": float(prec[j]),
            "recall": float(rec[j]),
            "f1": float(f1[j]),
            "support": int(support[j]),
        }
        for j, lab in enumerate(labels)
    }
    f1_present = [float(f1[j]) for j in present if np.isfinite(f1[j])]
    out["macro_f1_argmax"] = float(np.mean(f1_present)) if f1_present else float("nan")
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=list(range(k))).tolist()
    out["top_label_ece"] = top_label_ece(p, y, n_bins)
    out["nll"] = float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], 1e-12, 1.0))))
    if ordinal:
        out["quadratic_kappa"] = quadratic_kappa(y, pred, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["linear_kappa"] = float(skm.cohen_kappa_score(y, pred, labels=list(range(k)), weights="linear"))
        out["mean_abs_error"] = float(np.abs(pred - y).mean())
    return out


def derived_metrics(
    y_onehot: np.ndarray, probs: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float
) -> dict[str, Any]:
    """Binary metrics of a derived finding (P = sum of ``classes``' probabilities) at ``threshold``."""
    from vitalens.artifacts.outputs import derived_probability
    from vitalens.training.metrics import per_label_metrics

    idx = [list(labels).index(c) for c in classes]
    truth = np.asarray(y_onehot)[:, idx].sum(axis=1).clip(0, 1)
    score = derived_probability(probs, labels, classes)
    return per_label_metrics(truth, score, threshold)
