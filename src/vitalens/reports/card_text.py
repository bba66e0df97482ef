"""A model card in a clinician's words: data, metrics with their n, operating points, calibration, limits, use.

Why its own function: the results page showed the card's raw JSON cut off mid-word; the page, the print view and
the PDF now show the same readable rows from :func:`card_summary_items`, built from the stored card summary (the
part of :class:`vitalens.artifacts.ModelCard` kept with each result). Nothing is computed here: a row appears only
for what the card states, and numbers are printed as stored (rounded for reading).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["METRIC_NAMES", "card_summary_items"]

logger = logging.getLogger(__name__)

#: Headline metrics in reading order, with their names; others stay in the card file.
METRIC_NAMES: dict[str, str] = {
    "macro_auroc": "macro AUROC",
    "auc": "AUROC",
    "macro_ap": "macro average precision",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro F1",
    "f1": "F1",
    "macro_sensitivity": "sensitivity (macro)",
    "sensitivity": "sensitivity",
    "macro_specificity": "specificity (macro)",
    "specificity": "specificity",
    "quadratic_kappa": "quadratic kappa",
    "ece": "calibration error (ECE)",
    "top_label_ece": "calibration error (top-label ECE)",
}


def _num(value: Any) -> str:
    return f"{float(value):.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _data(td: Mapping[str, Any]) -> str | None:
    parts = []
    datasets = ", ".join(str(d) for d in td.get("datasets") or [])
    provenance = td.get("provenance")
    if datasets:
        parts.append(f"{datasets}" + (f" ({provenance} data)" if provenance else ""))
    counts = []
    if td.get("n_patients"):
        counts.append(f"{td['n_patients']:,} patients")
    if td.get("n_samples") and td.get("n_samples") != td.get("n_patients"):
        counts.append(f"{td['n_samples']:,} samples")
    if counts:
        parts.append(", ".join(counts))
    splits = td.get("splits") or {}
    sizes = splits.get("sizes") if isinstance(splits, Mapping) else None
    if isinstance(sizes, Mapping) and sizes:
        split_text = " · ".join(f"{k} {v}" for k, v in sizes.items())
        unit = splits.get("unit")
        parts.append(f"split {split_text}" + (f" (by {unit})" if unit else ""))
    return "; ".join(parts) or (str(td["description"]) if td.get("description") else None)


def _metrics(metrics: Mapping[str, Any]) -> str | None:
    shown = [
        f"{name} {_num(metrics[k])}" for k, name in METRIC_NAMES.items() if isinstance(metrics.get(k), int | float)
    ]
    if not shown:
        return None
    n = metrics.get("n")
    split = metrics.get("split") or "held-out test"
    where = f"on n = {n} ({split})" if n else f"({split})"
    return f"{where}: " + ", ".join(shown)


def _thresholds(card: Mapping[str, Any]) -> str | None:
    thresholds = card.get("thresholds")
    if not isinstance(thresholds, Mapping) or not thresholds:
        return None
    text = ", ".join(f"{k} ≥ {_num(v)}" for k, v in thresholds.items() if isinstance(v, int | float))
    method = card.get("threshold_method")
    return f"positive when {text}" + (f" (chosen by {method})" if method else "")


def card_summary_items(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(heading, text) rows of the stored card summary, in reading order; rows the card lacks are left out.

    Rows: Model, Training data, Held-out metrics (with n), Operating points (thresholds and how they were chosen),
    Calibration, Intended use, Limitations, Explanation method.
    """
    rows: list[tuple[str, str]] = []
    if card.get("name"):
        version = f" version {card['version']}" if card.get("version") else ""
        demo = " — demonstration model, not for clinical use" if card.get("demonstration") else ""
        rows.append(("Model", f"{card['name']}{version}{demo}"))
    td = card.get("training_data")
    if isinstance(td, Mapping):
        text = _data(td)
        if text:
            rows.append(("Training data", text))
    metrics = card.get("metrics")
    if isinstance(metrics, Mapping):
        text = _metrics(metrics)
        if text:
            rows.append(("Held-out metrics", text))
    text = _thresholds(card)
    if text:
        rows.append(("Operating points", text))
    elif card.get("threshold_method"):
        rows.append(("Operating points", f"thresholds chosen by {card['threshold_method']}"))
    calibration = card.get("calibration")
    if isinstance(calibration, Mapping):
        calibration = calibration.get("method")
    if calibration:
        rows.append(("Calibration", str(calibration)))
    if card.get("intended_use"):
        rows.append(("Intended use", str(card["intended_use"])))
    limitations = card.get("limitations")
    if isinstance(limitations, list | tuple):
        limitations = "; ".join(str(x) for x in limitations if x)
    if limitations:
        rows.append(("Limitations", str(limitations)))
    if card.get("explanation_method"):
        rows.append(("Explanation method", str(card["explanation_method"])))
    return rows
