"""The frozen-trunk fundus.odir run end to end on a synthetic twin with the tiny net: k fold heads in one artifact,
calibration and thresholds fitted on the out-of-fold predictions, a card that says so, and an analyzer that runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitalens.artifacts import load_model
from vitalens.synth.odir import write_odir_synth
from vitalens.training.engine import train

FROZEN = {
    "net.name": "odir_test",
    "net.pretrained": False,
    "task.image_size": 48,
    "data.n_folds": 3,
    "calibration.method": "platt",
    "task.frozen_trunk": {"head": {"epochs": 2, "batch_size": 8, "train_views": ["id", "hflip"], "aux_weight": 0.5}},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import torch

    torch.set_num_threads(1)
    root = write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=18, image_size=64, seed=0)
    (root / "SYNTHETIC").write_text("synthetic twin\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("frozen")
    torch.manual_seed(0)
    artifact = train("fundus.odir", data=root, out=out, overrides=FROZEN)
    return root, artifact


def test_one_artifact_holds_the_fold_heads_and_an_out_of_fold_card(run: tuple[Path, Path]) -> None:
    _, artifact = run
    net, card = load_model(artifact, expected_analyzer="fundus.odir")
    assert 1 + len(net.extra_heads) == 3
    assert card.architecture.kwargs["n_heads"] == 3
    assert card.calibration.method == "platt" and card.calibration.fitted_on == "out-of-fold (3 folds)"
    assert len(card.calibration.params["a"]) == 8
    assert "out-of-fold predictions of 18 patients" in card.threshold_method
    assert card.metrics["split"] == "out-of-fold" and card.metrics["n"] == 18
    assert card.training_data.splits["folds"] == 3 and card.training_data.n_patients == 18
    assert card.demonstration and card.limitations.startswith("DEMONSTRATION MODEL")
    assert set(card.thresholds) == set(card.labels)
    assert len(card.extra["records"]["train"]) == 18 and card.extra["records"]["val"] == []
    assert (artifact.parent / "report.json").is_file() and (artifact.parent / "reliability.png").is_file()


def test_the_analyzer_runs_the_bundled_ensemble(run: tuple[Path, Path]) -> None:
    from vitalens.analyzers import create_analyzer
    from vitalens.artifacts import ModelCache
    from vitalens.data.odir import OdirDataset
    from vitalens.domain import StudyInputs
    from vitalens.io.images import read_image

    root, artifact = run
    rec = OdirDataset(root).records[0]
    analyzer = create_analyzer("fundus.odir", artifact=artifact, cache=ModelCache(budget_bytes=2**28), device="cpu")
    result = analyzer(
        StudyInputs(fundus_left=read_image(rec.left), fundus_right=read_image(rec.right), age_years=rec.age_years),
        explain=True,  # Grad-CAM through the mean of the fold heads
    )
    probs = [f.probability for f in result.findings]
    assert len(probs) == 8 and all(0.0 <= p <= 1.0 for p in probs)
    assert np.isfinite(probs).all()
    assert result.demonstration


def test_the_train_command_prints_the_out_of_fold_summary(run: tuple[Path, Path], tmp_path: Path) -> None:
    """A frozen-trunk run has no test split: ``vitalens train`` prints the out-of-fold table instead of failing."""
    import json

    from typer.testing import CliRunner

    from vitalens.cli import app

    root, _ = run
    sets = [f"--set={k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in FROZEN.items()]
    result = CliRunner().invoke(app, ["train", "fundus.odir", "--data", str(root), "--out", str(tmp_path), *sets])
    assert result.exit_code == 0, result.output
    assert "out-of-fold split (n = 18)" in result.output and "macro AUROC" in result.output
