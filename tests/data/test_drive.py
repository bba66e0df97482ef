"""DRIVE adapter and writer: the synthetic twin round-trips through the published layout; the real data reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.data.drive import DriveDataset, write_drive_record
from vitalens.errors import InputError
from vitalens.synth import write_drive_synth


@pytest.fixture(scope="module")
def drive_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_drive_synth(tmp_path_factory.mktemp("drive") / "DRIVE", n_train=3, n_test=2, image_size=96)


class TestTwin:
    def test_layout_and_names_are_drives(self, drive_twin: Path) -> None:
        assert (drive_twin / "training/images/21_training.tif").is_file()
        assert (drive_twin / "training/mask/23_training_mask.gif").is_file()
        assert (drive_twin / "test/2nd_manual/02_manual2.gif").is_file()
        assert not (drive_twin / "training/2nd_manual").exists()
        assert (drive_twin / "SYNTHETIC.md").is_file()

    def test_adapter_reads_what_the_writer_wrote(self, drive_twin: Path) -> None:
        train, test = DriveDataset(drive_twin, "training"), DriveDataset(drive_twin, "test")
        assert list(train.image_ids) == ["21", "22", "23"]
        assert list(test.image_ids) == ["01", "02"]
        rec = test[0]
        assert rec.has_second_observer and not train[0].has_second_observer
        image, v1, v2, fov = rec.image(), rec.vessels(1), rec.vessels(2), rec.fov()
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert v1.dtype == bool and v1.shape == fov.shape == (96, 96)
        assert 0.02 < v1[fov].mean() < 0.3
        assert not (v1 & ~fov).any()
        assert (v1 != v2).any()  # a second observer disagrees somewhere
        assert (v1 == v2).mean() > 0.9

    def test_truth_records_the_disc(self, drive_twin: Path) -> None:
        truth = json.loads((drive_twin / "synthetic.json").read_text())
        assert set(truth) == {"training/21", "training/22", "training/23", "test/01", "test/02"}
        assert truth["test/01"]["disc_radius"] > 0

    def test_seed_reproducible(self, tmp_path: Path) -> None:
        a = write_drive_synth(tmp_path / "a", n_train=1, n_test=1, image_size=64, seed=3)
        b = write_drive_synth(tmp_path / "b", n_train=1, n_test=1, image_size=64, seed=3)
        assert np.array_equal(DriveDataset(a, "test")[0].image(), DriveDataset(b, "test")[0].image())


class TestErrors:
    def test_unknown_split(self, drive_twin: Path) -> None:
        with pytest.raises(ValueError, match="training"):
            DriveDataset(drive_twin, "validation")

    def test_missing_annotation(self, tmp_path: Path) -> None:
        rec = write_drive_record(
            tmp_path,
            "training",
            "21",
            image=np.zeros((8, 8, 3), np.uint8),
            vessels=np.zeros((8, 8)),
            fov=np.ones((8, 8)),
        )
        rec.manual1_path.unlink()
        with pytest.raises(InputError, match="21_manual1.gif"):
            DriveDataset(tmp_path, "training")

    def test_writer_checks_shapes(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="vessels"):
            write_drive_record(
                tmp_path,
                "test",
                "01",
                image=np.zeros((8, 8, 3), np.uint8),
                vessels=np.zeros((8, 9)),
                fov=np.ones((8, 8)),
            )

    def test_no_second_observer_in_training(self, drive_twin: Path) -> None:
        with pytest.raises(InputError, match="second observer"):
            DriveDataset(drive_twin, "training")[0].vessels(2)


@pytest.mark.realdata
def test_real_drive_reads() -> None:
    root = shared_data_path("fundus", "DRIVE")
    train, test = DriveDataset(root, "training"), DriveDataset(root, "test")
    assert (len(train), len(test)) == (20, 20)
    rec = test[0]
    assert rec.image().shape == (584, 565, 3)
    # the second observer's palette GIF (0/1 indices) reads as a mask of the same density as the first's
    assert abs(rec.vessels(2).mean() - rec.vessels(1).mean()) < 0.02
    assert 0.6 < rec.fov().mean() < 0.75
