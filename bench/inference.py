"""ECG inference speed on CPU: PyTorch eager vs ONNX Runtime, batch 1 and 64, latency per ECG and peak memory.

Why: the screening service runs on CPU-only boxes; this says what one ECG costs and whether the ONNX export is
worth deploying. Latency is per ECG (batch time / batch size), p50 and p95 over ``--repeats`` runs after warm-up;
peak memory is the process's maximum resident set size after each engine's runs (``ru_maxrss``, cumulative).

Run (from the repository root):
    .venv/bin/python bench/inference.py [--artifact models/ecg-ptbxl] [--threads 1]

Prints a table and writes ``bench/results/inference.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.artifacts import ONNX_FILE, load_model
from vitalens.artifacts.onnx import example_input_shape, export_onnx

REPO = Path(__file__).resolve().parents[1]


logger = logging.getLogger("bench.inference")


def _time(fn: Any, x: np.ndarray, repeats: int) -> list[float]:
    for _ in range(3):
        fn(x)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t0) / x.shape[0] * 1000.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=REPO / "models" / "ecg-ptbxl")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "inference.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    net, card = load_model(args.artifact)
    onnx_file = args.artifact / ONNX_FILE
    tmpdir = None
    if not onnx_file.is_file():
        tmpdir = Path(tempfile.mkdtemp())
        shutil.copytree(args.artifact, tmpdir / "a")
        onnx_file = export_onnx(tmpdir / "a")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def eager(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()

    def onnx(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    rows = []
    for engine, fn in (("eager", eager), ("onnx", onnx)):
        for batch in (1, 64):
            x = np.random.default_rng(0).standard_normal(example_input_shape(card, batch)).astype(np.float32)
            ms = _time(fn, x, args.repeats if batch == 1 else max(5, args.repeats // 3))
            rows.append(
                {
                    "engine": engine,
                    "batch": batch,
                    "p50_ms_per_ecg": float(np.percentile(ms, 50)),
                    "p95_ms_per_ecg": float(np.percentile(ms, 95)),
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                }
            )
    header = f"{'engine':<8}{'batch':>6}{'p50 ms/ECG':>12}{'p95 ms/ECG':>12}{'peak RSS MB':>13}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['engine']:<8}{r['batch']:>6}{r['p50_ms_per_ecg']:>12.2f}{r['p95_ms_per_ecg']:>12.2f}"
            f"{r['peak_rss_mb']:>13.0f}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    result = {
        "bench": "inference",
        "model": card.name,
        "input_shape": list(example_input_shape(card, 1)),
        "threads": args.threads,
        "rows": rows,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
