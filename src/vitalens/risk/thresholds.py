"""Choosing operating thresholds on the validation split (never on test).

Why pure functions: the same choice is made by training, by re-calibration from clinician feedback, and by
the tests on hand-computed ROC points.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["youden_threshold", "target_sensitivity_threshold", "f1_threshold", "choose_threshold"]


def _validate(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values, y_score {s.size}")
    if np.isnan(s).any():
        raise ValueError("y_score contains NaN")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("y_true must be binary 0/1")
    return y, s


def _candidates(s: np.ndarray) -> np.ndarray:
    """Every distinct score is a candidate threshold (predict positive when score ≥ t)."""
    return np.unique(s)[::-1]


def youden_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity − 1 (ties: the higher threshold).

    Returns 0.5 when the split has only one class (no ROC to speak of).
    """
    y, s = _validate(y_true, y_score)
    pos, neg = y.sum(), (1 - y).sum()
    if pos == 0 or neg == 0:
        return 0.5
    best_t, best_j = 0.5, -np.inf
    for t in _candidates(s):
        pred = s >= t
        sens = (pred & (y == 1)).sum() / pos
        spec = (~pred & (y == 0)).sum() / neg
        j = sens + spec - 1
        if j > best_j + 1e-12:
            best_t, best_j = float(t), float(j)
    return best_t


def target_sensitivity_threshold(y_true: ArrayLike, y_score: ArrayLike, target: float = 0.95) -> float:
    """The highest threshold whose sensitivity on the split is ≥ ``target``.

    Being the highest such threshold, it gives the best specificity at that sensitivity. Returns 0.5 when the
    split has no positives.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    y, s = _validate(y_true, y_score)
    pos = y.sum()
    if pos == 0:
        return 0.5
    pos_scores = np.sort(s[y == 1])[::-1]
    k = int(np.ceil(target * pos - 1e-9))  # at least k positives at or above t
    return float(pos_scores[max(k, 1) - 1])


def f1_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising F1 (ties: the higher threshold); 0.5 without positives."""
    y, s = _validate(y_true, y_score)
    if y.sum() == 0:
        return 0.5
    best_t, best_f = 0.5, -1.0
    for t in _candidates(s):
        pred = s >= t
        tp = (pred & (y == 1)).sum()
        fp = (pred & (y == 0)).sum()
        fn = (~pred & (y == 1)).sum()
        f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f > best_f + 1e-12:
            best_t, best_f = float(t), float(f)
    return best_t


def choose_threshold(y_true: ArrayLike, y_score: ArrayLike, method: str = "youden", **kwargs: float) -> float:
    """Dispatch by name: ``youden``, ``target_sensitivity`` (``target=``), ``f1`` or ``fixed`` (``value=``)."""
    if method == "youden":
        return youden_threshold(y_true, y_score)
    if method == "target_sensitivity":
        return target_sensitivity_threshold(y_true, y_score, float(kwargs.get("target", 0.95)))
    if method == "f1":
        return f1_threshold(y_true, y_score)
    if method == "fixed":
        return float(kwargs.get("value", 0.5))
    from vitalens._naming import unknown_name_error

    raise unknown_name_error("threshold method", method, ["youden", "target_sensitivity", "f1", "fixed"])
