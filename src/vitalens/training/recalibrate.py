"""``vitalens calibrate``: refit a multi-label artifact's calibration on its own validation split, weights untouched.

Why a step of its own: the probability the API and the UI show is ``card.calibration`` applied to the net's logits
(:func:`vitalens.artifacts.apply_calibration`), so a better calibration needs no retraining. A single temperature shares
one slope across labels and cannot move a label's intercept, which left ``fundus.odir`` at ECE 0.22 on its test split;
per-label Platt (``σ(a·z + b)``, ``a > 0``), Platt with one slope shared by all labels (a per-label intercept; fewer
parameters where a label has a handful of validation positives), per-label Platt shrunk toward that shared fit or
isotonic regression can. Which is chosen *on the
validation split*: each is cross-fitted over folds of the validation patients (fitted on the other folds, applied to the
held-out one) and the lowest pooled Brier score wins (a proper score; ties go to per-label Platt, which keeps every
label's ranking and so its AUROC exactly, where isotonic's flat steps tie scores). The chosen method is then fitted on
the whole validation split, the operating thresholds are re-derived on the calibrated validation probabilities by the
card's own threshold rule (the thresholds are probability thresholds), and the untouched test split is scored once,
before and after, with a patient-bootstrap interval for the ECE. The test split is never used to fit or to choose
anything.

Written into the artifact: the card (calibration, thresholds, test metrics, subgroup metrics, a ``calibration_step``
provenance record in ``extra``, the patch version bumped when the calibration changed), ``report.json``/``.md``
(the training report's other content kept), the ROC/PR plots and a reliability plot of the test split before and
after.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError

__all__ = ["CANDIDATES", "choose_method", "recalibrate_artifact"]

logger = logging.getLogger(__name__)

#: Methods ``--method auto`` chooses between, in order of preference on a tie.
CANDIDATES: tuple[str, ...] = ("platt", "isotonic", "platt-shared-slope", "platt-shrunk")
#: Folds of the validation patients for choosing the method.
CHOICE_FOLDS = 5


def _brier(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(probs, float) - np.asarray(y, float)) ** 2))


def choose_method(
    logits: np.ndarray,
    y: np.ndarray,
    *,
    ids: np.ndarray | list[str] | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
    n_folds: int = CHOICE_FOLDS,
    seed: int = 0,
    n_bins: int = 10,
) -> tuple[str, dict[str, dict[str, float]]]:
    """The calibration method with the lowest cross-fitted Brier score on ``logits`` (validation predictions).

    Args:
        logits: ``(N, L)`` validation logits.
        y: ``(N, L)`` 0/1 targets.
        ids: patient id per row (folds are patient-level and label-stratified); default one patient per row.
        candidates: methods tried, in order of preference on a tie.
        n_folds: folds of the validation rows (at most N).
        seed: fold assignment seed.
        n_bins: reliability bins of the reported ECE.

    Returns:
        ``(method, table)``; ``table[method]`` holds the cross-fitted ``brier`` and ``ece``.
    """
    from vitalens.data.splits import patient_kfold
    from vitalens.training.calibration import crossfit_calibration, expected_calibration_error

    z, t = np.asarray(logits, float), np.asarray(y, float)
    if z.shape != t.shape or z.ndim != 2:
        raise ValueError(f"logits {z.shape} and targets {t.shape} must be the same (N, L) shape")
    if not candidates:
        raise ValueError("no calibration method to choose from")
    rows = [str(i) for i in (ids if ids is not None else range(z.shape[0]))]
    folds = np.empty(z.shape[0], dtype=int)
    strata = t.astype(int) if t.shape[1] > 1 else np.column_stack([t, 1 - t]).astype(int)  # one label: both classes
    for k, (_, held) in enumerate(patient_kfold(rows, strata, k=min(n_folds, len(set(rows))), seed=seed)):
        folds[held] = k
    table: dict[str, dict[str, float]] = {}
    for method in candidates:
        probs = crossfit_calibration(method, z, t, folds)
        table[method] = {"brier": _brier(probs, t), "ece": expected_calibration_error(probs, t, n_bins)}
    best = min(candidates, key=lambda m: (round(table[m]["brier"], 12), candidates.index(m)))
    return best, table


def _ece_ci(y: np.ndarray, probs: np.ndarray, *, n_bins: int, n_boot: int, seed: int) -> dict[str, Any]:
    """ECE with its percentile interval, resampling whole patients (one row is one patient)."""
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import expected_calibration_error

    return bootstrap_ci(
        lambda t, p: expected_calibration_error(p, t, n_bins),
        np.asarray(y),
        np.asarray(probs),
        n_boot=n_boot,
        seed=seed,
    )


def _per_label_auroc(labels: list[str], y: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import roc_auc_score

    out: dict[str, float | None] = {}
    for j, lab in enumerate(labels):
        col = y[:, j]
        out[lab] = float(roc_auc_score(col, probs[:, j])) if 0 < col.sum() < col.size else None
    return out


#: Parameters closer than this are the same calibration (a rerun on recomputed validation logits moves Platt
#: parameters by ~1e-6 through float arithmetic alone, and must not bump the card's version).
CALIBRATION_ATOL = 1e-5


def same_within(a: Any, b: Any, atol: float = CALIBRATION_ATOL) -> bool:
    """Whether two JSON-like values are equal, numbers within ``atol`` (same keys, lengths and strings)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= atol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_within(a[k], b[k], atol) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_within(x, y, atol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _bump_patch(version: str) -> str:
    parts = version.split(".")
    if len(parts) == 3 and parts[2].isdigit():
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version + ".1"


def recalibrate_artifact(
    artifact: Path,
    *,
    data: Path,
    method: str = "auto",
    device: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    command: str | None = None,
    write: bool = True,
    json_out: Path | None = None,
    plot_out: Path | None = None,
) -> dict[str, Any]:
    """Refit ``artifact``'s calibration on its validation split and rewrite its card and report (weights untouched).

    Args:
        artifact: a multi-label (sigmoid) model artifact folder.
        data: the dataset root the artifact was trained on (its validation split is read from it).
        method: ``auto`` (choose among :data:`CANDIDATES` on validation), ``platt``, ``platt-shared-slope``,
            ``platt-shrunk``, ``isotonic`` or ``temperature``.
        device: torch device; CUDA when available by default.
        n_boot: bootstrap resamples of the test ECE interval.
        seed: fold and bootstrap seed.
        command: the command line to record in the card's provenance.
        write: rewrite the artifact's card and report (False: only compute and return).
        json_out: also write the result here (e.g. ``bench/results/…json``).
        plot_out: also write the reliability plot here.

    Returns:
        What was chosen and measured (the content of ``report.json``'s ``recalibration`` section).

    Raises:
        InputError: a card that is not multi-label, an unknown method, or a split the data folder lacks.
    """
    import torch

    from vitalens.artifacts import WEIGHTS_FILE, load_model
    from vitalens.training.calibration import apply_calibration, fit_calibration, sigmoid
    from vitalens.training.engine import _card_metrics, choose_thresholds
    from vitalens.training.evaluate import ece_if_calibrated, task_for_card
    from vitalens.training.predict import predict_dataset
    from vitalens.training.report import evaluate_split, plot_reliability, write_report

    allowed = ("auto", *CANDIDATES, "temperature")
    if method not in allowed:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("calibration method", method, list(allowed))
    artifact, data = Path(artifact), Path(data)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net, card = load_model(artifact, device=device)
    if card.output.problem != "multilabel" or card.output.head != "sigmoid":
        raise InputError(
            f"calibrate refits per-label sigmoid calibrations; {card.name} is {card.output.problem}/{card.output.head}",
            field="artifact",
        )
    recipe, task = task_for_card(card)
    labels = list(card.labels)
    n_bins = recipe.calibration.n_bins
    splits = {name: task.build_eval_split(data, card, name) for name in ("val", "test")}
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, chosen in splits.items():
        z, y, _ = predict_dataset(net, task, chosen.dataset, device, batch_size=recipe.train.batch_size)
        scored[name] = (z, y)
    (val_z, val_y), (test_z, test_y) = scored["val"], scored["test"]
    logger.info("calibrate %s: %d validation and %d test patients", artifact, len(val_y), len(test_y))

    # The card as it is: does the recomputed test split reproduce the card's own test figure?
    old_thr = np.asarray([card.threshold(lab) for lab in labels])
    old_test_probs = apply_calibration(card.calibration, test_z)
    before = evaluate_split(labels, test_y, old_test_probs, old_thr, raw_probs=sigmoid(test_z), n_bins=n_bins)
    card_auroc = (card.metrics or {}).get("macro_auroc")
    reproduces = card_auroc is not None and abs(float(before["macro_auroc"]) - float(card_auroc)) < 1e-9
    if not reproduces:
        logger.warning(
            "calibrate %s: the test split read from %s gives macro AUROC %.4f, the card says %s: another split?",
            artifact,
            data,
            before["macro_auroc"],
            card_auroc,
        )

    choice: dict[str, Any] = {"rule": "given on the command line", "candidates": {}}
    if method == "auto":
        method, table = choose_method(val_z, val_y, seed=seed, n_bins=n_bins)
        choice = {
            "rule": (
                f"lowest pooled Brier score of calibrations cross-fitted over {CHOICE_FOLDS} label-stratified folds "
                "of the validation patients (ties: per-label Platt)"
            ),
            "candidates": table,
        }
    if method == "platt-shrunk":  # the strength fit_calibration chooses on the whole validation split, for the record
        from vitalens.training.calibration import choose_shrinkage

        strength, by_strength = choose_shrinkage(val_z, val_y)
        choice["shrinkage"] = {"strength": strength, "crossfitted_brier": {str(k): v for k, v in by_strength.items()}}
        if strength == 0.0:
            # strength 0 fits exactly per-label Platt: the card gets the same parameters, and says so (ties: Platt)
            method = "platt"
            choice["shrinkage"]["resolved"] = "strength 0 on the whole validation split: per-label Platt"
    spec = fit_calibration(method, val_z, val_y, per_label=True, fitted_on="val")
    val_probs = apply_calibration(spec, val_z)
    thresholds, threshold_method = choose_thresholds(recipe.thresholds, labels, val_y, val_probs)
    thr = np.asarray([thresholds[lab] for lab in labels])
    test_probs = apply_calibration(spec, test_z)
    groups = splits["test"].groups
    after_val = evaluate_split(labels, val_y, val_probs, thr, raw_probs=sigmoid(val_z), n_bins=n_bins)
    after = evaluate_split(
        labels,
        test_y,
        test_probs,
        thr,
        raw_probs=sigmoid(test_z),
        groups=groups,
        extra=task.extra_metrics,
        n_bins=n_bins,
    )
    auroc_before = _per_label_auroc(labels, test_y, old_test_probs)
    auroc_after = _per_label_auroc(labels, test_y, test_probs)
    diffs = [
        abs(a - b)
        for a, b in zip(auroc_before.values(), auroc_after.values(), strict=True)
        if a is not None and b is not None
    ]
    old_pos, new_pos = old_test_probs >= old_thr, test_probs >= thr
    ece_before = _ece_ci(test_y, old_test_probs, n_bins=n_bins, n_boot=n_boot, seed=seed)
    ece_after = _ece_ci(test_y, test_probs, n_bins=n_bins, n_boot=n_boot, seed=seed)
    # what a perfectly calibrated model would show on these test patients: reported, never stored in the card
    if len(test_y):
        after["ece_if_calibrated"] = ece_if_calibrated(test_probs, test_y, n_bins=n_bins, seed=seed)
    result: dict[str, Any] = {
        "artifact": str(artifact),
        "data": str(data),
        "weights_sha256": card.files.get(WEIGHTS_FILE),
        "retrained": False,
        "method": method,
        "params": spec.params,
        "fitted_on": {"split": "val", "n_patients": int(len(val_y)), "selection": splits["val"].selection},
        "choice": choice,
        "thresholds": {"method": threshold_method, "values": thresholds, "previous": dict(card.thresholds)},
        "replaced": card.calibration.model_dump(mode="json"),
        "test": {
            "n_patients": int(len(test_y)),
            "selection": splits["test"].selection,
            "reproduces_card_test_auroc": bool(reproduces),
            "ece_before": ece_before,
            "ece_after": ece_after,
            "ece_if_calibrated": after.get("ece_if_calibrated"),
            "ece_uncalibrated": float(after["ece_uncalibrated"]),
            "brier_before": _brier(old_test_probs, test_y),
            "brier_after": _brier(test_probs, test_y),
            "macro_auroc_before": float(before["macro_auroc"]),
            "macro_auroc_after": float(after["macro_auroc"]),
            "per_label_auroc_before": auroc_before,
            "per_label_auroc_after": auroc_after,
            "max_abs_auroc_change": float(max(diffs)) if diffs else None,
            "decisions_changed": int((old_pos != new_pos).sum()),
            "decisions": int(old_pos.size),
            "macro_sensitivity_before": float(before["macro_sensitivity"]),
            "macro_sensitivity_after": float(after["macro_sensitivity"]),
            "macro_specificity_before": float(before["macro_specificity"]),
            "macro_specificity_after": float(after["macro_specificity"]),
        },
        "val_ece_in_sample": float(after_val["ece"]),
        "n_boot": n_boot,
        "seed": seed,
        "command": command,
    }
    logger.info(
        "calibrate %s: %s; test ECE %.3f → %.3f (n = %d), macro AUROC %.4f → %.4f",
        artifact,
        method,
        ece_before["value"],
        ece_after["value"],
        len(test_y),
        before["macro_auroc"],
        after["macro_auroc"],
    )
    curves = {
        f"test, {card.calibration.method} (before), n = {len(test_y)}": before["reliability"],
        f"test, {method} (after), n = {len(test_y)}": after["reliability"],
        f"val, {method} (fitted here), n = {len(val_y)}": after_val["reliability"],
    }
    title = f"{card.name}: reliability, all labels pooled"
    if plot_out is not None:
        Path(plot_out).parent.mkdir(parents=True, exist_ok=True)
        plot_reliability(curves, Path(plot_out), title=title)
    if json_out is not None:
        from vitalens import DECISION_SUPPORT_NOTICE
        from vitalens.training.metrics import nan_to_none

        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        body = {"bench": "calibrate", "model": card.name, "notice": DECISION_SUPPORT_NOTICE, **result}
        Path(json_out).write_text(json.dumps(nan_to_none(body), indent=2, default=str) + "\n", encoding="utf-8")
    if not write:
        return result

    metrics = _card_metrics(after)
    metrics["ece_ci95"] = [ece_after["low"], ece_after["high"]]
    changed = not same_within(spec.model_dump(mode="json"), card.calibration.model_dump(mode="json"))
    step = {k: result[k] for k in ("method", "retrained", "weights_sha256", "command")}
    step.update(
        {
            "fitted_on": f"val ({len(val_y)} patients; {splits['val'].selection})",
            "choice": choice["rule"],
            "replaced": result["replaced"],
            "test_ece_before": ece_before["value"],
            "test_ece_after": ece_after["value"],
            "test_n": int(len(test_y)),
            "note": (
                "calibration refitted by `vitalens calibrate` on the existing weights (not retrained); thresholds "
                "re-derived on the calibrated validation probabilities; test metrics recomputed"
            ),
        }
    )
    training_data = card.training_data
    marker = "Calibration refitted on val by `vitalens calibrate`"
    if marker not in training_data.description:
        training_data = training_data.model_copy(
            update={"description": f"{training_data.description} {marker} (extra.calibration_step).".strip()}
        )
    from vitalens.training.metrics import nan_to_none

    new_card = card.model_copy(
        update={
            "calibration": spec,
            "thresholds": thresholds,
            "threshold_method": threshold_method,
            "metrics": nan_to_none(metrics),
            "subgroup_metrics": nan_to_none(after.get("subgroups", {})),
            "training_data": training_data,
            "version": _bump_patch(card.version) if changed else card.version,
            "extra": {**card.extra, "calibration_step": nan_to_none(step)},
        }
    )
    new_card.write(artifact)
    report_path = artifact / "report.json"
    report: dict[str, Any] = {}
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        report.pop("notice", None)
    report.update(
        {
            "analyzer": card.analyzer,
            "artifact": str(artifact),
            "labels": labels,
            "label_names": dict(card.label_names),
            "training_data": new_card.training_data.model_dump(mode="json"),
            "thresholds": thresholds,
            "threshold_method": threshold_method,
            "calibration": spec.model_dump(mode="json"),
            "splits": {"val": after_val, "test": after},
            "recalibration": result,
        }
    )
    write_report(artifact, report, labels=labels, y=test_y, probs=test_probs, plot_split="test")
    plot_reliability(curves, artifact / "reliability.png", title=title)
    return result
