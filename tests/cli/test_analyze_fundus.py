"""``vitalens analyze fundus``: JSON keys, overlays, and a one-line error with exit code 2 for each bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.utils.fundus_artifact import make_tiny_fundus_artifact
from vitalens.cli import app
from vitalens.synth.odir import write_odir_synth

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = write_odir_synth(root / "odir", n_patients=3, image_size=128, seed=5)
    left = sorted((data / "images").glob("*_left.jpg"))[0]
    right = left.with_name(left.name.replace("_left", "_right"))
    return make_tiny_fundus_artifact(root / "artifact"), left, right


def _run(setup: tuple[Path, Path, Path], *extra: str, left: Path | None = None, age: str = "63") -> object:
    artifact, default_left, right = setup
    args = ["analyze", "fundus", "--left", str(left or default_left), "--right", str(right), "--age", age]
    return runner.invoke(app, [*args, "--artifact", str(artifact), *extra])


def test_json_output(setup: tuple[Path, Path, Path]) -> None:
    result = _run(setup, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    for key in ("probabilities", "positive", "proxies", "band", "explanation", "model", "trained_on"):
        assert key in body
    assert body["demonstration"] is True and body["band"] in {"Low", "Medium", "High"}


def test_table_output_carries_the_flags(setup: tuple[Path, Path, Path]) -> None:
    result = _run(setup)
    assert result.exit_code == 0, result.output
    assert "DEMONSTRATION MODEL" in result.output and "not a diagnosis" in result.output
    assert "Risk band:" in result.output


def test_explain_writes_overlays(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    result = _run(setup, "--json", "--explain", str(tmp_path / "maps"))
    assert result.exit_code == 0, result.output
    positives = json.loads(result.output)["positive"]
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    assert len(pngs) == 2 * len(positives)
    if pngs:
        assert Image.open(pngs[0]).size == (128, 128)


@pytest.mark.parametrize("age", ["abc", "121", "-3"])
def test_bad_age_is_one_line_exit_2(setup: tuple[Path, Path, Path], age: str) -> None:
    result = _run(setup, age=age)
    assert result.exit_code == 2
    assert "age" in result.output and "0–120" in result.output


def test_bad_files_exit_2(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    missing = _run(setup, left=tmp_path / "nope.jpg")
    assert missing.exit_code == 2 and "file not found" in missing.output
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert "not an image" in _run(setup, left=text).output
    gray = tmp_path / "gray.png"
    buf = io.BytesIO()
    Image.fromarray(np.full((90, 90), 100, np.uint8)).save(buf, format="PNG")
    gray.write_bytes(buf.getvalue())
    result = _run(setup, left=gray)
    assert result.exit_code == 2 and "grayscale" in result.output


def test_wrong_artifact_is_refused(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    artifact, left, right = setup
    args = ["analyze", "fundus", "--left", str(left), "--right", str(right), "--age", "50"]
    result = runner.invoke(app, [*args, "--artifact", str(tmp_path)])
    assert result.exit_code == 2 and "no card.json" in result.output
