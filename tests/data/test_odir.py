"""ODIR adapter: layouts, sheet priority, pairing, dropped patients, and the real 304-patient sample."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_data_path
from vitalens.data.odir import (
    ODIR_LABEL_NAMES,
    ODIR_LABELS,
    ODIR_SHEET_COLUMNS,
    OdirDataset,
    find_odir_sheet,
    read_odir_sheet,
)
from vitalens.errors import InputError


@pytest.fixture
def odir_copy(odir_synth_root: Path, tmp_path: Path) -> Path:
    """A private copy of the session's synthetic folder, free to mutate."""
    return Path(shutil.copytree(odir_synth_root, tmp_path / "odir"))


def test_labels_and_names_in_sheet_order() -> None:
    assert ODIR_LABELS == ("N", "D", "G", "C", "A", "H", "M", "O")
    assert list(ODIR_LABEL_NAMES) == list(ODIR_LABELS)
    assert ODIR_LABEL_NAMES["A"] == "Age-related macular degeneration"
    assert ODIR_LABEL_NAMES["O"] == "Other abnormalities"


def test_synthetic_twin_reads_one_record_per_patient(odir_synth_root: Path) -> None:
    ds = OdirDataset(odir_synth_root)
    sheet = pd.read_csv(odir_synth_root / "labels.csv")
    assert ds.sheet.name == "labels.csv"
    assert len(ds) == 24 == len(sheet)
    assert ds.labels == ODIR_LABELS
    assert ds.targets.shape == (24, 8) and ds.targets.dtype == np.float32
    np.testing.assert_array_equal(ds.targets, sheet[list(ODIR_LABELS)].to_numpy(np.float32))
    np.testing.assert_array_equal(ds.patient_ids, sheet["ID"].astype(str).to_numpy())
    np.testing.assert_array_equal(ds.ages, sheet["Patient Age"].to_numpy(np.float32))
    assert set(ds.sexes) <= {"female", "male"}
    for record in ds:
        assert record.left.name == f"{record.patient_id}_left.jpg" and record.left.is_file()
        assert record.right.name == f"{record.patient_id}_right.jpg" and record.right.is_file()
        assert len(record.labels) == 8
        assert record.left_keywords and record.right_keywords


def test_patient_missing_an_image_is_dropped_and_logged(odir_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    sheet = pd.read_csv(odir_copy / "labels.csv")
    victim = str(sheet["ID"].iloc[5])
    (odir_copy / "images" / f"{victim}_right.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="vitalens.data.odir"):
        ds = OdirDataset(odir_copy)
    assert len(ds) == 23
    assert victim not in set(ds.patient_ids)
    assert ds.dropped == [victim]
    assert "dropped 1 of 24 patients" in caplog.text
    kept_all = OdirDataset(odir_copy, require_images=False)
    assert len(kept_all) == 24 and victim in set(kept_all.patient_ids)


def test_sheet_priority_xlsx_then_labels_then_full_df(odir_copy: Path) -> None:
    sheet = pd.read_csv(odir_copy / "labels.csv")
    first = str(sheet["ID"].iloc[0])
    assert find_odir_sheet(odir_copy).name == "labels.csv"  # labels.csv beats full_df.csv

    (odir_copy / "labels.csv").unlink()
    via_full_df = OdirDataset(odir_copy)
    assert via_full_df.sheet.name == "full_df.csv"
    assert len(via_full_df) == 24  # two image rows per patient collapsed to one
    np.testing.assert_array_equal(via_full_df.targets, sheet[list(ODIR_LABELS)].to_numpy(np.float32))

    annotations = sheet.copy()
    annotations.loc[0, "Patient Age"] = 101
    annotations.to_excel(odir_copy / "ODIR-5K_Training_Annotations(Updated)_V2.xlsx", index=False)
    ds = OdirDataset(odir_copy)
    assert ds.sheet.name.endswith("Annotations(Updated)_V2.xlsx")
    assert ds[ds.subset_ids([first])[0]].age_years == 101.0

    official = sheet.copy()
    official.loc[0, "Patient Age"] = 7
    official.to_excel(odir_copy / "data.xlsx", index=False)
    ds = OdirDataset(odir_copy)
    assert ds.sheet.name == "data.xlsx"
    assert ds[ds.subset_ids([first])[0]].age_years == 7.0


def test_kaggle_layout_with_preprocessed_images(odir_copy: Path) -> None:
    (odir_copy / "images").rename(odir_copy / "preprocessed_images")
    (odir_copy / "labels.csv").unlink()
    ds = OdirDataset(odir_copy)
    assert ds.image_dir.name == "preprocessed_images"
    assert len(ds) == 24


def test_missing_sheet_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data\.xlsx.*\*Annotations\*\.xlsx.*labels\.csv.*full_df\.csv"):
        OdirDataset(tmp_path)


def test_missing_image_folder_names_the_candidates(odir_copy: Path) -> None:
    shutil.rmtree(odir_copy / "images")
    with pytest.raises(FileNotFoundError, match="images, ODIR-5K_Training_Dataset, Training Images"):
        OdirDataset(odir_copy)
    assert len(OdirDataset(odir_copy, require_images=False)) == 24


def test_sheet_without_a_label_column_is_an_input_error(odir_copy: Path) -> None:
    sheet = pd.read_csv(odir_copy / "labels.csv").drop(columns=["H"])
    sheet.to_csv(odir_copy / "labels.csv", index=False)
    with pytest.raises(InputError, match=r"lacks columns \['H'\]"):
        OdirDataset(odir_copy)


def test_non_binary_label_is_an_input_error(tmp_path: Path, odir_synth_root: Path) -> None:
    sheet = pd.read_csv(odir_synth_root / "labels.csv")
    sheet.loc[2, "D"] = 2
    sheet.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(InputError, match="label D .* is 2, expected 0 or 1"):
        read_odir_sheet(tmp_path / "labels.csv")


def test_per_image_rows_that_disagree_are_an_input_error(tmp_path: Path, odir_synth_root: Path) -> None:
    full = pd.read_csv(odir_synth_root / "full_df.csv")
    pid = full["ID"].iloc[0]
    rows = full.index[full["ID"] == pid]
    full.loc[rows[0], "Patient Age"] = full.loc[rows[1], "Patient Age"] + 1
    full.to_csv(tmp_path / "full_df.csv", index=False)
    with pytest.raises(InputError, match="disagree on age, sex or labels"):
        read_odir_sheet(tmp_path / "full_df.csv")


def test_sheet_columns_are_the_official_ones(odir_synth_root: Path) -> None:
    assert tuple(read_odir_sheet(odir_synth_root / "labels.csv").columns) == ODIR_SHEET_COLUMNS


@pytest.mark.realdata
def test_real_sample_304_patients_with_published_label_sums() -> None:
    root = shared_data_path("fundus", "odir")
    ds = OdirDataset(root)
    assert ds.sheet.name == "ODIR-5K_Training_Annotations(Updated)_V2.xlsx"
    assert len(ds) == 304
    sums = dict(zip(ODIR_LABELS, ds.targets.sum(axis=0).astype(int).tolist(), strict=True))
    assert sums == {"N": 38, "D": 82, "G": 38, "C": 39, "A": 39, "H": 41, "M": 39, "O": 68}
    assert len(ds.dropped) == 3500 - 304
    first = ds[ds.subset_ids(["0"])[0]]
    assert (first.age_years, first.sex, first.labels) == (69.0, "female", (0, 0, 0, 1, 0, 0, 0, 0))
    assert (first.left_keywords, first.right_keywords) == ("cataract", "normal fundus")


@pytest.mark.realdata
def test_real_kaggle_table_collapses_to_3358_patients() -> None:
    root = shared_data_path("fundus", "odir")
    ds = OdirDataset(root, sheet=root / "full_df.csv", require_images=False)
    assert len(ds) == 3358
    assert len(set(ds.patient_ids)) == 3358


def test_importing_the_data_package_does_not_import_torch() -> None:
    code = "import sys, vitalens.data; assert 'torch' not in sys.modules; print(vitalens.data.ODIR_LABELS[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "N"


def test_lazy_torch_names_resolve() -> None:
    import vitalens.data as data

    assert data.BilateralOdirDataset.__name__ == "BilateralOdirDataset"
    assert data.FundusPreprocess(16).size == 16
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        data.Nope  # noqa: B018
