"""PTB-XL adapter: superclass aggregation, folds, records present, train-only lead statistics, metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_data_path
from vitalens.data.ptbxl import (
    PTBXL_LABELS,
    TRAIN_FOLDS,
    PTBXLDataset,
    age_band,
    aggregate_superclasses,
    lead_stats,
    read_scp_statements,
)
from vitalens.errors import InputError
from vitalens.synth.ptbxl import write_ptbxl_synth


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ptbxl_synth(tmp_path_factory.mktemp("ptbxl") / "ptb-xl", n_records=40, seed=1)


def test_aggregation_matches_the_dataset_example(synth_root: Path) -> None:
    diagnostic = read_scp_statements(synth_root)
    # any likelihood counts (0.0 included); non-diagnostic codes (SR, LVOLT) and unknown codes are ignored
    assert aggregate_superclasses({"IMI": 0.0, "SR": 0.0}, diagnostic) == ["MI"]
    assert aggregate_superclasses({"NDT": 100.0, "CLBBB": 50.0, "LVOLT": 100.0}, diagnostic) == ["STTC", "CD"]
    assert aggregate_superclasses({"LVH": 100.0, "IMI": 15.0, "ASMI": 80.0}, diagnostic) == ["MI", "HYP"]
    assert aggregate_superclasses({"SR": 0.0, "XYZ": 100.0}, diagnostic) == []


def test_folds_and_targets(synth_root: Path) -> None:
    train = PTBXLDataset(synth_root, folds=TRAIN_FOLDS)
    test = PTBXLDataset(synth_root, folds=[10])
    assert set(train.strat_folds) <= set(TRAIN_FOLDS) and set(test.strat_folds) == {10}
    assert not set(train.patient_ids) & set(test.patient_ids)  # folds are patient-level
    db = pd.read_csv(synth_root / "ptbxl_database.csv", index_col="ecg_id")
    assert len(train) + len(PTBXLDataset(synth_root, folds=[9])) + len(test) == len(db)
    # record 2 (ecg_id 2) is MI by construction of the twin
    i = list(train.ecg_ids).index(2)
    assert train.targets[i].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    x, y = train[i]
    assert x.shape == (12, 1000) and x.dtype == np.float32 and y.shape == (len(PTBXL_LABELS),)


def test_missing_records_are_logged_and_skipped(synth_root: Path, tmp_path: Path, caplog) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    (root / "records100" / "00000" / "00001_lr.dat").unlink()
    with caplog.at_level(logging.INFO, logger="vitalens.data.ptbxl"):
        ds = PTBXLDataset(root)
    assert ds.n_missing == 1 and 1 not in ds.ecg_ids and len(ds) == 39
    assert "1 of 40 records" in caplog.text


def test_lead_stats_from_training_folds_only(synth_root: Path) -> None:
    train = PTBXLDataset(synth_root, folds=TRAIN_FOLDS)
    mean, std = lead_stats(train.signals)
    assert mean.shape == (12,) and std.shape == (12,)
    np.testing.assert_allclose(mean, train.signals.mean(axis=(0, 2)), atol=1e-5)
    test = PTBXLDataset(synth_root, folds=[10], stats=(mean, std))
    x, _ = test[0]
    np.testing.assert_allclose(x, (test.signals[0] - mean[:, None]) / std[:, None], atol=1e-5)
    # exact values on a hand-made array: lead 0 = [1, 3] → mean 2, std 1; a flat lead gets the floor
    m, s = lead_stats(np.array([[[1.0, 3.0], [5.0, 5.0]]], dtype=np.float32))
    assert m.tolist() == [2.0, 5.0] and s.tolist() == pytest.approx([1.0, 1e-3])


def test_metadata_and_age_bands(synth_root: Path) -> None:
    meta = PTBXLDataset(synth_root).metadata()
    assert set(meta["sex"]) <= {"male", "female"}
    assert meta["age_years"].max() <= 90.0  # 300 (over 89) is mapped to 90
    assert [age_band(a) for a in (39.9, 40.0, 59.9, 60.0, 79.9, 80.0, None)] == [
        "<40",
        "40-59",
        "40-59",
        "60-79",
        "60-79",
        ">=80",
        "unknown",
    ]


def test_bad_inputs(tmp_path: Path, synth_root: Path) -> None:
    with pytest.raises(InputError, match="ptbxl_database.csv"):
        PTBXLDataset(tmp_path)
    with pytest.raises(InputError, match="100 or 500"):
        PTBXLDataset(synth_root, sampling_rate=250)


def test_real_fold9_counts() -> None:
    root = shared_data_path("ecg", "ptb-xl")
    ds = PTBXLDataset(root, folds=[9])
    assert ds.n_missing == 1343  # the shared copy holds 850 of fold 9's 2,193 records
    assert len(ds) == 832  # 18 of them have no diagnostic statement
