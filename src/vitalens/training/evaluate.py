"""``evaluate()``: score an artifact on one split of a dataset folder exactly as it runs in service.

Why from the artifact alone: the card holds the preprocessing (image size, normalisation, lead and age
statistics), the calibration, the thresholds and the recipe (folds, split seed), so a researcher can re-score a
shipped model on its own held-out split, or a hospital on its own data (external validation), without the
training run's files. Only the records of the scored split are read (``TrainingTask.build_eval_split``) and
nothing is refitted on the folder: a folder holding only test records scores like the full dataset, and other
training records in the folder do not change the result.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens._naming import unknown_name_error

__all__ = ["evaluate", "task_for_card", "ece_if_calibrated", "SPLITS", "N_CONSISTENCY_RESAMPLES"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")
#: Surrogate label sets of the consistency resampling: the p-value's Monte Carlo resolution is 1 / 2001.
N_CONSISTENCY_RESAMPLES = 2000


def ece_if_calibrated(
    probs: np.ndarray, y: np.ndarray, *, n_bins: int, seed: int = 0, n_resamples: int = N_CONSISTENCY_RESAMPLES
) -> dict[str, float | int]:
    """The report's ``ece_if_calibrated``: the ECE a perfectly calibrated model would show on this split.

    Why beside ``ece``: on a small split (ODIR: 50 patients × 8 labels) the binned ECE of a perfectly calibrated
    model is itself several hundredths, so the observed ECE means little without it. Consistency resampling
    (:func:`vitalens.training.calibration.ece_consistency`, Bröcker & Smith 2007) with the same bins and pooling as
    ``ece``; only for independent (multi-label sigmoid) outputs, where each label is its own Bernoulli.

    Returns:
        ``{"mean", "low", "high", "p_value", "n_resamples", "seed"}`` (95 % range; p-value of the observed ECE).
    """
    from vitalens.training.calibration import ece_consistency

    return ece_consistency(probs, y, n_bins, n_resamples=n_resamples, seed=seed).summary()


def task_for_card(card: Any, overrides: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The recipe and training task an artifact was made with, as scoring needs them (no augmentation).

    Why one helper: ``vitalens evaluate`` and ``vitalens calibrate`` must read a split exactly alike, or the
    calibration would be fitted on other records than the evaluation reports.

    Returns:
        ``(recipe, task)``.

    Raises:
        ValueError: the card's labels differ from the task's.
    """
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    raw_recipe: dict[str, Any] = (
        dict(card.recipe) if card.recipe else {"analyzer": card.analyzer, "net": card.architecture.model_dump()}
    )
    # A training-time cap on patients is no selection of what to score (an override may still set one).
    raw_recipe["data"] = {k: v for k, v in dict(raw_recipe.get("data") or {}).items() if k != "max_patients"}
    merged = {"task.augment": False} if "augment" in raw_recipe.get("task", {}) else {}
    merged.update(overrides or {})
    recipe = Recipe.load(raw_recipe, overrides=merged or None)
    task = get_task(card.analyzer, recipe)
    if list(task.labels) != list(card.labels):
        raise ValueError(f"card labels {card.labels} differ from task {card.analyzer} labels {task.labels}")
    return recipe, task


def evaluate(
    artifact: Path,
    *,
    data: Path,
    out: Path | None = None,
    split: str = "test",
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict:
    """Score ``artifact`` on ``split`` of the dataset at ``data``; write ``report.json``/``.md`` and plots to ``out``.

    Args:
        artifact: model artifact folder (``card.json`` + weights).
        data: dataset root in the layout of the artifact's task.
        out: report folder (``report.json``/``.md``, plots); ``None`` writes nothing.
        split: ``train``, ``val``, ``test`` (the split recorded in the card's recipe) or ``all`` (every record).
        device: torch device; CUDA when available by default.
        overrides: dotted recipe overrides applied to the card's recipe, e.g. ``{"task.test_folds": [10]}``.

    Returns:
        The report as a dict (the same content as ``report.json``).
    """
    import torch

    from vitalens.artifacts import load_model
    from vitalens.training.calibration import apply_calibration, sigmoid
    from vitalens.training.predict import predict_dataset
    from vitalens.training.report import evaluate_split, write_report

    if split not in SPLITS:
        raise unknown_name_error("split", split, SPLITS)
    artifact, data = Path(artifact), Path(data)
    if not data.exists():
        raise FileNotFoundError(f"data root {data} does not exist")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net, card = load_model(artifact, device=device)
    recipe, task = task_for_card(card, overrides)
    chosen = task.build_eval_split(data, card, split)
    groups = chosen.groups
    if task.problem == "segmentation":  # a probability per pixel, scored per image: its own pass and report
        from vitalens.training.segmentation import evaluate_segmentation, write_segmentation_eval

        metrics, hists = evaluate_segmentation(net, task, chosen.dataset, card.threshold(card.labels[0]), device=device)
        report = _report(card, artifact, data, split, chosen, int(len(chosen.targets)), metrics)
        _warn(report, chosen, split, artifact)
        if out is not None:
            write_segmentation_eval(Path(out), report, hists, split)
        logger.info("evaluated %s on %s (%s): pixel AUC %s", artifact, data, split, metrics["auc"])
        return report
    logits, y, _ = predict_dataset(net, task, chosen.dataset, device, batch_size=recipe.train.batch_size)
    n_bins = recipe.calibration.n_bins
    if card.output.problem != "multilabel":
        from vitalens.training.exclusive import ExclusiveFit, score_exclusive_split
        from vitalens.training.problems import Problem

        problem = Problem(kind=card.output.problem, head=card.output.head, n_classes=len(card.labels))
        fit = ExclusiveFit(card.calibration, card.output, dict(card.thresholds), card.threshold_method, card.derived)
        metrics, probs = score_exclusive_split(
            problem=problem,
            labels=card.labels,
            fit=fit,
            raw=logits,
            y=y,
            groups=groups,
            extra=task.extra_metrics,
            n_bins=n_bins,
        )
    else:
        probs = apply_calibration(card.calibration, logits)
        thr = np.asarray([card.threshold(lab) for lab in card.labels])
        metrics = evaluate_split(
            card.labels,
            y,
            probs,
            thr,
            raw_probs=sigmoid(logits),
            groups=groups,
            extra=task.extra_metrics,
            n_bins=n_bins,
        )
        if len(y):
            metrics["ece_if_calibrated"] = ece_if_calibrated(probs, y, n_bins=n_bins, seed=recipe.seed)
    report = _report(card, artifact, data, split, chosen, int(len(y)), metrics)
    _warn(report, chosen, split, artifact)
    if out is not None:
        write_report(Path(out), report, labels=card.labels, y=y, probs=probs, plot_split=split)
    logger.info("evaluated %s on %s (%s): macro AUROC %s", artifact, data, split, metrics["macro_auroc"])
    return report


def _report(
    card: Any, artifact: Path, data: Path, split: str, chosen: Any, n_records: int, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The evaluation report's common part (``report.json``), whatever the task's problem."""
    return {
        "analyzer": card.analyzer,
        "artifact": str(artifact),
        "model": card.name,
        "data": str(data),
        "split": split,
        "demonstration": card.demonstration,
        "labels": list(card.labels),
        "label_names": dict(card.label_names),
        "training_data": card.training_data.model_dump(mode="json"),
        "evaluated_on": {
            "provenance": chosen.provenance,
            "n_patients": chosen.n_patients,
            "n_records": n_records,
            "selection": chosen.selection,
            "n_excluded": chosen.n_excluded,
        },
        "thresholds": dict(card.thresholds),
        "threshold_method": card.threshold_method,
        "calibration": card.calibration.model_dump(mode="json"),
        "splits": {split: metrics},
    }


def _warn(report: dict[str, Any], chosen: Any, split: str, artifact: Path) -> None:
    """Put what the selection's caller must know into ``report["warning"]`` (and the log)."""
    warnings = list(chosen.warnings)
    if split in ("train", "val"):
        warnings.insert(0, f"the {split} split was seen in training or in threshold/calibration fitting")
    if warnings:
        report["warning"] = "; ".join(warnings)
        for text in warnings:
            logger.warning("evaluate %s: %s", artifact, text)
