"""CPU inference of every analyzer's bundled model: eager vs ONNX Runtime, batch 1 and 16, peak memory, roofline.

Why: the screening service runs on CPU-only boxes; this says what one input costs per analyzer, whether the ONNX
export is worth deploying, and how far each net is from what this CPU can do at all. Per analyzer (each in a fresh
process, so its peak memory is its own):

* latency per input (batch time / batch size), p50 and p95 over ``--repeats`` runs after warm-up, batch 1 and 16,
  eager PyTorch and ONNX Runtime (the artifact's verified ``model.onnx``, else a temporary export; nets with several
  inputs, the bilateral fundus net, run eager only);
* peak resident memory of the process after its runs (``ru_maxrss``);
* roofline: the net's forward FLOPs at batch 1 (``torch.utils.flop_counter``) over this CPU's measured fp32 matmul
  throughput with the same threads (a 1024³ GEMM), i.e. the fastest this net could run here if it were pure GEMM;
  ``efficiency`` = that bound / the measured eager p50 at batch 16.

Run (from the repository root):
    .venv/bin/python bench/inference.py [--threads 1] [--analyzers fundus.dr oct.kermany4 ...]

Prints a table and writes ``bench/results/inference.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
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


def _inputs(card: Any, batch: int) -> tuple[Any, ...]:
    """Random inputs of the net's forward for ``batch`` items (the bilateral fundus net takes left, right, age; a
    fusion head takes one embedding per encoder, so its row is the head alone: its encoders have their own rows)."""
    import torch

    from vitalens.artifacts.onnx import example_input_shape

    gen = torch.Generator().manual_seed(batch)
    names = card.input.extra.get("inputs") or []
    embeddings = card.input.extra.get("embeddings")
    if isinstance(embeddings, dict) and embeddings:  # a head on frozen encoders' embeddings (retina.fusion)
        return tuple(torch.randn(batch, int(d), generator=gen) for d in embeddings.values())
    if len([n for n in names if str(n).startswith("fundus_")]) == 2:
        h, w = card.input.size
        return (
            torch.randn(batch, 3, h, w, generator=gen),
            torch.randn(batch, 3, h, w, generator=gen),
            torch.zeros(batch, 1),
        )
    return (torch.randn(example_input_shape(card, batch), generator=gen),)


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
    x1 = _inputs(card, 1)
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
    tmp = None
    if len(x1) == 1:
        import onnxruntime as ort

        onnx_file = artifact / ONNX_FILE
        if not onnx_file.is_file():
            tmp = Path(tempfile.mkdtemp())
            shutil.copytree(artifact, tmp / "a")
            onnx_file = export_onnx(tmp / "a")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        in_name = session.get_inputs()[0].name

        def ort_fn(x: tuple[Any, ...]) -> Any:
            arr = x[0].numpy()
            return lambda: session.run(None, {in_name: arr})

        engines["onnxruntime"] = ort_fn
    rows = []
    for engine, make in engines.items():
        for batch in BATCHES:
            ms = _time(make(_inputs(card, batch)), batch, repeats if batch == 1 else max(5, repeats // 3))
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
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--analyzers", nargs="*", default=None, help="default: every registered analyzer")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: measure one analyzer
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "inference.json")
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
        f"{'analyzer':<14}{'engine':<13}{'batch':>6}{'p50 ms':>9}{'p95 ms':>9}{'GFLOP':>8}{'bound ms':>10}{'RSS MB':>8}"
    )
    lines = [f"fp32 GEMM throughput with {args.threads} thread(s): {peak:.1f} GFLOP/s", header, "-" * len(header)]
    for res in results:
        if "rows" not in res:
            lines.append(f"{res['analyzer']:<14}{res.get('skipped') or res.get('error')}")
            continue
        for r in res["rows"]:
            lines.append(
                f"{res['analyzer']:<14}{r['engine']:<13}{r['batch']:>6}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
                f"{res['gflops_per_input']:>8.3f}{res['roofline']['bound_ms']:>10.2f}{res['peak_rss_mb']:>8.0f}"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    import onnxruntime as ort
    import torch

    payload = {
        "bench": "inference",
        "threads": args.threads,
        "matmul_gflops": peak,
        "analyzers": results,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "note": "latency per input (batch time / batch); roofline bound = forward FLOPs / measured GEMM throughput",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
