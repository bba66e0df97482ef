"""CPU inference of every analyzer's bundled model: eager vs ONNX Runtime, batch 1 and 16, peak memory, roofline.

Why: the screening service runs on CPU-only boxes; this says what one input costs per analyzer, whether the ONNX
export is worth deploying, and how far each net is from what this CPU can do at all. Per analyzer (each in a fresh
process, so its peak memory is its own):

* latency per input (batch time / batch size), p50 and p95 over ``--repeats`` runs after warm-up, batch 1 and 16,
  eager PyTorch and ONNX Runtime (the artifact's verified ``model.onnx``, else a temporary export). The inputs are
  the net's ONNX signature (:func:`vitalens.artifacts.onnx.example_inputs`): both eyes and the age for the bilateral
  fundus net, one embedding per encoder for a fusion head, one image at the reference field-of-view width
  (540 × 540 px) for the any-size vessel U-Net (whose analyzer runs it twice per eye: image and mirror);
* peak resident memory of the process after its runs (``ru_maxrss``);
* roofline: the net's forward FLOPs at batch 1 (``torch.utils.flop_counter``) over this CPU's measured fp32 matmul
  throughput with the same threads (a 1024³ GEMM), i.e. the fastest this net could run here if it were pure GEMM;
  ``efficiency`` = that bound / the measured eager p50 at batch 16.

Run (from the repository root):
    .venv/bin/python bench/inference.py [--threads 1] [--analyzers fundus.dr oct.kermany4 ...] [--merge]

Prints a table and writes ``bench/results/inference.json``; ``--merge`` replaces only the analyzers measured now in
an existing JSON (the other rows, and the runs that measured them, are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BATCHES = (1, 16)

logger = logging.getLogger("bench.inference")


def _time(fn: Any, batch: int, repeats: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) / batch * 1000.0)
    return out


def matmul_gflops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    """Measured fp32 GEMM throughput of this CPU with ``threads`` threads, GFLOP/s (best of ``repeats``)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _inputs(card: Any, net: Any, batch: int) -> tuple[Any, ...]:
    """Seeded random inputs of the net's forward for ``batch`` items, in order (the net's ONNX signature; a fusion
    head takes one embedding per encoder, so its row is the head alone: its encoders have their own rows)."""
    import torch

    from vitalens.artifacts.onnx import example_inputs

    gen = torch.Generator().manual_seed(batch)
    return tuple(torch.randn(shape, generator=gen) for shape in example_inputs(card, batch, net).values())


def measure_one(name: str, threads: int, repeats: int) -> dict[str, Any]:
    """Every figure of one analyzer (run in its own process)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vitalens.analyzers import create_analyzer
    from vitalens.artifacts import ONNX_FILE, load_model
    from vitalens.artifacts.onnx import export_onnx

    torch.set_num_threads(threads)
    analyzer = create_analyzer(name)
    state = analyzer.availability()
    if not state.ready:
        return {"analyzer": name, "skipped": state.reason}
    if analyzer.artifact is None:
        return {"analyzer": name, "skipped": "no model (signal processing only)"}
    artifact = Path(analyzer.artifact)
    net, card = load_model(artifact, device="cpu")
    net.eval()
    x1 = _inputs(card, net, 1)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net(*x1)
    flops = int(counter.get_total_flops())
    engines: dict[str, Any] = {}

    def eager_fn(x: tuple[Any, ...]) -> Any:
        def run() -> Any:
            with torch.inference_mode():
                return net(*x)

        return run

    engines["eager"] = eager_fn
    import onnxruntime as ort

    tmp = None
    onnx_file = artifact / ONNX_FILE
    bundled = onnx_file.is_file()
    if not bundled:
        tmp = Path(tempfile.mkdtemp())
        shutil.copytree(artifact, tmp / "a")
        onnx_file = export_onnx(tmp / "a")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in session.get_inputs()]

    def ort_fn(x: tuple[Any, ...]) -> Any:
        feed = {name: t.numpy() for name, t in zip(in_names, x, strict=True)}
        return lambda: session.run(None, feed)

    engines["onnxruntime"] = ort_fn
    rows = []
    for engine, make in engines.items():
        for batch in BATCHES:
            ms = _time(make(_inputs(card, net, batch)), batch, repeats if batch == 1 else max(5, repeats // 3))
            rows.append(
                {
                    "engine": engine,
                    "batch": batch,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p95_ms": float(np.percentile(ms, 95)),
                }
            )
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "analyzer": name,
        "model": card.name,
        "input_shape": [list(t.shape) for t in x1],
        "gflops_per_input": flops / 1e9,
        "rows": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "onnx": "onnxruntime" in engines,
        "onnx_bundled": bundled,
        "onnx_inputs": list(in_names),
    }


NOTE = (
    "latency per input (batch time / batch); roofline bound = forward FLOPs / measured GEMM throughput of the run "
    "that measured the row (runs[].matmul_gflops; the shared machine's throughput varies with its load)"
)


def merge_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the analyzers of ``new`` replaced (or added) and ``new``'s run recorded; the others kept.

    Why: a whole-bench run takes long on the shared CPU; re-measuring some analyzers must not drop the others'
    rows or the record of which run (and GEMM throughput) measured them.
    """
    measured = {r["analyzer"] for r in new["analyzers"]}
    kept = [r for r in old.get("analyzers", []) if r["analyzer"] not in measured]
    order = [r["analyzer"] for r in old.get("analyzers", [])]
    rows = sorted(
        kept + new["analyzers"],
        key=lambda r: order.index(r["analyzer"]) if r["analyzer"] in order else len(order),
    )
    runs = [
        {**run, "analyzers": [a for a in run.get("analyzers", []) if a not in measured]} for run in old.get("runs", [])
    ]
    if not old.get("runs") and kept:  # a single-run file: its rows were measured by its own run
        runs = [{"analyzers": [r["analyzer"] for r in kept], "matmul_gflops": old.get("matmul_gflops")}]
    runs = [run for run in runs if run["analyzers"]] + new["runs"]
    return {**old, **{k: v for k, v in new.items() if k not in ("analyzers", "runs")}, "analyzers": rows, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--analyzers", nargs="*", default=None, help="default: every registered analyzer")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: measure one analyzer
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "inference.json")
    parser.add_argument("--note", default="", help="run conditions recorded with this run (e.g. the machine's load)")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other analyzers' rows of an existing --out (replace these)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.one:
        sys.stdout.write(json.dumps(measure_one(args.one, args.threads, args.repeats)) + "\n")
        return 0
    from vitalens.analyzers import list_analyzers

    names = args.analyzers or list_analyzers()
    peak = matmul_gflops(args.threads)
    results = []
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--threads", str(args.threads), "--repeats", str(args.repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            results.append({"analyzer": name, "error": done.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        if "rows" in row:
            bound_ms = row["gflops_per_input"] / peak * 1000.0
            eager16 = next(r["p50_ms"] for r in row["rows"] if r["engine"] == "eager" and r["batch"] == BATCHES[-1])
            row["roofline"] = {"bound_ms": bound_ms, "efficiency_eager_b16": bound_ms / eager16}
        results.append(row)
    header = (
        f"{'analyzer':<16}{'engine':<13}{'batch':>6}{'p50 ms':>9}{'p95 ms':>9}{'GFLOP':>8}{'bound ms':>10}{'RSS MB':>8}"
    )
    lines = [f"fp32 GEMM throughput with {args.threads} thread(s): {peak:.1f} GFLOP/s", header, "-" * len(header)]
    for res in results:
        if "rows" not in res:
            lines.append(f"{res['analyzer']:<16}{res.get('skipped') or res.get('error')}")
            continue
        for r in res["rows"]:
            lines.append(
                f"{res['analyzer']:<16}{r['engine']:<13}{r['batch']:>6}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
                f"{res['gflops_per_input']:>8.3f}{res['roofline']['bound_ms']:>10.2f}{res['peak_rss_mb']:>8.0f}"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    import onnxruntime as ort
    import torch

    run = {
        "analyzers": [r["analyzer"] for r in results],
        "matmul_gflops": peak,
        "repeats": args.repeats,
        "load_avg_1min": os.getloadavg()[0],
        **({"note": args.note} if args.note else {}),
    }
    payload: dict[str, Any] = {
        "bench": "inference",
        "threads": args.threads,
        "matmul_gflops": peak,
        "repeats": args.repeats,
        "analyzers": results,
        "runs": [run],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "note": NOTE,
    }
    if args.merge and args.out.is_file():
        payload = merge_results(json.loads(args.out.read_text(encoding="utf-8")), payload)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
