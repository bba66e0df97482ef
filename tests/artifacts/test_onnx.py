"""ONNX export: parity with PyTorch within 1e-4 on the tiny ECG net, sha256 recorded, artifact still verifies."""

from __future__ import annotations

from pathlib import Path

from tests.analyzers.test_ecg_ptbxl import make_tiny_ecg_artifact
from vitalens.artifacts import ONNX_FILE, sha256_file, verify_artifact
from vitalens.artifacts.onnx import example_input_shape, export_onnx, onnx_parity


def test_export_parity(tmp_path: Path) -> None:
    folder = make_tiny_ecg_artifact(tmp_path / "ecg")
    path = export_onnx(folder)
    assert path == folder / ONNX_FILE and path.is_file()
    card = verify_artifact(folder, expected_analyzer="ecg.ptbxl")
    assert card.files[ONNX_FILE] == sha256_file(path)
    assert example_input_shape(card, 3) == (3, 12, 1000)
    from vitalens.artifacts import load_model

    net, _ = load_model(folder)
    assert onnx_parity(net, path, (7, 12, 1000), seed=3) <= 1e-4  # a batch size not used at export


def test_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vitalens.cli import app

    folder = make_tiny_ecg_artifact(tmp_path / "ecg")
    result = CliRunner().invoke(app, ["export", str(folder), "--onnx"])
    assert result.exit_code == 0, result.output
    assert (folder / ONNX_FILE).is_file() and "verified" in result.output
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "nope")])
    assert missing.exit_code == 2
