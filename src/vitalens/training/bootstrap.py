"""Bootstrap confidence intervals of held-out metrics, resampling samples or whole patients, or each class apart.

Why patients: several B-scans of one patient are not independent; resampling images would make the interval too
narrow. ``clusters`` (patient ids) resamples patients with replacement and takes all their samples (Field & Welsh
2007, cluster bootstrap); without it each sample is its own cluster. Percentile intervals; a resample whose metric
is undefined (a class missing) is skipped and counted.

Stratified (:func:`bootstrap_metric`, :func:`bootstrap_auroc`): where the held-out set is small (tens of abnormal
images) positives and negatives are resampled separately, so every replicate has both classes at their observed
sizes and no replicate's AUROC is undefined (Efron & Tibshirani 1993, percentile interval).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["bootstrap_ci", "bootstrap_metric", "bootstrap_auroc", "bootstrap_paired_delta", "sensitivity_specificity"]

logger = logging.getLogger(__name__)


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    clusters: Sequence[Any] | np.ndarray | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float | int]:
    """The metric on all samples and its percentile bootstrap interval.

    Args:
        metric: ``f(*arrays_subset) -> float`` (NaN when undefined on a resample).
        arrays: row-aligned arrays (truth, scores...).
        clusters: row-aligned cluster ids (patients); None: every row is its own cluster.
        n_boot: resamples.
        level: coverage of the interval.
        seed: the only source of randomness.

    Returns:
        ``{"value", "low", "high", "n", "n_clusters", "n_boot_used"}``.
    """
    rows = len(arrays[0])
    if any(len(a) != rows for a in arrays):
        raise ValueError("bootstrap arrays must have the same number of rows")
    ids = np.arange(rows) if clusters is None else np.asarray(clusters)
    uniq, inverse = np.unique(ids, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(uniq.size)]
    value = float(metric(*arrays))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, uniq.size, uniq.size)
        idx = np.concatenate([members[k] for k in pick])
        with np.errstate(all="ignore"):
            try:
                v = float(metric(*(np.asarray(a)[idx] for a in arrays)))
            except ValueError:
                v = float("nan")
        if np.isfinite(v):
            stats.append(v)
    alpha = (1.0 - level) / 2.0
    low, high = (float(np.quantile(stats, q)) for q in (alpha, 1.0 - alpha)) if stats else (float("nan"),) * 2
    return {
        "value": value,
        "low": low,
        "high": high,
        "n": int(rows),
        "n_clusters": int(uniq.size),
        "n_boot_used": len(stats),
    }


def sensitivity_specificity(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, float]:
    """(sensitivity, specificity) of ``score ≥ threshold``; NaN for a class that is absent."""
    y = np.asarray(y).astype(int).ravel()
    pred = np.asarray(score, dtype=float).ravel() >= threshold
    pos, neg = y == 1, y == 0
    sens = float(pred[pos].mean()) if pos.any() else float("nan")
    spec = float((~pred[neg]).mean()) if neg.any() else float("nan")
    return sens, spec


def bootstrap_metric(
    y: np.ndarray,
    score: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``metric(y, score)`` with a stratified percentile bootstrap interval.

    Returns:
        ``{"value", "ci_low", "ci_high", "n", "n_positive", "n_boot", "level"}``; the interval is NaN when a class
        is absent.
    """
    y = np.asarray(y).astype(int).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y has {y.size} values, score {s.size}")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out: dict[str, Any] = {
        "value": float("nan"),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
        "n": int(y.size),
        "n_positive": int(pos.size),
        "n_boot": int(n_boot),
        "level": float(level),
    }
    if pos.size == 0 or neg.size == 0:
        return out
    out["value"] = float(metric(y, s))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        reps[b] = metric(y[idx], s[idx])
    alpha = (1.0 - level) / 2.0
    out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(reps, [alpha, 1.0 - alpha]))
    return out


def bootstrap_auroc(y: np.ndarray, score: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    """AUROC with a stratified bootstrap interval (see :func:`bootstrap_metric`)."""
    return bootstrap_metric(y, score, lambda a, b: float(roc_auc_score(a, b)), **kwargs)


def bootstrap_paired_delta(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """AUROC(a) − AUROC(b) on the same items, with a stratified *paired* bootstrap interval (the same resampled
    items score both), and the share of replicates where a beats b."""
    y = np.asarray(y).astype(int).ravel()
    a, b = np.asarray(score_a, dtype=float).ravel(), np.asarray(score_b, dtype=float).ravel()
    if not (y.shape == a.shape == b.shape):
        raise ValueError(f"y, a and b differ in length: {y.size}, {a.size}, {b.size}")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out: dict[str, Any] = {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_a_better": None}
    out.update(n=int(y.size), n_positive=int(pos.size), n_boot=int(n_boot), level=float(level))
    if pos.size == 0 or neg.size == 0:
        return out
    out["value"] = float(roc_auc_score(y, a) - roc_auc_score(y, b))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for i in range(n_boot):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        reps[i] = roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx])
    alpha = (1.0 - level) / 2.0
    out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(reps, [alpha, 1.0 - alpha]))
    out["p_a_better"] = float((reps > 0).mean())
    return out
