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
