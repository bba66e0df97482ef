"""k-fold held-out splits and partial unfreezing: the pieces the fundus benchmark and the CPU recipe rely on."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.nets import create_net
from vitalens.training.recipe import Recipe
from vitalens.training.tasks._base import kfold_or_split


def _toy(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return np.asarray([f"p{i}" for i in range(n)]), (rng.random((n, 4)) < 0.3).astype(np.float32)


def test_each_patient_is_tested_exactly_once_over_the_folds() -> None:
    ids, targets = _toy()
    seen: list[str] = []
    for fold in range(5):
        data = Recipe.load(
            {"analyzer": "fundus.odir", "net": {"name": "odir_test"}, "data": {"fold": fold, "n_folds": 5}}
        ).data
        parts = kfold_or_split(ids, targets, data, seed=0)
        assert not set(parts["train"]) & set(parts["val"])
        assert not set(parts["train"]) & set(parts["test"]) and not set(parts["val"]) & set(parts["test"])
        assert len(parts["train"]) + len(parts["val"]) + len(parts["test"]) == len(ids)
        seen.extend(ids[parts["test"]])
    assert sorted(seen) == sorted(ids)


def test_fold_must_be_below_n_folds() -> None:
    with pytest.raises(Exception, match="data.fold must be < data.n_folds"):
        Recipe.load({"analyzer": "fundus.odir", "net": {"name": "odir_test"}, "data": {"fold": 3, "n_folds": 3}})


def test_partial_unfreezing_trains_only_the_last_stages() -> None:
    net = create_net("odir_test")
    stages = net.encoder_stages()
    net.freeze_encoder(True)
    assert not any(p.requires_grad for p in net.encoder.parameters())
    net.freeze_encoder(False, trainable_tail=2)
    trainable = {id(p) for s in stages[-2:] for p in s.parameters()}
    for p in net.encoder.parameters():
        assert p.requires_grad == (id(p) in trainable)
    net.freeze_encoder(False)
    assert all(p.requires_grad for p in net.encoder.parameters())


def test_finetune_stage_runs_and_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The low-LR stage trains every layer after the best epoch and is kept only if validation improves."""
    import json

    from vitalens.synth.odir import write_odir_synth
    from vitalens.training import train

    data = write_odir_synth(tmp_path / "odir", n_patients=24, image_size=96, seed=2)
    overrides = {
        "net.name": "odir_test",
        "net.pretrained": False,
        "task.image_size": 64,
        "train.max_epochs": 1,
        "train.unfreeze_after": 1,
        "train.finetune_epochs": 1,
        "train.finetune_lr": 1e-5,
        "train.progress_bar": False,
    }
    train("fundus.odir", data=data, out=tmp_path / "run", overrides=overrides)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    ft = report["training"]["finetune"]
    assert ft["epochs"] == 1 and ft["lr"] == 1e-5
    assert isinstance(ft["improved"], bool) and ft["best_val_macro_auroc"] is not None
    if ft["improved"]:
        assert report["training"]["best_val_macro_auroc"] == ft["best_val_macro_auroc"]
    else:
        assert report["training"]["best_val_macro_auroc"] >= ft["best_val_macro_auroc"]
