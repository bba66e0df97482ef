"""BilateralOdirDataset items and the age z-score."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vitalens.data.odir import OdirDataset
from vitalens.data.torch_odir import BilateralOdirDataset, age_stats
from vitalens.errors import InputError


def test_age_stats_exact() -> None:
    mean, std = age_stats(np.array([50.0, 60.0, 70.0]))
    assert mean == 60.0
    assert std == pytest.approx(math.sqrt(200.0 / 3.0), abs=1e-12)  # population std, ddof = 0


def test_age_stats_constant_ages_get_unit_std(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert age_stats(np.array([63.0, 63.0])) == (63.0, 1.0)
    assert "all 2 ages equal 63.0" in caplog.text


@pytest.mark.parametrize(("ages", "message"), [([], "at least one age"), ([50.0, np.nan], "1 non-finite")])
def test_age_stats_bad_input(ages: list[float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        age_stats(np.array(ages))


def test_items_shapes_dtypes_and_exact_age_zscore(odir_synth_root: Path) -> None:
    ds = OdirDataset(odir_synth_root)
    indices = np.array([3, 0, 7])
    torch_ds = BilateralOdirDataset(ds, indices, size=32, age_mean=55.0, age_std=10.0)
    assert len(torch_ds) == 3
    item = torch_ds[1]
    record = ds[0]
    assert item["left"].shape == (3, 32, 32) and item["left"].dtype == torch.float32
    assert item["right"].shape == (3, 32, 32) and item["right"].dtype == torch.float32
    assert item["age"].shape == (1,) and item["age"].dtype == torch.float32
    assert item["age"].item() == pytest.approx((record.age_years - 55.0) / 10.0, abs=1e-6)
    assert item["target"].dtype == torch.float32
    assert item["target"].tolist() == [float(v) for v in record.labels]
    assert item["patient_id"] == record.patient_id
    assert not torch.equal(item["left"], item["right"])  # two different photographs
    assert len(torch_ds._cache) == 2  # both eyes cached after first read


def test_augmented_items_reproducible_per_seed(odir_synth_root: Path) -> None:
    ds = OdirDataset(odir_synth_root)

    def left(seed: int) -> torch.Tensor:
        torch_ds = BilateralOdirDataset(ds, [0], size=32, age_mean=0.0, age_std=1.0, augment=True, seed=seed)
        return torch_ds[0]["left"]

    assert torch.equal(left(5), left(5))
    assert not torch.equal(left(5), left(6))


def test_dataloader_collates_a_batch(odir_synth_root: Path) -> None:
    ds = OdirDataset(odir_synth_root)
    torch_ds = BilateralOdirDataset(ds, range(6), size=24, age_mean=50.0, age_std=12.0, cache_images=False)
    batch = next(iter(torch.utils.data.DataLoader(torch_ds, batch_size=4)))
    assert batch["left"].shape == (4, 3, 24, 24)
    assert batch["age"].shape == (4, 1) and batch["target"].shape == (4, 8)
    assert len(batch["patient_id"]) == 4
    assert torch_ds._cache == {}


def test_bad_arguments_are_input_errors(odir_synth_root: Path) -> None:
    ds = OdirDataset(odir_synth_root)
    with pytest.raises(InputError, match="age_std must be > 0"):
        BilateralOdirDataset(ds, [0], size=32, age_mean=0.0, age_std=0.0)
    with pytest.raises(InputError, match=r"indices must lie in \[0, 24\)"):
        BilateralOdirDataset(ds, [0, 24], size=32, age_mean=0.0, age_std=1.0)
