"""ecg.ptbxl task plug-in: folds, train-only statistics, augmentation on train only, noisy normals, engine run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitalens.synth.ptbxl import write_ptbxl_synth
from vitalens.training.augment_ecg import ECGNoise, NoiseConfig
from vitalens.training.recipe import Recipe
from vitalens.training.tasks import get_task


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ptbxl_synth(tmp_path_factory.mktemp("ptbxl") / "ptb-xl", n_records=40, seed=0)


def _recipe(**task: object) -> Recipe:
    return Recipe.load(
        {"analyzer": "ecg.ptbxl", "net": {"name": "ecg_se_resnet1d_test"}, "task": {"noisy_normals": 0.5, **task}}
    )


def test_build_data(root: Path) -> None:
    task = get_task("ecg.ptbxl", _recipe())
    bundle = task.build_data(root)
    assert bundle.provenance == "synthetic"
    train_ids = bundle.meta["ecg_ids"]["train"]
    n_norm_only = int((bundle.targets["train"][: len(train_ids), 0] == 1).sum())
    assert len(bundle.train) == len(train_ids) + round(0.5 * n_norm_only) == len(bundle.targets["train"])
    assert bundle.targets["train"][-1].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # noisy normals are NORM only
    # statistics from the training folds only: z-scored train signals have mean ~0 per lead, clean val items too
    clean = np.stack([bundle.train.signals[i] for i in range(len(train_ids))])
    z = (clean - np.asarray(bundle.meta["mean"])[None, :, None]) / np.asarray(bundle.meta["std"])[None, :, None]
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-4)
    v1, v2 = bundle.val[0]["ecg"], bundle.val[0]["ecg"]
    torch.testing.assert_close(v1, v2)  # no augmentation outside training
    t1, t2 = bundle.train[0]["ecg"], bundle.train[0]["ecg"]
    assert not torch.equal(t1, t2)  # online noise on training items
    spec = task.input_spec(bundle)
    assert spec.fs_hz == 100.0 and spec.leads[3] == "aVR" and len(spec.mean) == 12
    assert task.card_extra(bundle)["tier_edges"] == [0.2, 0.5]


def test_noise_reproducible_per_instance() -> None:
    x = np.zeros((12, 500), dtype=np.float32)
    always = NoiseConfig(gaussian_prob=1, wander_prob=1, powerline_prob=1, scale_prob=1, burst_prob=1, dropout_prob=1)
    a, b = ECGNoise(100, always, seed=7), ECGNoise(100, always, seed=7)
    first = a(x)
    np.testing.assert_array_equal(first, b(x))  # same seed, same corruption
    assert not np.array_equal(first, a(x))  # the instance's generator advances
    np.testing.assert_array_equal(a.set_random_state(7)(x), first)  # reseeding replays it
    assert np.all(x == 0)  # input untouched
    quiet = NoiseConfig(0, wander_prob=0, powerline_prob=0, scale_prob=0, burst_prob=0, dropout_prob=0)
    np.testing.assert_array_equal(ECGNoise(100, quiet, seed=1)(x + 1.0), x + 1.0)


def test_mi_operating_point(root: Path) -> None:
    task = get_task("ecg.ptbxl", _recipe())
    y = np.zeros((4, 5))
    y[:2, 1] = 1
    probs = np.zeros((4, 5))
    probs[:, 1] = [0.9, 0.2, 0.6, 0.1]
    m = task.extra_metrics(y, probs, np.full(5, 0.5))
    assert m == {"mi_sensitivity": 0.5, "mi_specificity": 0.5}


@pytest.mark.slow
def test_engine_trains_an_artifact(root: Path, tmp_path: Path) -> None:
    from vitalens.artifacts import verify_artifact
    from vitalens.training import train

    artifact = train(
        "ecg.ptbxl",
        data=root,
        out=tmp_path / "run",
        overrides={"net.name": "ecg_se_resnet1d_test", "train.max_epochs": 1, "train.batch_size": 8},
    )
    card = verify_artifact(artifact, expected_analyzer="ecg.ptbxl")
    assert card.demonstration and card.extra["tier_edges"] == [0.2, 0.5]
    assert card.threshold_method.startswith("youden") and "MI: target_sensitivity 0.95" in card.threshold_method
    assert card.training_data.splits["folds"]["test"] == [10]


def test_random_crops_on_train_only(root: Path) -> None:
    task = get_task("ecg.ptbxl", _recipe(crop_s=2.5, augment=False, noisy_normals=0.0))
    bundle = task.build_data(root)
    first, again = bundle.train[0]["ecg"], bundle.train[0]["ecg"]
    assert first.shape == (12, 250) and again.shape == (12, 250)
    assert not torch.equal(first, again)  # a new position each time
    full = (bundle.train.signals[0] - bundle.train.mean) / bundle.train.std
    starts = [s for s in range(1000 - 250 + 1) if np.allclose(full[:, s : s + 250], first.numpy(), atol=1e-6)]
    assert starts  # the crop is a window of the record, not a resampled copy
    assert bundle.val[0]["ecg"].shape == (12, 1000) and bundle.test[0]["ecg"].shape == (12, 1000)
    assert task.card_extra(bundle)["train_crop_s"] == 2.5
