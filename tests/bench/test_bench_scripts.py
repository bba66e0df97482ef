"""Smoke tests of the service benches (``bench/load.py``, ``bench/schemathesis_run.py``): their summaries on
hand-made samples, and tiny real runs (slow: they start a server, or walk every operation)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_percentile_exact_values() -> None:
    load = _module("load")
    assert load.percentile([], 50) is None
    assert load.percentile([4.0], 95) == 4.0
    assert load.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5  # linear interpolation
    assert load.percentile([float(i) for i in range(101)], 95) == 95.0


def test_route_table_counts_errors_and_uses_only_successes_for_latency() -> None:
    load = _module("load")
    samples = [
        ("POST /patients", "201", 0.010),
        ("POST /patients", "201", 0.030),
        ("POST /patients", "500", 9.0),
        ("POST /patients", "conn_error", 0.001),
        ("GET /analyses/{id}", "200", 0.002),
    ]
    rows = {r["route"]: r for r in load.route_table(samples)}
    assert list(rows) == ["GET /analyses/{id}", "POST /patients"]
    p = rows["POST /patients"]
    assert (p["count"], p["ok"]) == (4, 2)
    assert p["p50_ms"] == pytest.approx(20.0) and p["max_ms"] == pytest.approx(30.0)
    assert p["errors"] == {"500": 1, "conn_error": 1}
    assert rows["GET /analyses/{id}"]["errors"] == {}


@pytest.mark.slow
@pytest.mark.integration
def test_load_bench_tiny_run(tmp_path: Path) -> None:
    load = _module("load")
    out = tmp_path / "load.json"
    assert load.main(["--db", "sqlite", "--clients", "2", "--seconds", "3", "--grace", "90", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["errors_by_status"] == {} and result["verify"]["ok"]
    assert result["throughput"]["workflows"] >= 1
    assert result["verify"]["lost"] == {"patients": 0, "studies": 0, "analyses": 0, "annotations": 0, "feedback": 0}


@pytest.mark.slow
@pytest.mark.integration
def test_schemathesis_bench_tiny_run(tmp_path: Path) -> None:
    run = _module("schemathesis_run")
    out = tmp_path / "st.json"
    code = run.main(["--examples", "2", "--budget", "120", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["operations"] >= 40 and result["cases"] >= result["operations"]
    assert code == (0 if result["server_errors"] == 0 else 1)
