"""Batch screening throughput on this CPU: `vitalens batch` on Ray Data vs the bare forward passes of the same net.

Why: a screening programme sizes its hardware by cases per second. Three numbers on the same synthetic archive
(an ODIR-layout twin: two fundus photographs + age per case), same model (the bundled ``fundus-odir``), same torch
threads per process:

* ``forward``: the net's forward pass alone on already-preprocessed tensors (batch 1) — the ceiling;
* ``one-by-one``: the single-analysis path in one process (decode both JPEGs, preprocess, forward, calibrate,
  proxies; no explanations);
* ``batch``: ``run_batch`` with ``--workers`` Ray replicas, end to end from the files on disk (process start-up of
  the replicas included, as a user pays it).

Run (from the repository root):
    .venv/bin/python bench/batch.py [--cases 48] [--workers 2] [--image-size 512]

Prints a table and writes ``bench/results/batch.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("bench.batch")


def _archive(root: Path, n: int, size: int) -> Path:
    import pandas as pd

    from vitalens.synth.odir import write_odir_synth

    write_odir_synth(root, n_patients=n, image_size=size, seed=11)
    sheet = pd.read_csv(root / "labels.csv")
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "fundus_left", "fundus_right", "age"])
        for row in sheet.to_dict("records"):
            writer.writerow(
                [row["ID"], f"images/{row['Left-Fundus']}", f"images/{row['Right-Fundus']}", row["Patient Age"]]
            )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "batch.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from vitalens.analyzers import create_analyzer
    from vitalens.batch import analyse_case, case_inputs, cases_from_manifest, run_batch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads": args.threads,
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "cases": args.cases,
        "image_size": args.image_size,
        "workers": args.workers,
        "model": "models/fundus-odir",
    }
    with tempfile.TemporaryDirectory(prefix="vitalens-bench-batch-") as tmp:
        manifest = _archive(Path(tmp) / "odir", args.cases, args.image_size)
        cases = cases_from_manifest(manifest, "fundus.odir")
        analyzer = create_analyzer("fundus.odir")

        # Bare forward passes on preprocessed tensors (the analyzer's own preprocessing, done once up front).
        tensors = [analyzer._tensors(case_inputs(c, analyzer))[:3] for c in cases]
        net = analyzer.model()
        with torch.inference_mode():
            net(*tensors[0])
            t0 = time.perf_counter()
            for left, right, age in tensors:
                net(left, right, age)
            forward_s = time.perf_counter() - t0

        analyse_case(cases[0], analyzer)
        t0 = time.perf_counter()
        for case in cases:
            analyse_case(case, analyzer)
        one_by_one_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        summary = run_batch(
            "fundus.odir",
            cases,
            Path(tmp) / "results.parquet",
            chunk_size=16,
            concurrency=args.workers,
            torch_threads=args.threads,
        )
        batch_s = time.perf_counter() - t0
        assert summary.failed == 0 and summary.out, summary

    rows = [
        ("forward (net only, batch 1)", forward_s),
        ("one-by-one analysis path, 1 process", one_by_one_s),
        (f"vitalens batch, Ray Data, {args.workers} workers (incl. start-up)", batch_s),
    ]
    results["rows"] = [
        {"path": name, "seconds": round(sec, 3), "cases_per_s": round(args.cases / sec, 2)} for name, sec in rows
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'path':<{width}}  {'seconds':>8}  {'cases/s':>8}")
    for name, sec in rows:
        print(f"{name:<{width}}  {sec:8.2f}  {args.cases / sec:8.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
