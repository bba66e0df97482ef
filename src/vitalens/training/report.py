"""Evaluation reports: metrics of a split at the card's thresholds, JSON + Markdown, ROC/PR/reliability plots.

Why one writer for training and ``vitalens evaluate``: the figures a researcher compares must be computed and
laid out the same way whichever command produced them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.training.calibration import expected_calibration_error, reliability_curve
from vitalens.training.metrics import multilabel_metrics, nan_to_none, subgroup_metrics

__all__ = [
    "evaluate_split",
    "report_head",
    "write_report",
    "render_markdown",
    "plot_roc",
    "plot_pr",
    "plot_reliability",
]

logger = logging.getLogger(__name__)


def evaluate_split(
    labels: Sequence[str],
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    *,
    raw_probs: np.ndarray | None = None,
    groups: dict[str, np.ndarray] | None = None,
    extra: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]] | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """All metrics of one split: per label and averaged, ECE (calibrated and raw), reliability, subgroups.

    Args:
        labels: label codes in column order.
        y: ``(N, L)`` 0/1 truth.
        probs: ``(N, L)`` calibrated probabilities.
        thresholds: ``(L,)`` operating thresholds (positive when ``prob ≥ threshold``).
        raw_probs: ``(N, L)`` uncalibrated probabilities, to report the ECE before calibration.
        groups: subgroup columns, each ``(N,)``.
        extra: task-specific metrics ``f(y, probs, thresholds) -> dict`` (e.g. ODIR score).
        n_bins: reliability bins.
    """
    thr = np.asarray(thresholds, dtype=float)
    out = multilabel_metrics(y, probs, thr, labels)
    out["ece"] = expected_calibration_error(probs, y, n_bins)
    if raw_probs is not None:
        out["ece_uncalibrated"] = expected_calibration_error(raw_probs, y, n_bins)
    out["reliability"] = reliability_curve(probs, y, n_bins)
    if extra is not None and len(y):
        out.update(extra(y, probs, thr))
    if groups:
        out["subgroups"] = subgroup_metrics(y, probs, thr, labels, groups)
    return out


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(y: np.ndarray, probs: np.ndarray, labels: Sequence[str], path: Path, title: str = "ROC") -> Path:
    """One ROC curve per label that has both classes, with its AUROC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6))
    for j, lab in enumerate(labels):
        if 0 < y[:, j].sum() < len(y):
            fpr, tpr, _ = roc_curve(y[:, j], probs[:, j])
            ax.plot(fpr, tpr, label=f"{lab} (AUROC {roc_auc_score(y[:, j], probs[:, j]):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.005, DECISION_SUPPORT_NOTICE, fontsize=5)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_pr(
    y: np.ndarray, probs: np.ndarray, labels: Sequence[str], path: Path, title: str = "Precision–recall"
) -> Path:
    """One precision–recall curve per label that has positives, with its average precision."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6))
    for j, lab in enumerate(labels):
        if 0 < y[:, j].sum() < len(y):
            prec, rec, _ = precision_recall_curve(y[:, j], probs[:, j])
            ax.plot(rec, prec, label=f"{lab} (AP {average_precision_score(y[:, j], probs[:, j]):.3f})")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="upper right")
    fig.text(0.01, 0.005, DECISION_SUPPORT_NOTICE, fontsize=5)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_reliability(curves: dict[str, dict[str, list[float]]], path: Path, title: str = "Reliability") -> Path:
    """Reliability diagram: observed positive fraction against mean predicted probability per bin."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    for name, curve in curves.items():
        mp = np.asarray(curve["mean_prob"], dtype=float)
        fp = np.asarray(curve["frac_positive"], dtype=float)
        ok = ~np.isnan(mp)
        ax.plot(mp[ok], fp[ok], "o-", label=name)
    ax.set(
        xlabel="mean predicted probability", ylabel="observed fraction positive", title=title, xlim=(0, 1), ylim=(0, 1)
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, 0.005, DECISION_SUPPORT_NOTICE, fontsize=5)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _consistency_line(c: dict[str, Any]) -> str:
    """The ECE a perfectly calibrated model would show at this n, and the p-value of the observed ECE."""
    return (
        f"ECE a perfectly calibrated model would show at this n: {_fmt(c.get('mean'))} "
        f"[{_fmt(c.get('low'))}, {_fmt(c.get('high'))}] (consistency resampling, {c.get('n_resamples')} label sets); "
        f"p {_fmt_p(c.get('p_value'))} for the observed ECE"
    )


def _fmt_p(p: Any) -> str:
    """``= 0.460``, or ``< 0.001`` where the Monte Carlo p-value is below what three decimals show."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"= {p:.3f}" if p >= 0.001 else "< 0.001"


def _multiclass_lines(m: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Exclusive-class part of a split: accuracy, kappa, per-class P/R/F1, confusion matrix, derived findings."""
    mc = m["multiclass"]
    lines = [
        "",
        f"Accuracy {_fmt(mc.get('accuracy'))} · balanced accuracy {_fmt(mc.get('balanced_accuracy'))} · "
        f"macro AUROC (one-vs-rest) {_fmt(mc.get('macro_auroc_ovr'))} · top-label ECE {_fmt(mc.get('top_label_ece'))} "
        f"(uncalibrated {_fmt(mc.get('top_label_ece_uncalibrated'))})",
    ]
    if "quadratic_kappa" in mc:
        lines.append(
            f"Quadratic weighted kappa {_fmt(mc['quadratic_kappa'])} · linear kappa {_fmt(mc.get('linear_kappa'))} · "
            f"mean absolute grade error {_fmt(mc.get('mean_abs_error'))}"
        )
    lines += ["", "| class | name | precision | recall | F1 | support |", "|---|---|---|---|---|---|"]
    for lab, pc in (mc.get("per_class") or {}).items():
        lines.append(
            f"| {lab} | {names.get(lab, lab)} | {_fmt(pc.get('precision'))} | {_fmt(pc.get('recall'))} | "
            f"{_fmt(pc.get('f1'))} | {pc.get('support')} |"
        )
    labels = list((mc.get("per_class") or {}).keys())
    if mc.get("confusion_matrix"):
        lines += ["", "Confusion matrix (rows: truth, columns: prediction):", ""]
        lines += ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for lab, row in zip(labels, mc["confusion_matrix"], strict=False):
            lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    for code, d in (m.get("derived") or {}).items():
        lines += [
            "",
            f"**{d.get('name', code)}** ({code}: classes {', '.join(d.get('classes', []))}): "
            f"AUROC {_fmt(d.get('auroc'))}, "
            f"at threshold {_fmt(d.get('threshold'))} sensitivity {_fmt(d.get('sensitivity'))}, specificity "
            f"{_fmt(d.get('specificity'))} (n = {d.get('n')}, {d.get('n_positive')} positive)",
        ]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: header, provenance, per-label table, averages, calibration, subgroups, notes."""
    lines = [f"# Evaluation report — {report.get('analyzer', '?')}", "", f"> {DECISION_SUPPORT_NOTICE}", ""]
    if report.get("demonstration"):
        lines += ["**Demonstration model**: trained on synthetic or few data; not for clinical use.", ""]
    td = report.get("training_data") or {}
    if td:
        lines += [
            f"- Training data: {', '.join(td.get('datasets', []))} ({td.get('provenance')}, "
            f"{_count(td)}); splits {td.get('splits', {}).get('sizes')}",
        ]
    ev = report.get("evaluated_on") or {}
    if ev.get("selection"):
        lines.append(
            f"- Evaluated on: {report.get('data', '?')} ({ev.get('provenance')}), {ev.get('n_records')} records of "
            f"{ev.get('n_patients')} patients: {ev['selection']} ({ev.get('n_excluded', 0)} records left out)"
        )
    if report.get("warning"):
        lines.append(f"- **Warning**: {report['warning']}")
    lines += [
        f"- Thresholds: {report.get('threshold_method')}",
        f"- Calibration: {(report.get('calibration') or {}).get('method', 'none')} "
        f"(fitted on the {(report.get('calibration') or {}).get('fitted_on') or 'validation'} split)",
    ]
    if report.get("training"):
        tr = report["training"]
        lines.append(
            f"- Training: best epoch {tr.get('best_epoch')}, best {tr.get('monitor', 'val_macro_auroc')} "
            f"{_fmt(tr.get('best_val_score', tr.get('best_val_macro_auroc')))}, "
            f"{tr.get('epochs_run')} epochs run"
        )
    lines.append("")
    for split, m in (report.get("splits") or {}).items():
        lines += [f"## {split} split (n = {m.get('n')})", ""]
        lines += ["| label | name | n+ | AUROC | AP | threshold | sens | spec | F1 |", "|" + "---|" * 9]
        names = report.get("label_names") or {}
        for lab, pl in (m.get("per_label") or {}).items():
            lines.append(
                f"| {lab} | {names.get(lab, lab)} | {pl.get('n_positive')} | {_fmt(pl.get('auroc'))} | "
                f"{_fmt(pl.get('ap'))} | {_fmt(pl.get('threshold'))} | {_fmt(pl.get('sensitivity'))} | "
                f"{_fmt(pl.get('specificity'))} | {_fmt(pl.get('f1'))} |"
            )
        lines += [
            "",
            f"macro AUROC {_fmt(m.get('macro_auroc'))} · micro AUROC {_fmt(m.get('micro_auroc'))} · "
            f"macro AP {_fmt(m.get('macro_ap'))} · macro F1 {_fmt(m.get('macro_f1'))} · "
            f"ECE {_fmt(m.get('ece'))} (uncalibrated {_fmt(m.get('ece_uncalibrated'))})",
        ]
        if m.get("ece_if_calibrated"):
            lines.append(_consistency_line(m["ece_if_calibrated"]))
        if m.get("odir_score"):
            s = m["odir_score"]
            lines.append(
                f"ODIR-2019 score {_fmt(s.get('final'))} (kappa {_fmt(s.get('kappa'))}, F1 {_fmt(s.get('f1'))}, "
                f"AUC {_fmt(s.get('auc'))})"
            )
        for col, groups in (m.get("subgroups") or {}).items():
            lines += ["", f"Subgroups by {col}:", "", "| group | n | macro AUROC | macro F1 |", "|---|---|---|---|"]
            for g, gm in groups.items():
                lines.append(f"| {g} | {gm.get('n')} | {_fmt(gm.get('macro_auroc'))} | {_fmt(gm.get('macro_f1'))} |")
        if m.get("multiclass"):
            lines += _multiclass_lines(m, names)
        if m.get("notes"):
            lines += ["", "Notes: " + "; ".join(m["notes"])]
        lines.append("")
    lines += ["Plots: `roc.png`, `pr.png`, `reliability.png`.", ""]
    return "\n".join(lines)


def report_head(card: Any, *, artifact: Path, data: Path | str) -> dict[str, Any]:
    """The fields every training report opens with, read from the saved card (``ModelCard``), so that the report
    cannot disagree with the artifact it describes; each trainer adds its own ``training``, ``splits``, ``recipe``."""
    return {
        "analyzer": card.analyzer,
        "artifact": str(artifact),
        "data": str(data),
        "demonstration": card.demonstration,
        "labels": list(card.labels),
        "label_names": dict(card.label_names),
        "training_data": card.training_data.model_dump(mode="json"),
        "thresholds": dict(card.thresholds),
        "threshold_method": card.threshold_method,
        "calibration": card.calibration.model_dump(mode="json"),
    }


def write_report(
    out: Path,
    report: dict[str, Any],
    *,
    labels: Sequence[str],
    y: np.ndarray,
    probs: np.ndarray,
    plot_split: str = "test",
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots of ``plot_split`` into ``out``.

    Returns:
        Name → path of every file written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"notice": DECISION_SUPPORT_NOTICE, **report}
    paths = {"json": out / "report.json", "md": out / "report.md"}
    paths["json"].write_text(json.dumps(nan_to_none(report), indent=2, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["roc"] = plot_roc(y, probs, labels, out / "roc.png", title=f"ROC — {plot_split} split")
    paths["pr"] = plot_pr(y, probs, labels, out / "pr.png", title=f"Precision–recall — {plot_split} split")
    curves = {name: m["reliability"] for name, m in (report.get("splits") or {}).items() if "reliability" in m}
    paths["reliability"] = plot_reliability(curves, out / "reliability.png", title="Reliability (calibrated)")
    logger.info("report written to %s", out)
    return paths


def _count(td: dict[str, Any]) -> str:
    """ "85 patients", or the images/samples where no patient count is known (never "None patients")."""
    if td.get("n_patients") and not str((td.get("splits") or {}).get("unit", "patient")).startswith("image"):
        return f"{td['n_patients']} patients"
    split_unit = str((td.get("splits") or {}).get("unit", ""))
    unit = (
        "images" if split_unit.startswith("image") else f"{split_unit}s" if split_unit.endswith("pair") else "samples"
    )
    return f"{td.get('n_samples') or td.get('n_patients') or '?'} {unit}"
