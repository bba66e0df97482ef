"""Patient-level, iteratively stratified splits shared by every dataset adapter.

Why patient level: two photographs (or ECGs) of one patient in train and test leak the patient's identity into
the score and inflate it. Why iterative stratification (Sechidis et al. 2011, via
``iterative-stratification``): with multi-label targets and rare labels (ODIR H, A), a random patient split
often leaves a label out of val or test.

Targets may be multi-label ``(n_samples, n_labels)`` 0/1 or single-label class indices ``(n_samples,)``; a
patient's target is the union (logical OR) of the targets of their samples.

Example:
    >>> split = patient_split(ids, targets, seed=0)  # doctest: +SKIP
    >>> split["train"][:3]                           # doctest: +SKIP
    array([0, 1, 4])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from vitalens.errors import InputError

__all__ = ["patient_split", "patient_kfold", "patient_targets", "age_band"]

logger = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")


def patient_targets(patient_ids: Sequence[str], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group samples by patient.

    Args:
        patient_ids: one id per sample, shape (n_samples,).
        targets: (n_samples, n_labels) 0/1, or (n_samples,) integer class indices.

    Returns:
        ``(patients, patient_y, inverse)``: unique ids sorted, their (n_patients, n_labels) uint8 union of
        labels, and for each sample the index of its patient.

    Raises:
        InputError: lengths differ, no sample, or targets of another shape.
    """
    ids = np.asarray([str(p) for p in patient_ids])
    y = np.asarray(targets)
    if ids.ndim != 1 or ids.size == 0:
        raise InputError(f"patient_ids must be a non-empty 1-D sequence, got shape {ids.shape}", field="patient_ids")
    if y.shape[:1] != ids.shape:
        raise InputError(f"targets have {y.shape[0] if y.ndim else 0} rows, patient_ids {ids.size}", field="targets")
    if y.ndim == 1:
        classes, codes = np.unique(y, return_inverse=True)
        y = np.eye(len(classes), dtype=np.uint8)[codes]
    elif y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise InputError("multi-label targets must be 0/1", field="targets")
        y = y.astype(np.uint8)
    else:
        raise InputError(f"targets must be 1-D classes or 2-D multi-label, got shape {y.shape}", field="targets")
    patients, inverse = np.unique(ids, return_inverse=True)
    patient_y = np.zeros((patients.size, y.shape[1]), dtype=np.uint8)
    np.maximum.at(patient_y, inverse, y)
    return patients, patient_y, inverse


def _samples_of(patient_idx: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Sorted sample indices of the given patients."""
    return np.flatnonzero(np.isin(inverse, patient_idx)).astype(np.int64)


def _stratified_holdout(y: np.ndarray, pool: np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` (patient indices) into (kept, held-out of size ``n_out``), iteratively stratified."""
    if n_out <= 0:
        return pool, pool[:0]
    if n_out >= pool.size:
        return pool[:0], pool
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    kept, out = next(splitter.split(np.zeros((pool.size, 1)), y[pool]))
    return np.sort(pool[kept]), np.sort(pool[out])


def _repair_train_coverage(y: np.ndarray, parts: dict[str, np.ndarray]) -> None:
    """Move one patient into train for each label present in the data but absent from train (in place).

    The patient comes from the larger of val/test that holds the label, preferring the one with the fewest
    labels (least disturbance to the other labels' balance); ties go to the lowest index, so the result stays
    deterministic.
    """
    for label in range(y.shape[1]):
        if y[parts["train"], label].any() or not y[:, label].any():
            continue
        donors = [n for n in ("val", "test") if y[parts[n], label].any()]
        donor = max(donors, key=lambda n: parts[n].size)
        candidates = parts[donor][y[parts[donor], label] == 1]
        chosen = candidates[np.argmin(y[candidates].sum(axis=1))]
        parts[donor] = parts[donor][parts[donor] != chosen]
        parts["train"] = np.sort(np.append(parts["train"], chosen))
        logger.info("patient_split: moved one patient from %s to train so label %d is trained on", donor, label)


def patient_split(
    patient_ids: Sequence[str],
    targets: np.ndarray,
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split samples into train/val/test at patient level, iteratively stratified on the patients' labels.

    The patient counts are ``round(fraction × n_patients)`` for test and val (train takes the rest); every
    label that occurs at all is guaranteed at least one training patient.

    Args:
        patient_ids: one id per sample, shape (n_samples,).
        targets: (n_samples, n_labels) 0/1, or (n_samples,) class indices.
        fractions: (train, val, test) fractions of *patients*, each ≥ 0, summing to 1; val or test may be 0.
        seed: the only source of randomness; equal seeds give equal splits.

    Returns:
        ``{"train", "val", "test"}`` → sorted int64 sample indices; every sample is in exactly one split and
        all samples of one patient are in the same split.

    Raises:
        InputError: bad fractions, or inputs of mismatched length.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0) or fr[0] <= 0:
        raise InputError(
            f"fractions must be (train>0, val≥0, test≥0) summing to 1, got {tuple(fractions)}",
            field="fractions",
        )
    patients, y, inverse = patient_targets(patient_ids, targets)
    n = patients.size
    n_test = int(round(fr[2] * n))
    n_val = int(round(fr[1] * n))
    if n - n_test - n_val < 1:
        raise InputError(f"{n} patients are too few for fractions {tuple(fractions)}", field="fractions")
    everyone = np.arange(n)
    rest, test = _stratified_holdout(y, everyone, n_test, seed)
    train, val = _stratified_holdout(y, rest, n_val, seed + 1)
    parts = {"train": train, "val": val, "test": test}
    _repair_train_coverage(y, parts)
    result = {name: _samples_of(parts[name], inverse) for name in SPLIT_NAMES}
    logger.info(
        "patient_split(seed=%d): %d patients → train %d, val %d, test %d",
        seed,
        n,
        parts["train"].size,
        parts["val"].size,
        parts["test"].size,
    )
    return result


def patient_kfold(
    patient_ids: Sequence[str], targets: np.ndarray, *, k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Iteratively stratified k folds at patient level.

    Args:
        patient_ids: one id per sample.
        targets: (n_samples, n_labels) 0/1, or (n_samples,) class indices.
        k: number of folds, 2 ≤ k ≤ number of patients.
        seed: the only source of randomness.

    Returns:
        k pairs ``(train_idx, test_idx)`` of sorted int64 sample indices; each patient is in exactly one test
        fold.

    Raises:
        InputError: ``k`` out of range.
    """
    patients, y, inverse = patient_targets(patient_ids, targets)
    if not 2 <= k <= patients.size:
        raise InputError(f"k must be between 2 and the {patients.size} patients, got {k}", field="k")
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (_samples_of(tr, inverse), _samples_of(te, inverse))
        for tr, te in splitter.split(np.zeros((patients.size, 1)), y)
    ]


def age_band(age_years: float | None, bands: Sequence[tuple[str, float, float]]) -> str:
    """The name of the band ``[lower, upper)`` holding ``age_years`` (years), for subgroup metrics.

    Each dataset passes its own bands (adult fundus screening and PTB-XL use different ones). Returns
    ``"unknown"`` for a missing, NaN, negative or out-of-band age.
    """
    if age_years is None or not np.isfinite(age_years) or age_years < 0:
        return "unknown"
    for name, lo, hi in bands:
        if lo <= age_years < hi:
            return name
    return "unknown"
