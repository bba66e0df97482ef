"""Multi-GPU / multi-node training is Lightning's: the recipe's ``trainer:`` keys reach the Trainer unchanged.

The default run checks the keys on the engine's real code path (a recording Trainer stops it right there) and that
Lightning builds a DDP strategy from them; the slow test trains for real with two DDP processes on the CPU (gloo),
which is the same code path as two GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vitalens.errors import InputError
from vitalens.synth.odir import write_odir_synth
from vitalens.training.engine import resolve_recipe, train, trainer_kwargs

TINY = {
    "net.name": "odir_test",
    "net.pretrained": False,
    "task.image_size": 64,
    "train.max_epochs": 1,
    "train.batch_size": 4,
    "train.unfreeze_after": 0,
    "train.progress_bar": False,
}
DDP = {"trainer.strategy": "ddp", "trainer.devices": 2, "trainer.num_nodes": 1, "trainer.sync_batchnorm": True}


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def odir_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=24, image_size=64, seed=0)
    (root / "SYNTHETIC").write_text("synthetic twin\n", encoding="utf-8")
    return root


def test_recipe_trainer_keys_reach_the_lightning_trainer(
    odir_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning

    seen: list[dict[str, Any]] = []

    class Recording(lightning.Trainer):
        def __init__(self, **kwargs: Any) -> None:
            seen.append(kwargs)
            raise _Stop

    monkeypatch.setattr(lightning, "Trainer", Recording)
    with pytest.raises(_Stop):
        train("fundus.odir", data=odir_root, out=tmp_path, overrides={**TINY, **DDP, "train.accelerator": "cpu"})
    assert len(seen) == 1
    got = seen[0]
    assert got["strategy"] == "ddp" and got["devices"] == 2 and got["num_nodes"] == 1
    assert got["sync_batchnorm"] is True and got["accelerator"] == "cpu"


def test_lightning_builds_ddp_from_those_keys() -> None:
    import lightning
    from lightning.pytorch.strategies import DDPStrategy

    recipe = resolve_recipe("fundus.odir", overrides={**DDP, "train.accelerator": "cpu"})
    trainer = lightning.Trainer(**trainer_kwargs(recipe), logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.num_devices == 2 and trainer.world_size == 2 and trainer.num_nodes == 1
    single = lightning.Trainer(**trainer_kwargs(resolve_recipe("fundus.odir")), logger=False)
    assert single.num_devices == 1 and single.world_size == 1


def test_unknown_trainer_key_fails() -> None:
    with pytest.raises(InputError, match="gpus"):
        resolve_recipe("fundus.odir", overrides={"trainer.gpus": 2})


@pytest.mark.slow
def test_two_process_ddp_on_cpu_trains_and_rank0_writes_one_artifact(odir_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "vitalens.cli", "train", "fundus.odir", "--data", str(odir_root), "--out", str(out)]
    # The bilateral fundus net has parameters a step may not use (the gradual-unfreezing schedule), which DDP must
    # be told about: Lightning's ddp_find_unused_parameters_true.
    placement = {**DDP, "trainer.strategy": "ddp_find_unused_parameters_true", "trainer.sync_batchnorm": False}
    for key, value in {**TINY, **placement, "train.accelerator": "cpu"}.items():
        args += ["--set", f"{key}={value}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "world_size: 2" in proc.stderr or "distributed_backend=gloo" in proc.stderr, proc.stderr[-2000:]
    assert (out / "artifact" / "card.json").is_file() and (out / "report.json").is_file()
