"""Cross-validation of a single-image task: train once per patient-level fold, collect out-of-fold probabilities.

Why: with 150 APTOS images or 218 Kermany scans one held-out split holds a few dozen cases and its figure moves by
several points with the split. Training on K − 1 folds and scoring the held-out fold with the artifact exactly as
the analyzer would (the card's preprocessing, link and calibration) gives every sample one out-of-fold prediction,
pooled for the metric and its bootstrap interval. Each fold's validation split (for early stopping, thresholds and
calibration) comes from its training folds only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OutOfFold", "cross_validate", "predict_split", "summarise"]

logger = logging.getLogger(__name__)


@dataclass
class OutOfFold:
    """Pooled out-of-fold predictions of one recipe."""

    labels: list[str]
    probs: np.ndarray
    y: np.ndarray
    sample_ids: list[str]
    patient_ids: list[str]
    folds: list[dict[str, Any]] = field(default_factory=list)
    derived: dict[str, list[str]] = field(default_factory=dict)
    probs_flips: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "probs": self.probs.round(6).tolist(),
            "y": self.y.argmax(axis=1).tolist(),
            "sample_ids": self.sample_ids,
            "patient_ids": self.patient_ids,
            "folds": self.folds,
            **({"probs_flips": self.probs_flips.round(6).tolist()} if self.probs_flips is not None else {}),
        }


class _Flipped:
    """``net`` applied to the input flipped along ``dims`` (test-time augmentation of an image net)."""

    def __init__(self, net: Any, dims: tuple[int, ...]) -> None:
        self.net, self.dims = net, dims

    def __call__(self, x: Any) -> Any:
        import torch

        return self.net(torch.flip(x, self.dims))

    def eval(self) -> _Flipped:
        self.net.eval()
        return self

    def to(self, device: Any) -> _Flipped:
        self.net.to(device)
        return self


#: Test-time flips of a fundus photograph: none, horizontal, vertical, both (a fundus has no canonical up/down
#: once left and right eyes are pooled; the recipes train with both flips).
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def predict_split(
    artifact: Path, data: Path, split: str = "test", *, flips: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]:
    """Calibrated probabilities ``(N, K)``, one-hot truth and ids of ``split`` scored through the card.

    ``flips``: the mean of the calibrated probabilities over the four flips of :data:`FLIPS` (test-time
    augmentation; averaged after the card's link, so an ordinal CORN head stays a distribution).
    """
    runs, y, meta = _predict_views(artifact, data, split, FLIPS if flips else ((),))
    return np.mean(runs, axis=0), y, meta


def _predict_views(
    artifact: Path, data: Path, split: str, views: tuple[tuple[int, ...], ...]
) -> tuple[list[np.ndarray], np.ndarray, dict[str, list[Any]]]:
    """:func:`predict_split`'s calibrated probabilities of each flip in ``views`` (``()``: the image as it is), the
    model loaded and the split built once."""
    import torch

    from vitalens.artifacts import load_model, predict_probabilities
    from vitalens.training.predict import predict_dataset
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    net, card = load_model(artifact, device="cpu")
    recipe = Recipe.load(dict(card.recipe), overrides={"task.augment": False})
    task = get_task(card.analyzer, recipe)
    bundle = task.build_data(Path(data))
    runs: list[np.ndarray] = []
    with torch.inference_mode():
        for dims in views:
            model = _Flipped(net, dims) if dims else net
            raw, y, meta = predict_dataset(
                model,  # type: ignore[arg-type]
                task,
                bundle.split(split),
                "cpu",
                batch_size=recipe.train.batch_size,
            )
            runs.append(predict_probabilities(card, raw))
    return runs, y, meta


def cross_validate(
    analyzer: str,
    *,
    data: Path,
    recipe: Path | dict[str, Any],
    folds: int,
    work: Path,
    overrides: dict[str, Any] | None = None,
    flips: bool = False,
) -> OutOfFold:
    """Train ``recipe`` on each of ``folds`` patient-level folds and pool the held-out predictions.

    ``flips``: also score each held-out fold with test-time flips (:func:`predict_split`), pooled in
    :attr:`OutOfFold.probs_flips`, from the same trained models.
    """
    from vitalens.artifacts import ModelCard
    from vitalens.training.engine import train

    parts: list[tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]] = []
    flipped: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    card = None
    for fold in range(folds):
        out = Path(work) / f"fold{fold}"
        sets = {"data.fold": fold, "data.n_folds": folds, "train.progress_bar": False, **(overrides or {})}
        t0 = time.perf_counter()
        artifact = train(analyzer, data=data, out=out, recipe=recipe, overrides=sets)
        seconds = time.perf_counter() - t0
        card = ModelCard.read(artifact)
        # the plain view is FLIPS[0]: one load and one split build give both the plain and the flip-averaged scores
        runs, y, meta = _predict_views(artifact, data, "test", FLIPS if flips else ((),))
        parts.append((runs[0], y, meta))
        if flips:
            flipped.append(np.mean(runs, axis=0))
        report = json.loads((out / "report.json").read_text())
        records.append(
            {
                "fold": fold,
                "n_test": int(len(y)),
                "epochs_run": report["training"]["epochs_run"],
                "best_epoch": report["training"]["best_epoch"],
                "seconds": round(seconds, 1),
                "test_accuracy": report["splits"]["test"].get("multiclass", {}).get("accuracy"),
            }
        )
        logger.info("fold %d/%d of %s: %d test samples, %.0f s", fold + 1, folds, analyzer, len(y), seconds)
    if card is None:  # explicit, not ``assert``: the check must survive ``python -O``
        raise RuntimeError(f"cross-validation of {analyzer} ran no fold")
    return OutOfFold(
        labels=list(card.labels),
        probs=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        sample_ids=[s for p in parts for s in p[2].get("sample_id", [])],
        patient_ids=[s for p in parts for s in p[2].get("patient_id", [])],
        folds=records,
        derived={d.code: list(d.classes) for d in card.derived},
        probs_flips=np.concatenate(flipped) if flips else None,
    )


def _macro_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUROC over the classes present (MedMNIST's multi-class AUC)."""
    from sklearn.metrics import roc_auc_score

    vals = [roc_auc_score(y == k, probs[:, k]) for k in range(probs.shape[1]) if 0 < (y == k).sum() < y.size]
    return float(np.mean(vals)) if vals else float("nan")


def summarise(
    probs: np.ndarray,
    y_onehot: np.ndarray,
    *,
    labels: list[str],
    clusters: list[str] | None = None,
    derived: dict[str, list[str]] | None = None,
    ordinal: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, macro one-vs-rest AUROC (+ quadratic kappa when ordinal, + each derived finding's AUROC) with
    percentile bootstrap 95 % intervals, resampling ``clusters`` (patients) when given."""
    from sklearn.metrics import roc_auc_score

    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.multiclass_metrics import quadratic_kappa

    y = np.asarray(y_onehot).argmax(axis=1)
    p = np.asarray(probs, dtype=float)
    k = len(labels)
    kw: dict[str, Any] = {"clusters": clusters, "n_boot": n_boot, "seed": seed}
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_patients": int(len(set(clusters))) if clusters is not None else int(y.size),
        "accuracy": bootstrap_ci(lambda t, s: float((s.argmax(1) == t).mean()), y, p, **kw),
        "macro_auroc": bootstrap_ci(_macro_auroc, y, p, **kw),
    }
    if ordinal:
        out["quadratic_kappa"] = bootstrap_ci(lambda t, s: quadratic_kappa(t, s.argmax(1), k), y, p, **kw)
    for code, classes in (derived or {}).items():
        idx = [labels.index(c) for c in classes]

        def auc(t: np.ndarray, s: np.ndarray, idx: list[int] = idx) -> float:
            truth = np.isin(t, idx)
            if truth.all() or not truth.any():
                return float("nan")
            return float(roc_auc_score(truth, s[:, idx].sum(1)))

        out[f"{code}_auroc"] = bootstrap_ci(auc, y, p, **kw)
    return out
