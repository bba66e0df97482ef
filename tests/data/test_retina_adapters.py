"""APTOS, Kermany OCT2017, OCT-C8 and MedMNIST adapters: layouts, writers round-trip, patient ids, real samples."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_data_path
from vitalens.data._image_source import WriteItem
from vitalens.data.aptos import DR_GRADES, AptosDataset
from vitalens.data.kermany import KERMANY_LABELS, KermanyOctDataset, parse_kermany_name
from vitalens.data.medmnist import MEDMNIST_FLAGS, MedMnistDataset, medmnist_file_name
from vitalens.data.octc8 import OCTC8_LABELS, OctC8Dataset
from vitalens.errors import InputError, UnknownNameError
from vitalens.synth.aptos import write_aptos_synth
from vitalens.synth.medmnist import write_medmnist_synth
from vitalens.synth.oct import write_kermany_synth, write_octc8_synth


def _grey(v: int, shape: tuple[int, int] = (40, 48)) -> np.ndarray:
    return np.full(shape, v, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------------ APTOS
def test_aptos_writer_round_trip_and_missing_images_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    items = [WriteItem(rgb, str(g), name=f"id{g}") for g in (0, 2, 4)]
    root = AptosDataset.write(tmp_path / "aptos", items)
    sheet = pd.read_csv(root / "train.csv")
    assert list(sheet.columns) == ["id_code", "diagnosis"] and sheet["diagnosis"].tolist() == [0, 2, 4]
    # A label row without its image (as in the shared sample: 3,662 rows, 150 images) is skipped and counted.
    pd.concat([sheet, pd.DataFrame([{"id_code": "gone", "diagnosis": 1}])]).to_csv(root / "train.csv", index=False)
    with caplog.at_level(logging.INFO, logger="vitalens.data.aptos"):
        ds = AptosDataset(root)
    assert [s.sample_id for s in ds] == ["id0", "id2", "id4"]
    assert ds.targets.tolist() == [0, 2, 4] and ds.patient_ids.tolist() == ["id0", "id2", "id4"]
    assert "1 of 4 rows" in caplog.text
    assert ds.one_hot().tolist()[1] == [0, 0, 1, 0, 0]
    assert ds.image(0).shape == (32, 32, 3)


def test_aptos_refuses_bad_grades_and_missing_sheet(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train.csv"):
        AptosDataset(tmp_path)
    root = AptosDataset.write(tmp_path / "a", [WriteItem(np.zeros((8, 8, 3), np.uint8), "1", name="x")])
    pd.DataFrame([{"id_code": "x", "diagnosis": 7}]).to_csv(root / "train.csv", index=False)
    with pytest.raises(InputError, match="diagnosis of x is .7., expected a grade"):
        AptosDataset(root)
    with pytest.raises(InputError, match="labels"):
        AptosDataset.write(tmp_path / "b", [WriteItem(np.zeros((8, 8, 3), np.uint8), "5")])


def test_aptos_synthetic_twin_has_every_grade(tmp_path: Path) -> None:
    root = write_aptos_synth(tmp_path / "aptos", n_per_grade=2, image_size=64, seed=1)
    ds = AptosDataset(root)
    assert ds.class_counts() == dict.fromkeys(DR_GRADES, 2)
    assert (root / "SYNTHETIC.md").is_file() and AptosDataset.detect(root)


@pytest.mark.realdata
def test_aptos_real_sample_150_images_30_per_grade() -> None:
    ds = AptosDataset(shared_data_path("fundus", "aptos2019"))
    assert len(ds) == 150 and ds.class_counts() == dict.fromkeys(DR_GRADES, 30)


# ---------------------------------------------------------------------------------------------------- Kermany
def test_parse_kermany_name() -> None:
    assert parse_kermany_name("CNV-103044-5") == ("CNV", "103044", 5)
    assert parse_kermany_name("NORMAL-12494-12") == ("NORMAL", "12494", 12)
    assert parse_kermany_name("CNV") is None and parse_kermany_name("cnv-1-2") is None


def test_kermany_writer_names_patients_and_reader_parses_them(tmp_path: Path) -> None:
    items = [
        WriteItem(_grey(10), "CNV", "111", "train"),
        WriteItem(_grey(20), "CNV", "111", "train"),
        WriteItem(_grey(30), "DME", "222", "test"),
    ]
    root = KermanyOctDataset.write(tmp_path / "OCT2017", items)
    assert (root / "train/CNV/CNV-111-1.jpeg").is_file() and (root / "train/CNV/CNV-111-2.jpeg").is_file()
    assert (root / "test/DME/DME-222-1.jpeg").is_file()
    ds = KermanyOctDataset(root)
    assert ds.patient_ids.tolist() == ["111", "111", "222"]
    assert ds.official_splits.tolist() == ["train", "train", "test"] and ds.has_official_splits
    assert ds.targets.tolist() == [0, 0, 1]
    assert ds.image(0, "L").shape == (40, 48)


def test_kermany_reads_bare_and_nested_collections_and_drops_duplicates(tmp_path: Path) -> None:
    a = KermanyOctDataset.write(tmp_path / "oct/a", [WriteItem(_grey(10), "NORMAL", "5")], with_splits=False)
    KermanyOctDataset.write(tmp_path / "oct/b", [WriteItem(_grey(90), "DRUSEN", "6")], with_splits=False)
    shutil.copy(a / "NORMAL/NORMAL-5-1.jpeg", tmp_path / "oct/b/DRUSEN/DRUSEN.jpeg")  # byte-identical copy
    ds = KermanyOctDataset(tmp_path / "oct")
    assert [s.sample_id for s in ds] == ["a/NORMAL/NORMAL-5-1.jpeg", "b/DRUSEN/DRUSEN-6-1.jpeg"]
    assert not ds.has_official_splits
    keep = KermanyOctDataset(tmp_path / "oct", dedupe=False)
    unnamed = [s for s in keep if s.sample_id.endswith("DRUSEN.jpeg")]
    assert unnamed and unnamed[0].patient_id == "unnamed:b/DRUSEN/DRUSEN.jpeg"


def test_kermany_refuses_a_folder_without_class_folders(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="no Kermany layout"):
        KermanyOctDataset(tmp_path)
    with pytest.raises(InputError, match="digits"):
        KermanyOctDataset.write(tmp_path / "w", [WriteItem(_grey(1), "CNV", "p-1")])


def test_kermany_twin_splits_patients_and_covers_classes(tmp_path: Path) -> None:
    root = write_kermany_synth(tmp_path / "k", n_patients=8, height=64, width=64, seed=2)
    ds = KermanyOctDataset(root)
    assert set(ds.class_counts()) == set(KERMANY_LABELS) and min(ds.class_counts().values()) >= 1
    for pid in set(ds.patient_ids):
        assert len(set(ds.official_splits[ds.patient_ids == pid])) == 1
    assert KermanyOctDataset.detect(root) and not OctC8Dataset.detect(root)


@pytest.mark.realdata
def test_kermany_real_scans_218_of_85_patients() -> None:
    ds = KermanyOctDataset(shared_data_path("oct"))
    assert len(ds) == 218 and ds.class_counts() == {"CNV": 81, "DME": 21, "DRUSEN": 21, "NORMAL": 95}
    assert np.unique(ds.patient_ids).size == 85


# ----------------------------------------------------------------------------------------------------- OCT-C8
def test_octc8_twin_round_trip_with_published_splits(tmp_path: Path) -> None:
    root = write_octc8_synth(tmp_path / "c8", per_class=(2, 1, 1), height=48, width=48)
    ds = OctC8Dataset(root)
    assert ds.labels == OCTC8_LABELS and ds.class_counts() == dict.fromkeys(OCTC8_LABELS, 4)
    assert ds.summary()["official_splits"] == {"train": 16, "val": 8, "test": 8}
    assert (root / "val/MH/mh_val_1.jpg").is_file()
    assert OctC8Dataset.detect(root) and not KermanyOctDataset.detect(root)


def test_octc8_needs_two_classes(tmp_path: Path) -> None:
    OctC8Dataset.write(tmp_path, [WriteItem(_grey(5), "MH", split="train")])
    with pytest.raises(InputError, match="1 class"):
        OctC8Dataset(tmp_path)


# --------------------------------------------------------------------------------------------------- MedMNIST
@pytest.mark.parametrize("flag", sorted(MEDMNIST_FLAGS))
@pytest.mark.parametrize("size", [28, 64, 128, 224])
def test_medmnist_twin_every_flag_and_size(tmp_path: Path, flag: str, size: int) -> None:
    path = write_medmnist_synth(tmp_path, flag, size=size, per_class=(1, 1, 1))
    assert path.name == medmnist_file_name(flag, size)
    ds = MedMnistDataset(tmp_path)
    assert ds.flag.flag == flag and ds.size == size and ds.labels == MEDMNIST_FLAGS[flag].labels
    n = len(ds.labels)
    assert ds.summary()["official_splits"] == {"train": n, "val": n, "test": n}
    assert ds.image(0).shape == (size, size, 3) and ds.image(0, "L").shape == (size, size)


def test_medmnist_checks_name_against_arrays(tmp_path: Path) -> None:
    path = write_medmnist_synth(tmp_path, "octmnist", size=28, per_class=(1, 1, 1))
    wrong = path.rename(tmp_path / "octmnist_64.npz")
    with pytest.raises(InputError, match="28 px, expected 64"):
        MedMnistDataset(wrong)
    with pytest.raises(UnknownNameError, match="Did you mean 'octmnist'"):
        MedMnistDataset(wrong, flag="octmnis", size=28)
    with pytest.raises(FileNotFoundError, match="no MedMNIST"):
        MedMnistDataset(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


@pytest.mark.realdata
def test_medmnist_real_retinamnist_official_counts() -> None:
    ds = MedMnistDataset(shared_data_path("medmnist", "retinamnist.npz"))
    assert ds.summary()["official_splits"] == {"train": 1080, "val": 120, "test": 400}
    train = ds.targets[ds.official_splits == "train"]
    assert np.bincount(train).tolist() == [486, 128, 206, 194, 66]


# ----------------------------------------------------------------------------------------- feedback writers
def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_adapter_writers_round_trip_reviewed_records(tmp_path: Path) -> None:
    from vitalens.data import get_adapter
    from vitalens.data._adapters import ExportInput, ExportRecord, SkipRecord

    fundus = np.zeros((40, 40, 3), np.uint8)
    fundus[..., 0] = 120
    eye = ExportInput("fundus_right", "od.png", "image/png", lambda: _png(fundus))
    with get_adapter("aptos2019").writer(tmp_path / "aptos") as writer:
        writer.add(
            ExportRecord(
                record_id="s1",
                patient_id="p1",
                labels={},
                inputs={"fundus_right": eye},
                labels_by_input={"fundus_right": {"0": False, "2": True, "RDR": True}},
            )
        )
        with pytest.raises(SkipRecord, match="exactly one reviewed class"):
            writer.add(ExportRecord(record_id="s2", patient_id="p2", labels={}, inputs={"fundus_right": eye}))
    ds = AptosDataset(tmp_path / "aptos")
    assert [(s.sample_id, s.label) for s in ds] == [("s1_fundus_right", 2)]
    scan = ExportInput("oct", "b.png", "image/png", lambda: _png(_grey(90)))
    with get_adapter("kermany").writer(tmp_path / "k") as writer:
        writer.add(ExportRecord(record_id="s3", patient_id="abc123", labels={"DME": True}, inputs={"oct": scan}))
    k = KermanyOctDataset(tmp_path / "k")
    assert [(s.sample_id, s.patient_id) for s in k] == [("test/DME/DME-123-1.jpeg", "123")]
