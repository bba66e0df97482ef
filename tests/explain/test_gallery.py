"""vitalens gallery: correct and misclassified examples with overlays, as a page, for a single-image artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.utils.retina_artifacts import tiny_recipe
from vitalens.cli import app
from vitalens.synth import write_kermany_synth
from vitalens.training.engine import train


def test_gallery_page_of_an_oct_artifact(tmp_path: Path) -> None:
    root = write_kermany_synth(tmp_path / "oct", n_patients=12, height=64, width=80, seed=3)
    artifact = train("oct.kermany4", data=root, out=tmp_path / "run", recipe=tiny_recipe("oct.kermany4"))
    result = CliRunner().invoke(
        app, ["gallery", str(artifact), "--data", str(root), "--out", str(tmp_path / "g"), "--split", "all"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert summary["split"] == "all" and summary["items"]
    page = (tmp_path / "g" / "index.html").read_text()
    assert "Correct (" in page and "Misclassified (" in page and "Decision support only" in page
    for item in summary["items"]:
        assert (tmp_path / "g" / item["image"]).is_file() and (tmp_path / "g" / item["overlay"]).is_file()
        assert item["correct"] == (item["truth"] == item["predicted"])


def test_gallery_refuses_a_bad_split(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["gallery", str(tmp_path), "--data", str(tmp_path), "--out", "x", "--split", "tset"]
    )
    assert result.exit_code == 2 and "Did you mean 'test'" in result.output


@pytest.mark.parametrize("missing", ["artifact", "data"])
def test_gallery_missing_paths(tmp_path: Path, missing: str) -> None:
    (tmp_path / "a").mkdir()
    args = ["gallery", str(tmp_path / ("nope" if missing == "artifact" else "a")), "--data"]
    args += [str(tmp_path / ("nope" if missing == "data" else "a")), "--out", str(tmp_path / "g")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "does not exist" in result.output
