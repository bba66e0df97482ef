"""bench/explain_sanity.py end to end on real ODIR pairs with the tiny random net (smoke run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, shared_data_path


def _bench_module():
    spec = importlib.util.spec_from_file_location("explain_sanity", REPO_ROOT / "bench" / "explain_sanity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.realdata
def test_smoke_run_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_data_path("fundus", "odir")
    out = tmp_path / "explain_sanity.json"
    code = _bench_module().main(
        [
            "--net",
            "odir_test",
            "--data",
            str(data),
            "--n",
            "2",
            "--size",
            "64",
            "--every",
            "5",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "gradcam ρ mean ± sd" in printed and "encoder.conv_stem" in printed
    payload = json.loads(out.read_text())
    assert payload["n_maps"] == 4 and len(payload["patients"]) == 2
    assert [r["group"] for r in payload["results"]["gradcam"]][-1] == "encoder.conv_stem"
    assert set(payload["results"]) == {"gradcam", "saliency"}


def test_missing_artifact_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _bench_module().main(["--artifact", str(tmp_path / "nope"), "--data", str(tmp_path)])
    assert code == 2
    assert "no artifact" in capsys.readouterr().out
