"""Smoke tests of the benches (``bench/load.py``, ``bench/schemathesis_run.py``, the choice in
``bench/intervals.py``): their summaries on hand-made samples, and tiny real runs (slow: they start a server, or walk
every operation)."""

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


def _bad_case(bad: ModuleType, **kw: object) -> object:
    base = dict(route="POST /x", name="n", method="POST", url="/x", kwargs={}, expect=frozenset({422}), fields=("age",))
    return bad.Case(**{**base, **kw})  # type: ignore[arg-type]


def test_bad_input_verdicts_on_hand_made_answers() -> None:
    bad = _module("bad_inputs")
    case = _bad_case(bad)
    assert bad.judge(case, 422, '{"detail": "age: must be 0-120"}', 0.1).verdict == "clear"
    assert bad.judge(case, 422, '{"detail": "value is wrong"}', 0.1).why == "names none of ['age']"
    assert bad.judge(case, 422, '{"detail": "age: bad /tmp/x/upload.csv"}', 0.1).why == "shows server internals"
    assert bad.judge(case, 400, "There was an error", 0.1).why == "no JSON detail"
    assert bad.judge(case, 404, '{"detail": "age: nope"}', 0.1).why == "status 404 not in [422]"
    assert bad.judge(case, 500, '{"detail": "x"}', 0.1).verdict == "server_error"
    assert bad.judge(case, None, "", 60.0).verdict == "hang"
    assert bad.judge(case, 201, "{}", 0.1).verdict == "wrongly_allowed"
    contract = _bad_case(bad, contract=True)
    assert bad.judge(contract, 201, "{}", 0.1).verdict == "contract"
    named = _bad_case(bad, sanitised_ok=True)
    assert bad.judge(named, 201, '{"inputs": [{"filename": "ecg.csv"}]}', 0.1).verdict == "clear"
    assert bad.judge(named, 201, '{"inputs": [{"filename": "../ecg.csv"}]}', 0.1).verdict == "wrongly_allowed"
    aliased = _bad_case(bad, fields=("file",))
    assert bad.judge(aliased, 422, '{"detail": "ecg: lasts 0.1 s"}', 0.1).verdict == "clear"  # file carries ecg


def test_access_matrix_expectations_follow_the_authorisation_model() -> None:
    am = _module("access_matrix")
    e = am.expected
    assert e("public", "anonymous", "own", "live", None) == "allow"
    assert e("patient.read", "anonymous", "own", "live", "patient") == "deny"
    assert e("authenticated", "reviewer", "own", "live", None) == "allow"
    assert e("patient.read", "clinician", "own", "live", "patient") == "allow"
    assert e("patient.read", "clinician", "other", "live", "patient") == "deny"
    assert e("patient.read", "clinician", "own", "deleted", "patient") == "deny"
    assert e("patient.create", "reviewer", "own", "live", None) == "deny"
    assert e("patient.read", "instance_admin", "own", "live", "patient") == "deny"  # no patient permission at all
    assert e("user.manage", "admin", "other", "live", "user") == "deny"  # a site admin manages one site
    assert e("user.manage", "instance_admin", "other", "live", "user") == "allow"
    assert e("site.manage", "admin", "own", "live", None) == "deny"
    assert am._outcome(303, "/login?next=%2Fworklist") == "denied" and am._outcome(409, "") == "passed"


def test_intervals_leave_one_out_chooses_without_the_record_it_scores() -> None:
    intervals = _module("intervals")

    def rec(name: str, pr: float, qrs: float, qt: float) -> dict:
        return {"file": name, "PR_ms": {"diff": pr}, "QRS_ms": {"diff": qrs}, "QT_ms": {"diff": qt}}

    # method a is perfect on r1–r3 and 30 ms off on r4; b is 5 ms off everywhere
    methods = {
        "a": {"records": [rec("r1", 0, 0, 0), rec("r2", 0, 0, 0), rec("r3", 0, 0, 0), rec("r4", 30, 30, -30)]},
        "b": {"records": [rec(f"r{i}", 5, -5, 5) for i in range(1, 5)]},
        "c": {"records": [rec("r1", None, 0, 0), *[rec(f"r{i}", 0, 0, 0) for i in range(2, 5)]]},  # incomplete
    }
    loo = intervals.leave_one_out(methods, 4)
    # r1 out: c is complete on r2–r4 and perfect there (0 < b's 5 < a's 10); r2 or r3 out: c lacks r1, a scores 10
    # (its 30 ms on r4 counts), b 5; r4 out: a is perfect on r1–r3
    assert [f["chosen"] for f in loo["folds"]] == ["c", "b", "b", "a"]
    assert [f["QT_ms"] for f in loo["folds"]] == [0, 5, 5, -30]
    assert loo["summary"]["QT_ms"] == {"n": 4, "mean_abs_diff_ms": 10.0, "max_abs_diff_ms": 30.0}
    assert loo["summary"]["PR_ms"]["n"] == 3  # c measured no PR on r1


def test_quality_bench_interval_and_transforms_exact_values() -> None:
    import numpy as np

    quality = _module("quality")
    lo, hi = quality.wilson(0, 60)  # k = 0: [0, z²/(n + z²)], never below 0
    assert lo == 0.0 and hi == pytest.approx(1.96**2 / (60 + 1.96**2))
    lo, hi = quality.wilson(60, 60)
    assert hi == pytest.approx(1.0) and hi <= 1.0 and lo == pytest.approx(60 / (60 + 1.96**2))
    img = np.array([[[0, 50, 100], [90, 120, 200]]], np.uint8)
    assert quality.brightened_fixed(img).tolist() == [[[70, 180, 255], [255, 255, 255]]]  # × 2.2 + 70, clipped


def test_quality_bench_finds_cataract_eyes(tmp_path: Path) -> None:
    quality = _module("quality")
    odir = tmp_path / "fundus" / "odir"
    (odir / "fullres" / "cataract").mkdir(parents=True)
    (odir / "fullres" / "cataract" / "2155_right.jpg").write_bytes(b"")
    (odir / "labels.csv").write_text(
        "ID,Left-Diagnostic Keywords,Right-Diagnostic Keywords\n"
        "0,cataract,normal fundus\n"
        "7,moderate non proliferative retinopathy,Cataract，drusen\n",
        encoding="utf-8",
    )
    assert quality.cataract_ids(tmp_path) == {"0_left", "7_right", "2155_right"}
    assert quality.cataract_ids(tmp_path / "absent") == set()


def test_inference_merge_keeps_other_rows_and_their_runs() -> None:
    inference = _module("inference")
    old = {
        "analyzers": [{"analyzer": "a", "v": 1}, {"analyzer": "b", "v": 1}, {"analyzer": "c", "v": 1}],
        "runs": [{"analyzers": ["a", "b"], "matmul_gflops": 10.0}, {"analyzers": ["c"], "matmul_gflops": 20.0}],
        "note": "old",
    }
    new = {"analyzers": [{"analyzer": "c", "v": 2}, {"analyzer": "d", "v": 2}], "runs": [{"analyzers": ["c", "d"]}]}
    merged = inference.merge_results(old, new)
    assert [(r["analyzer"], r["v"]) for r in merged["analyzers"]] == [("a", 1), ("b", 1), ("c", 2), ("d", 2)]
    assert merged["runs"] == [{"analyzers": ["a", "b"], "matmul_gflops": 10.0}, {"analyzers": ["c", "d"]}]
    single = inference.merge_results({"analyzers": [{"analyzer": "a"}], "matmul_gflops": 5.0}, new)
    assert single["runs"][0] == {"analyzers": ["a"], "matmul_gflops": 5.0}


def test_aptos_paired_difference_aligns_images_by_id() -> None:
    """``bench/aptos.py``'s paired Δ: rows in different image orders pair by id; a perfect and a chance ranker of
    referable DR differ by exactly 0.5 AUROC; other images cannot be paired."""
    import numpy as np

    aptos = _module("aptos")
    y = [0, 1, 2, 3, 4, 2, 0, 4]
    ids = [f"img{i}" for i in range(8)]
    perfect = np.eye(5)[y] * 0.9 + 0.02
    flat = np.full((8, 5), 0.2)

    def row(order: list[int], probs: np.ndarray, versus: str | None) -> dict[str, object]:
        oof = {"labels": list("01234"), "y": [y[i] for i in order], "sample_ids": [ids[i] for i in order]}
        return {"versus": versus, "out_of_fold": {**oof, "probs": probs[order].tolist()}}

    results = {"ours": row(list(range(8)), perfect, None), "chance": row([3, 1, 7, 0, 5, 2, 6, 4], flat, "ours")}
    paired = aptos._paired(results)
    assert list(paired) == ["chance"] and paired["chance"]["versus"] == "ours"
    assert paired["chance"]["RDR_auroc_difference"]["value"] == pytest.approx(-0.5)
    assert paired["chance"]["quadratic_kappa_difference"]["value"] == pytest.approx(-1.0)
    results["chance"]["out_of_fold"]["sample_ids"][0] = "other"
    with pytest.raises(SystemExit, match="cannot be paired"):
        aptos._paired(results)


def test_calibration_consistency_skips_without_shared_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cc = _module("calibration_consistency")
    out = tmp_path / "cc.json"
    assert cc.main(["--shared", str(tmp_path / "absent"), "--out", str(out)]) == 0
    assert not out.exists()
    assert "shared/data absent" in caplog.text


def test_calibration_consistency_analyse_on_hand_made_split() -> None:
    from types import SimpleNamespace

    import numpy as np

    from vitalens.training.calibration import expected_calibration_error

    cc = _module("calibration_consistency")
    # 4 patients × 2 labels at saturated forecasts, labels the other way round: ECE 1, a calibrated model's exactly 0
    probs = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = 1 - probs
    card = SimpleNamespace(analyzer="x", calibration=SimpleNamespace(method="platt"), metrics={"ece": 1.0})
    split = {"card": card, "y": y, "probs": probs, "patients": None, "n_bins": 10, "selection": "all"}
    r = cc.analyse("x", {**split, "n_patients": 4, "seconds": 0.0}, resamples=99, seed=0, aim=0.05)
    assert r["ece"]["value"] == expected_calibration_error(probs, y) == 1.0
    assert r["card_ece_abs_diff"] == 0.0 and r["n_decisions"] == 8
    c = r["ece_if_calibrated"]
    assert (c["mean"], c["low"], c["high"], c["p_value"], c["share_above_aim"]) == (0.0, 0.0, 0.0, 0.01, 0.0)
    assert r["reliability"]["band_low"][0] == 0.0 and r["reliability"]["band_high"][9] == 1.0
    assert r["reliability"]["band_low"][1] is None  # empty bin
