"""``vitalens train`` / ``vitalens evaluate``: user errors are one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vitalens.cli import app

runner = CliRunner()


def test_train_unknown_analyzer_lists_valid_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "fundus.odr", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Unknown training task 'fundus.odr'" in result.output
    assert "Did you mean 'fundus.odir'?" in result.output and "Valid: " in result.output


def test_train_missing_data_and_recipe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "fundus.odir", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "data root" in result.output and "does not exist" in result.output
    result = runner.invoke(
        app, ["train", "fundus.odir", "--data", str(tmp_path), "--out", str(tmp_path), "--recipe", "missing.yaml"]
    )
    assert result.exit_code == 2 and "recipe file missing.yaml does not exist" in result.output


def test_train_bad_override_fails_before_training(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["train", "fundus.odir", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "train.max_epoch=2"],
    )
    assert result.exit_code == 2
    assert "train.max_epoch" in result.output and "Extra inputs are not permitted" in result.output


def test_evaluate_bad_inputs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path / "none"), "--data", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "model artifact folder" in result.output
    result = runner.invoke(
        app, ["evaluate", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path), "--split", "dev"]
    )
    assert result.exit_code == 2 and "Unknown split 'dev'" in result.output


def test_evaluate_folds_on_a_ptbxl_layout(tmp_path: Path) -> None:
    """``vitalens evaluate ARTIFACT --data ROOT --folds ...`` scores the bundled ECG model on any PTB-XL root."""
    import json

    import pytest

    from vitalens.synth.ptbxl import write_ptbxl_synth

    artifact = Path(__file__).resolve().parents[2] / "models" / "ecg-ptbxl"
    if not (artifact / "card.json").is_file():
        pytest.skip("bundled models/ecg-ptbxl absent")
    root = write_ptbxl_synth(tmp_path / "ptbxl", n_records=40, seed=4)
    sizes = {}
    for folds in ("10", "9,10"):
        out = tmp_path / f"eval-{folds}"
        args = ["evaluate", str(artifact), "--data", str(root), "--out", str(out), "--folds", folds]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        sizes[folds] = json.loads((out / "report.json").read_text())["splits"]["test"]["n"]
    assert 0 < sizes["10"] < sizes["9,10"]
    bad = CliRunner().invoke(
        app, ["evaluate", str(artifact), "--data", str(root), "--out", str(tmp_path), "--folds", "x"]
    )
    assert bad.exit_code == 2 and "--folds must be comma-separated" in bad.output
