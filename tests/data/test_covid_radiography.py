"""COVID-19 Radiography Database adapter: the published layouts, order, labels, errors, the writer, the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data_path
from vitalens.data.covid_radiography import (
    CXR_CLASSES,
    CovidRadiographyDataset,
    find_covid_radiography_root,
    is_covid_radiography_root,
    write_covid_radiography,
)
from vitalens.errors import InputError, UnknownNameError


def _img(value: int, shape: tuple[int, ...] = (12, 10)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


def test_writer_layout_and_reader_roundtrip(tmp_path: Path) -> None:
    pairs = [
        ("Normal", _img(10)),
        ("Normal", _img(20)),
        ("COVID", _img(200, (12, 10, 3))),
        ("Viral Pneumonia", _img(90)),
    ]
    root = write_covid_radiography(tmp_path / "db", pairs)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png")) == [
        "COVID/images/COVID-1.png",
        "Normal/images/Normal-1.png",
        "Normal/images/Normal-2.png",
        "Viral Pneumonia/images/Viral Pneumonia-1.png",
    ]
    with Image.open(root / "COVID/images/COVID-1.png") as im:
        assert im.mode == "L" and im.size == (10, 12)
    ds = CovidRadiographyDataset(root)
    assert ds.classes == ["Normal", "COVID", "Viral Pneumonia"]
    assert [r.image_id for r in ds] == ["Normal-1", "Normal-2", "COVID-1", "Viral Pneumonia-1"]
    assert ds.anomaly.tolist() == [0, 0, 1, 1]
    assert dict(ds.class_counts()) == {"Normal": 2, "COVID": 1, "Viral Pneumonia": 1}


def test_numbers_sort_naturally_and_flat_layout_reads(tmp_path: Path) -> None:
    for cls, names in (("Normal", ["Normal-10", "Normal-9", "Normal-100"]), ("COVID", ["COVID (2)", "COVID (11)"])):
        (tmp_path / cls).mkdir(parents=True)
        for name in names:
            Image.fromarray(_img(5)).save(tmp_path / cls / f"{name}.png")
    ds = CovidRadiographyDataset(tmp_path)  # the first releases: no images/ level
    assert [r.image_id for r in ds] == ["Normal-9", "Normal-10", "Normal-100", "COVID (2)", "COVID (11)"]


def test_kaggle_nesting_is_found(tmp_path: Path) -> None:
    write_covid_radiography(tmp_path, [("Normal", _img(1)), ("Lung_Opacity", _img(2))], nested=True)
    assert find_covid_radiography_root(tmp_path) == tmp_path / "COVID-19_Radiography_Dataset"
    assert CovidRadiographyDataset(tmp_path).classes == ["Normal", "Lung_Opacity"]


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a COVID-19 Radiography Database folder"):
        CovidRadiographyDataset(tmp_path)
    assert not is_covid_radiography_root(tmp_path)
    write_covid_radiography(tmp_path, [("Normal", _img(1)), ("COVID", _img(2))])
    with pytest.raises(InputError, match="'Viral Pneumonia' is missing"):
        CovidRadiographyDataset(tmp_path, classes=["Normal", "Viral Pneumonia"])
    with pytest.raises(UnknownNameError, match="Did you mean 'COVID'"):
        CovidRadiographyDataset(tmp_path, classes=["Normal", "COVD"])
    with pytest.raises(UnknownNameError):
        write_covid_radiography(tmp_path, [("Tuberculosis", _img(1))])
    with pytest.raises(InputError, match="expected uint8"):
        write_covid_radiography(tmp_path, [("Normal", np.zeros((4, 4), dtype=np.float32))])


def test_only_normals_is_not_a_database(tmp_path: Path) -> None:
    write_covid_radiography(tmp_path, [("Normal", _img(1))])
    assert not is_covid_radiography_root(tmp_path)


def test_real_sample_counts_and_labels() -> None:
    root = shared_data_path("cxr", "covid19_radiography_sample")
    ds = CovidRadiographyDataset(root)
    assert dict(ds.class_counts()) == {"Normal": 500, "COVID": 100, "Viral Pneumonia": 100}
    assert ds.anomaly.sum() == 200
    assert set(ds.classes) <= set(CXR_CLASSES)
    assert len(set(ds.image_ids.tolist())) == 700
