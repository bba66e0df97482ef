"""Patient-level splits: no leakage, determinism, fractions, label coverage, k-fold coverage."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.data.odir import OdirDataset
from vitalens.data.splits import patient_kfold, patient_split, patient_targets
from vitalens.errors import InputError


def _multi_sample_data(n_patients: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1–3 samples per patient sharing the patient's 6 labels; label 5 is rare (3 patients)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n_patients, 6)) < [0.4, 0.3, 0.2, 0.1, 0.08, 0.0]).astype(np.uint8)
    y[[1, n_patients // 2, n_patients - 2], 5] = 1
    reps = rng.integers(1, 4, n_patients)
    ids = np.repeat([f"p{i:03d}" for i in range(n_patients)], reps)
    return ids, np.repeat(y, reps, axis=0)


def _patients(ids: np.ndarray, idx: np.ndarray) -> set[str]:
    return set(ids[idx].tolist())


def test_no_patient_in_two_splits_and_every_sample_once() -> None:
    ids, y = _multi_sample_data()
    split = patient_split(ids, y, seed=0)
    train, val, test = (_patients(ids, split[k]) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    every = np.sort(np.concatenate(list(split.values())))
    np.testing.assert_array_equal(every, np.arange(len(ids)))
    assert all(v.dtype == np.int64 for v in split.values())


def test_deterministic_for_a_seed_and_different_for_another() -> None:
    ids, y = _multi_sample_data()
    a, b = patient_split(ids, y, seed=4), patient_split(ids, y, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = patient_split(ids, y, seed=5)
    assert not np.array_equal(a["test"], c["test"])


def test_fractions_are_honoured_in_patients() -> None:
    ids, y = _multi_sample_data(n_patients=200)
    split = patient_split(ids, y, fractions=(0.6, 0.2, 0.2), seed=1)
    counts = {k: len(_patients(ids, v)) for k, v in split.items()}
    assert sum(counts.values()) == 200
    assert abs(counts["val"] - 40) <= 2 and abs(counts["test"] - 40) <= 2


@pytest.mark.parametrize("seed", range(6))
def test_every_label_present_in_train(seed: int) -> None:
    ids, y = _multi_sample_data(n_patients=60, seed=seed)
    split = patient_split(ids, y, seed=seed)
    present = y.any(axis=0)
    np.testing.assert_array_equal(y[split["train"]].any(axis=0), present)


def test_single_label_class_targets_are_stratified() -> None:
    ids = np.array([f"p{i}" for i in range(100)])
    classes = np.array([0] * 70 + [1] * 20 + [2] * 10)
    split = patient_split(ids, classes, seed=0)
    for name, share in (("val", 0.15), ("test", 0.15)):
        counts = np.bincount(classes[split[name]], minlength=3)
        assert counts.min() >= 1, name
        np.testing.assert_allclose(counts, share * np.array([70, 20, 10]), atol=1.0)


def test_patient_targets_is_the_union_of_samples() -> None:
    patients, y, inverse = patient_targets(["b", "a", "b"], np.array([[1, 0], [0, 0], [0, 1]]))
    assert patients.tolist() == ["a", "b"]
    assert y.tolist() == [[0, 0], [1, 1]]
    assert inverse.tolist() == [1, 0, 1]


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (0.8, -0.1, 0.3), (0.7, 0.3)])
def test_bad_fractions_are_input_errors(fractions: tuple[float, ...]) -> None:
    ids, y = _multi_sample_data(20)
    with pytest.raises(InputError, match="fractions"):
        patient_split(ids, y, fractions=fractions)  # type: ignore[arg-type]


def test_zero_val_fraction_gives_empty_val() -> None:
    ids, y = _multi_sample_data(50)
    split = patient_split(ids, y, fractions=(0.8, 0.0, 0.2))
    assert split["val"].size == 0 and split["test"].size > 0


def test_mismatched_lengths_are_input_errors() -> None:
    with pytest.raises(InputError, match="targets have 2 rows, patient_ids 3"):
        patient_split(["a", "b", "c"], np.zeros((2, 3)))


def test_kfold_covers_each_patient_exactly_once() -> None:
    ids, y = _multi_sample_data(n_patients=100)
    folds = patient_kfold(ids, y, k=5, seed=2)
    assert len(folds) == 5
    seen: list[str] = []
    for train_idx, test_idx in folds:
        assert not (_patients(ids, train_idx) & _patients(ids, test_idx))
        assert train_idx.size + test_idx.size == len(ids)
        seen += sorted(_patients(ids, test_idx))
    assert sorted(seen) == sorted(set(ids.tolist()))
    again = patient_kfold(ids, y, k=5, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_kfold_with_too_many_folds_is_an_input_error() -> None:
    with pytest.raises(InputError, match="k must be between 2 and the 3 patients, got 4"):
        patient_kfold(["a", "b", "c"], np.eye(3), k=4)


@pytest.mark.realdata
def test_real_sample_split_keeps_every_label_in_every_split() -> None:
    ds = OdirDataset(shared_data_path("fundus", "odir"))
    split = patient_split(ds.patient_ids, ds.targets, seed=0)
    assert sum(v.size for v in split.values()) == 304
    for name, idx in split.items():
        assert ds.targets[idx].sum(axis=0).min() >= 3, name


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0.0, "<50"),
        (49.999, "<50"),
        (50.0, "50-64"),
        (64.9, "50-64"),
        (65.0, "65+"),
        (-1.0, "unknown"),
        (float("nan"), "unknown"),
        (None, "unknown"),
        (250.0, "unknown"),
    ],
)
def test_age_band_edges_are_lower_inclusive(age: float | None, band: str) -> None:
    from vitalens.data.splits import age_band

    assert age_band(age, (("<50", 0, 50), ("50-64", 50, 65), ("65+", 65, 200))) == band
