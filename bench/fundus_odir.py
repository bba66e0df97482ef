"""fundus.odir on held-out real patients: k-fold macro-AUROC and ODIR score, ours vs the seed recipe, and latency.

Why k-fold: the real sample has 304 patients; one 15 % test split (≈ 46 patients, ≈ 6 positives per label) gives a
macro-AUROC that moves by several points with the split. Every patient is tested exactly once over the folds
(iteratively stratified at patient level), and both recipes see the same folds.

Why a wall-clock budget: this runs on a 2-core CPU. Both recipes get the same minutes per fold (Lightning
``max_time``) and the same epoch cap; the best validation epoch within the budget is tested. The seed recipe is the
EfficientNet-B4-shaped encoder from random init (its ImageNet weights cannot be had offline); ours is the bundled
recipe (EfficientNet-Lite0 with offline ImageNet weights, gradual and partial unfreezing). Images are scaled to
``--image-size`` for both.

Also measured: CPU latency of one analysis (both eyes + age) with the bundled artifact, with and without Grad-CAM.

Usage:
    .venv/bin/python bench/fundus_odir.py [--folds 5] [--budget-minutes 4] [--image-size 160]
    .venv/bin/python bench/fundus_odir.py --skip-cv            # latency only
Writes ``bench/results/fundus_odir.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.fundus_odir")

METHODS = {
    "ours": REPO / "recipes" / "fundus.odir.yaml",
    "seed": REPO / "recipes" / "fundus.odir.seed-b4.yaml",
}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def run_cv(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train and test every method on every fold; returns per-fold and summary figures."""
    from vitalens.training import train

    results: dict[str, Any] = {}
    for method in args.methods:
        results[method] = {"recipe": str(METHODS[method].relative_to(REPO)), "folds": []}
    for fold in range(args.folds):
        for method in args.methods:
            out = work / method / f"fold{fold}"
            overrides = {
                "data.fold": fold,
                "data.n_folds": args.folds,
                "data.num_workers": 0,
                "train.max_time_minutes": args.budget_minutes,
                "train.max_epochs": args.max_epochs,
                "train.progress_bar": False,
                "train.precision": "32-true",
                "task.image_size": args.image_size,
                "seed": args.seed,
            }
            t0 = time.perf_counter()
            train("fundus.odir", data=args.data, out=out, recipe=METHODS[method], overrides=overrides)
            seconds = time.perf_counter() - t0
            report = json.loads((out / "report.json").read_text())
            test = report["splits"]["test"]
            row = {
                "fold": fold,
                "n_test_patients": test["n"],
                "macro_auroc": test["macro_auroc"],
                "odir_score": test["odir_score"]["final"],
                "odir_kappa": test["odir_score"]["kappa"],
                "odir_f1": test["odir_score"]["f1"],
                "odir_auc": test["odir_score"]["auc"],
                "ece": test["ece"],
                "per_label_auroc": {k: v["auroc"] for k, v in test["per_label"].items()},
                "epochs_run": report["training"]["epochs_run"],
                "best_epoch": report["training"]["best_epoch"],
                "seconds": round(seconds, 1),
            }
            results[method]["folds"].append(row)
            print(
                f"fold {fold} {method:5s}: macro-AUROC {row['macro_auroc']:.3f}  ODIR {row['odir_score']:.3f}  "
                f"epochs {row['epochs_run']}  {seconds:.0f}s",
                flush=True,
            )
    for method in args.methods:
        folds = results[method]["folds"]
        summary: dict[str, Any] = {}
        for key in ("macro_auroc", "odir_score", "odir_kappa", "odir_f1", "odir_auc", "ece", "epochs_run"):
            mean, sd = _mean_sd([f[key] for f in folds])
            summary[key] = {"mean": mean, "sd": sd}
        labels = list(folds[0]["per_label_auroc"]) if folds else []
        summary["per_label_auroc"] = {
            label: _mean_sd([f["per_label_auroc"][label] for f in folds])[0] for label in labels
        }
        results[method]["summary"] = summary
    return results


def run_latency(artifact: Path, data: Path, runs: int) -> dict[str, Any]:
    """p50/p95 wall time of one analysis on this CPU, with and without explanations."""
    import torch

    from vitalens.analyzers import create_analyzer
    from vitalens.artifacts import ModelCache
    from vitalens.data.odir import OdirDataset
    from vitalens.domain import StudyInputs
    from vitalens.io.images import read_image

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    dataset = OdirDataset(data)
    analyzer = create_analyzer("fundus.odir", artifact=artifact, cache=ModelCache(budget_bytes=2**31), device="cpu")
    records = dataset.records[: max(runs, 3)]
    out: dict[str, Any] = {"artifact": str(artifact), "threads": torch.get_num_threads()}
    for explain in (False, True):
        times = []
        for i in range(runs + 2):
            rec = records[i % len(records)]
            inputs = StudyInputs(
                fundus_left=read_image(rec.left), fundus_right=read_image(rec.right), age_years=rec.age_years
            )
            t0 = time.perf_counter()
            result = analyzer(inputs, explain=explain)
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= 2:  # the first two warm the model cache and allocator
                times.append(elapsed)
        key = "with_explanations" if explain else "without_explanations"
        out[key] = {
            "runs": len(times),
            "p50_ms": float(np.percentile(times, 50)),
            "p95_ms": float(np.percentile(times, 95)),
            "mean_positive_findings": None if not explain else len(result.positive),
        }
        print(f"latency {key}: p50 {out[key]['p50_ms']:.0f} ms  p95 {out[key]['p95_ms']:.0f} ms", flush=True)
    return out


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'recipe':8s} {'macro-AUROC':>16s} {'ODIR score':>16s} {'kappa':>7s} {'F1':>7s} {'ECE':>7s} {'epochs':>7s}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for method, res in results.items():
        s = res["summary"]
        print(
            f"{method:8s} {s['macro_auroc']['mean']:>9.3f} ± {s['macro_auroc']['sd']:.3f} "
            f"{s['odir_score']['mean']:>9.3f} ± {s['odir_score']['sd']:.3f} {s['odir_kappa']['mean']:>7.3f} "
            f"{s['odir_f1']['mean']:>7.3f} {s['ece']['mean']:>7.3f} {s['epochs_run']['mean']:>7.1f}"
        )
    labels = list(next(iter(results.values()))["summary"]["per_label_auroc"])
    print("\nper-label AUROC (mean over folds)")
    print(f"{'recipe':8s} " + " ".join(f"{label:>6s}" for label in labels))
    for method, res in results.items():
        row = res["summary"]["per_label_auroc"]
        print(f"{method:8s} " + " ".join(f"{row[label]:>6.3f}" for label in labels))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fundus" / "odir")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget-minutes", type=float, default=4.0, help="training wall time per fold and recipe")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--methods", default="ours,seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--artifact", type=Path, default=REPO / "models" / "fundus-odir")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="keep the fold runs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fundus_odir.json")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.data.is_dir():
        print(f"error: ODIR data not found at {args.data} (../shared/data absent?)", file=sys.stderr)
        return 2
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        print(f"error: unknown method(s) {sorted(unknown)}; valid: {sorted(METHODS)}", file=sys.stderr)
        return 2

    payload: dict[str, Any] = {
        "benchmark": "fundus.odir k-fold on the real ODIR-5K sample (304 patients)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "folds": args.folds,
            "budget_minutes_per_fold": args.budget_minutes,
            "max_epochs": args.max_epochs,
            "image_size": args.image_size,
            "seed": args.seed,
        },
        "notice": "Demonstration figures on 304 patients; decision support, not a diagnosis.",
    }
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if not args.skip_cv:
        with tempfile.TemporaryDirectory(prefix="vitalens-bench-") as tmp:
            work = args.work or Path(tmp)
            payload["cv"] = run_cv(args, work)
        print_table(payload["cv"])
    elif "cv" in previous:
        payload["cv"] = previous["cv"]
        payload["settings"] = previous.get("settings", payload["settings"])
    if not args.skip_latency:
        if (args.artifact / "card.json").is_file():
            payload["latency"] = run_latency(args.artifact, args.data, args.latency_runs)
        else:
            print(f"latency skipped: no artifact at {args.artifact}", file=sys.stderr)
    elif "latency" in previous:
        payload["latency"] = previous["latency"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
