"""Bootstrap confidence intervals of held-out metrics, resampling samples or whole patients.

Why patients: several B-scans of one patient are not independent; resampling images would make the interval too
narrow. ``clusters`` (patient ids) resamples patients with replacement and takes all their samples (Field & Welsh
2007, cluster bootstrap); without it each sample is its own cluster. Percentile intervals; a resample whose metric
is undefined (a class missing) is skipped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci"]

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
