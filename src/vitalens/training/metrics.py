"""Held-out metrics of a multi-label classifier (sklearn), robust to labels with one class in a split.

Why NaN-and-note instead of an exception: a rare label (hypertension in a 50-patient test split) may have no
positive; its AUROC is undefined, and the report must say so instead of crashing or printing 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "binarize",
    "per_label_metrics",
    "multilabel_metrics",
    "odir_challenge_score",
    "subgroup_metrics",
    "nan_to_none",
]

logger = logging.getLogger(__name__)


def binarize(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """0/1 predictions ``probs ≥ threshold`` per label column. ``probs`` is ``(N, L)``."""
    p = np.asarray(probs, dtype=float)
    t = np.asarray(thresholds, dtype=float).reshape(1, -1)
    return (p >= t).astype(int)


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def per_label_metrics(y_true: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """AUROC, AP, F1, sensitivity, specificity, PPV, NPV of one label at ``threshold``.

    Args:
        y_true: ``(N,)`` 0/1.
        probs: ``(N,)`` probabilities.
        threshold: positive when ``prob ≥ threshold``.

    Returns:
        A dict; AUROC and AP are NaN (with ``note``) when the split has a single class.
    """
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(probs, dtype=float).ravel()
    pred = (s >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_positive": int(y.sum()),
        "prevalence": _safe_div(y.sum(), y.size),
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "sensitivity": _safe_div(tp, tp + fn),
        "specificity": _safe_div(tn, tn + fp),
        "ppv": _safe_div(tp, tp + fp),
        "npv": _safe_div(tn, tn + fn),
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn) if (tp + fp + fn) else float("nan"),
    }
    if 0 < y.sum() < y.size:
        out["auroc"] = float(skm.roc_auc_score(y, s))
        out["ap"] = float(skm.average_precision_score(y, s))
    else:
        out["auroc"] = float("nan")
        out["ap"] = float("nan")
        out["note"] = f"only one class ({'positive' if y.size and y.sum() else 'negative'}) in this split"
    return out


def odir_challenge_score(y_true: np.ndarray, probs: np.ndarray, thresholds: Sequence[float] | float = 0.5) -> dict:
    """The ODIR-2019 challenge score: mean of Cohen's kappa, F1 and AUC on the flattened label matrix.

    As in the challenge's evaluation code: ground truth and scores ``(N, 8)`` are flattened to ``N·8`` values;
    kappa and F1 compare the truth with the binarised predictions (here ``prob ≥ threshold`` per label; the
    challenge used ``> 0.5``), F1 with ``average="micro"`` (which on flattened binary data equals accuracy — the
    challenge's own definition, kept for comparability), and AUC uses the flattened scores.

    Returns:
        ``{"kappa", "f1", "auc", "final"}``; NaN AUC/kappa (never an exception) when undefined.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(probs, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    t = t.reshape(1, -1) if t.ndim else t
    gt = y.ravel()
    pr = p.ravel()
    pred = (p >= t).astype(int).ravel()
    if np.unique(gt).size < 2:
        auc = float("nan")
    else:
        auc = float(skm.roc_auc_score(gt, pr))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(skm.cohen_kappa_score(gt, pred))
    f1 = float(skm.f1_score(gt, pred, average="micro"))
    final = (kappa + f1 + auc) / 3.0
    return {"kappa": kappa, "f1": f1, "auc": auc, "final": float(final)}


def multilabel_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    labels: Sequence[str],
) -> dict[str, Any]:
    """Per-label and averaged metrics of an ``(N, L)`` multi-label prediction.

    Returns:
        ``{"n", "per_label": {label: {...}}, "macro_auroc", "micro_auroc", "macro_ap", "macro_f1",
        "micro_f1", "notes": [...]}``; macro averages skip labels whose metric is NaN (and say so).
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(probs, dtype=float)
    thr = np.asarray(thresholds, dtype=float)
    if y.shape != p.shape or y.shape[1] != len(labels) or thr.size != len(labels):
        raise ValueError(f"shapes differ: y {y.shape}, probs {p.shape}, {thr.size} thresholds, {len(labels)} labels")
    per = {lab: per_label_metrics(y[:, j], p[:, j], thr[j]) for j, lab in enumerate(labels)}
    notes = [f"{lab}: {m['note']}" for lab, m in per.items() if "note" in m]

    def _macro(key: str) -> float:
        vals = [m[key] for m in per.values() if not np.isnan(m[key])]
        return float(np.mean(vals)) if vals else float("nan")

    pred = binarize(p, thr)
    flat_y = y.ravel()
    micro_auroc = float(skm.roc_auc_score(flat_y, p.ravel())) if np.unique(flat_y).size == 2 else float("nan")
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return {
        "n": int(y.shape[0]),
        "per_label": per,
        "macro_auroc": _macro("auroc"),
        "micro_auroc": micro_auroc,
        "macro_ap": _macro("ap"),
        "macro_f1": _macro("f1"),
        "micro_f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "macro_sensitivity": _macro("sensitivity"),
        "macro_specificity": _macro("specificity"),
        "notes": notes,
    }


def subgroup_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    groups: dict[str, np.ndarray],
    min_size: int = 2,
) -> dict[str, dict[str, Any]]:
    """Compact metrics per subgroup: ``{column: {group: {"n", "macro_auroc", "macro_f1", ...}}}``.

    Groups smaller than ``min_size`` are reported with their size only.
    """
    out: dict[str, dict[str, Any]] = {}
    y = np.asarray(y_true)
    p = np.asarray(probs)
    for column, values in groups.items():
        values = np.asarray(values).astype(str)
        out[column] = {}
        for group in sorted(set(values.tolist())):
            mask = values == group
            if mask.sum() < min_size:
                out[column][group] = {"n": int(mask.sum()), "note": "too few samples"}
                continue
            m = multilabel_metrics(y[mask], p[mask], thresholds, labels)
            out[column][group] = {
                "n": m["n"],
                "macro_auroc": m["macro_auroc"],
                "macro_f1": m["macro_f1"],
                "macro_sensitivity": m["macro_sensitivity"],
                "macro_specificity": m["macro_specificity"],
            }
    return out


def nan_to_none(obj: Any) -> Any:
    """Replace NaN/inf floats by None recursively (strict JSON, pydantic cards)."""
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
