"""PneumoniaMNIST reader/writer: MedMNIST's keys, validation of the file, and the real file's published counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.data.pneumoniamnist import PneumoniaMnist, find_pneumoniamnist_file, write_pneumoniamnist
from vitalens.errors import InputError, UnknownNameError


def _splits(n: int = 4, size: int = 28) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        s: (rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.array([0, 1] * (n // 2)))
        for s in ("train", "val", "test")
    }


def test_roundtrip_keeps_keys_shapes_and_labels(tmp_path: Path) -> None:
    splits = _splits()
    path = write_pneumoniamnist(tmp_path / "pneumoniamnist.npz", splits)
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels"))
        assert npz["train_labels"].shape == (4, 1) and npz["train_labels"].dtype == np.uint8
    pm = PneumoniaMnist(tmp_path)  # a folder holding the file is accepted
    assert pm.image_size == 28
    part = pm.split("val")
    np.testing.assert_array_equal(part.images, splits["val"][0])
    assert part.labels.tolist() == [0, 1, 0, 1]
    assert part.image_ids.tolist() == ["val-0", "val-1", "val-2", "val-3"]
    with pytest.raises(UnknownNameError):
        pm.split("validation")


def test_bad_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no PneumoniaMNIST file"):
        find_pneumoniamnist_file(tmp_path)
    bad = tmp_path / "pneumoniamnist.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        PneumoniaMnist(bad)
    np.savez(bad, train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(InputError, match="no 'train_labels'"):
        PneumoniaMnist(bad)
    arrays = {f"{s}_images": np.zeros((2, 28, 28), np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": np.array([[0], [2]]) for s in ("train", "val", "test")})
    np.savez(bad, **arrays)
    with pytest.raises(InputError, match="expected 0/1"):
        PneumoniaMnist(bad)


def test_real_file_has_the_published_split_sizes() -> None:
    pm = PneumoniaMnist(shared_data_path("medmnist", "pneumoniamnist.npz"))
    sizes = {s: (len(pm.split(s)), int(pm.split(s).labels.sum())) for s in ("train", "val", "test")}
    assert sizes == {"train": (4708, 3494), "val": (524, 389), "test": (624, 390)}
