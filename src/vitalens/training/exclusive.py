"""The end of a multi-class or ordinal training run: fit the output on validation, choose thresholds, score splits.

Why separate from the engine's multi-label path: the probabilities come from the head's link (softmax, CORN,
cumulative logit) with a temperature or cut-points fitted on the validation split; the per-class thresholds are
one-vs-rest on those probabilities; derived binary findings (referable DR = grades 2–4) get their own operating
threshold on validation (e.g. at a target sensitivity); and the split reports add accuracy, kappa, per-class
precision/recall/F1 and the confusion matrix. Also used by ``vitalens evaluate`` to score an artifact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitalens.artifacts import CalibrationSpec, DerivedFinding, OutputSpec
from vitalens.artifacts.outputs import derived_probability, output_probabilities
from vitalens.training.problems import Problem, fit_output

__all__ = ["ExclusiveFit", "fit_exclusive", "score_exclusive_split", "exclusive_card_metrics"]

logger = logging.getLogger(__name__)


@dataclass
class ExclusiveFit:
    """What validation fixed: calibration, output link, per-class thresholds and derived findings."""

    calibration: CalibrationSpec
    output: OutputSpec
    thresholds: dict[str, float]
    threshold_method: str
    derived: list[DerivedFinding]


def fit_exclusive(
    *,
    problem: Problem,
    labels: Sequence[str],
    derived_specs: dict[str, tuple[str, Sequence[str]]],
    recipe: Any,
    val_raw: np.ndarray,
    val_y: np.ndarray,
) -> ExclusiveFit:
    """Fit the output, choose one-vs-rest class thresholds and derived-finding thresholds on validation."""
    from vitalens.risk.thresholds import choose_threshold
    from vitalens.training.engine import choose_thresholds

    calibration, output = fit_output(problem, recipe.calibration.method, val_raw, val_y)
    probs = output_probabilities(output, calibration, val_raw)
    section = recipe.thresholds
    per_label_rules = {k: v for k, v in section.per_label.items() if k not in derived_specs}
    class_section = section.model_copy(update={"per_label": per_label_rules})
    thresholds, method = choose_thresholds(class_section, list(labels), val_y, probs)
    derived: list[DerivedFinding] = []
    for code, (name, classes) in derived_specs.items():
        rule = section.rule_for(code)
        idx = [list(labels).index(c) for c in classes]
        truth = val_y[:, idx].sum(axis=1).clip(0, 1)
        score = derived_probability(probs, labels, classes)
        if rule.method != "fixed" and truth.min() == truth.max():
            logger.warning("derived finding %s has one class on validation; its threshold falls back to 0.5", code)
        n_pos = int(truth.sum())
        t = float(np.clip(choose_threshold(truth, score, rule.method, target=rule.target, value=rule.value), 0, 1))
        derived.append(
            DerivedFinding(
                code=code,
                name=name,
                classes=list(classes),
                threshold=t,
                threshold_method=f"{rule.describe()} on the validation split (n = {truth.size}, {n_pos} positive)",
            )
        )
        logger.info("derived finding %s: threshold %.4f (%s)", code, t, rule.describe())
    return ExclusiveFit(calibration, output, thresholds, method, derived)


def score_exclusive_split(
    *,
    problem: Problem,
    labels: Sequence[str],
    fit: ExclusiveFit,
    raw: np.ndarray,
    y: np.ndarray,
    groups: dict[str, np.ndarray] | None = None,
    extra: Any = None,
    n_bins: int = 10,
) -> tuple[dict[str, Any], np.ndarray]:
    """All metrics of one split and its calibrated probabilities ``(N, K)``."""
    from vitalens.training.multiclass_metrics import derived_metrics, multiclass_metrics
    from vitalens.training.report import evaluate_split

    probs = output_probabilities(fit.output, fit.calibration, raw)
    raw_probs = output_probabilities(fit.output, CalibrationSpec(), raw)
    thr = np.asarray([fit.thresholds[lab] for lab in labels])
    metrics = evaluate_split(labels, y, probs, thr, raw_probs=raw_probs, groups=groups, extra=extra, n_bins=n_bins)
    metrics["multiclass"] = multiclass_metrics(y, probs, labels, ordinal=problem.kind == "ordinal", n_bins=n_bins)
    metrics["multiclass"]["top_label_ece_uncalibrated"] = multiclass_metrics(
        y, raw_probs, labels, ordinal=False, n_bins=n_bins
    )["top_label_ece"]
    metrics["derived"] = {
        d.code: {"name": d.name, "classes": d.classes, **derived_metrics(y, probs, labels, d.classes, d.threshold)}
        for d in fit.derived
    }
    return metrics, probs


def exclusive_card_metrics(split_metrics: dict[str, Any]) -> dict[str, Any]:
    """The compact held-out metrics a card stores for an exclusive-class model."""
    mc = split_metrics["multiclass"]
    keep = ("n", "accuracy", "balanced_accuracy", "macro_auroc_ovr", "quadratic_kappa", "linear_kappa")
    out: dict[str, Any] = {k: mc[k] for k in keep if k in mc}
    out.update(
        split="test",
        macro_auroc=split_metrics.get("macro_auroc"),
        top_label_ece=mc.get("top_label_ece"),
        mean_abs_error=mc.get("mean_abs_error"),
        per_class=mc.get("per_class"),
        confusion_matrix=mc.get("confusion_matrix"),
        notes=split_metrics.get("notes", []) + mc.get("notes", []),
        derived={
            code: {k: d.get(k) for k in ("auroc", "ap", "sensitivity", "specificity", "threshold", "n", "n_positive")}
            for code, d in split_metrics.get("derived", {}).items()
        },
    )
    return {k: v for k, v in out.items() if v is not None}
