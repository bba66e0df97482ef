"""fundus.dr on RetinaMNIST (MedMNIST v2, 28 px, official 1080/120/400 splits) beside the published MedMNIST v2 table.

Why: MedMNIST's table is the one public yardstick computed on exactly these splits; its best 28 px RetinaMNIST
entries are AUC 0.750 (ResNet-18 at 28 px) and ACC 0.531 (ResNet-18 at 28 px / auto-sklearn), Yang et al., Sci. Data
10:41 (2023), Table 4. AUC is MedMNIST's multi-class AUC (mean one-vs-rest AUROC), ACC the argmax accuracy, both on
the 400 test images; thresholds, temperature and the best epoch come from the 120 validation images only. Beside
ours (Lite0 from offline ImageNet weights, 28 px upsampled) the design's EfficientNet-B0 recipe runs with the same
epoch cap, image size and budget. 95 % intervals: percentile bootstrap over the 400 test images.

Usage:
    .venv/bin/python bench/medmnist.py [--image-size 112] [--max-epochs 15] [--budget-minutes 20]
Writes ``bench/results/medmnist.json``. Aim: AUC ≥ 0.80, ACC ≥ 0.58.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
logger = logging.getLogger("bench.medmnist")

METHODS = {
    "ours": REPO / "recipes" / "fundus.dr.retinamnist.yaml",
    "design-b0": REPO / "recipes" / "fundus.dr.design-b0.yaml",
}
PUBLISHED = {"best_28px_auc": 0.750, "best_28px_acc": 0.531, "source": "Yang et al., Sci. Data 10:41 (2023), Table 4"}


def _fmt(ci: dict[str, Any]) -> str:
    return f"{ci['value']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("VITALENS_SHARED_DATA", SHARED)) / "medmnist" / "retinamnist.npz"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--budget-minutes", type=float, default=20.0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "medmnist.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from vitalens.training import train
    from vitalens.training.crossval import predict_split, summarise

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-medmnist-") as tmp:
        for method in args.methods:
            t0 = time.perf_counter()
            overrides = {
                "task.image_size": args.image_size,
                "task.splits": "official",
                "task.crop_border": False,
                "task.ben_graham": False,
                "train.max_epochs": args.max_epochs,
                "train.max_time_minutes": args.budget_minutes,
                "train.progress_bar": False,
                "train.precision": "32-true",
                "seed": args.seed,
            }
            artifact = train(
                "fundus.dr", data=args.data, out=Path(tmp) / method, recipe=METHODS[method], overrides=overrides
            )
            probs, y, _ = predict_split(artifact, args.data, "test")
            summary = summarise(
                probs, y, labels=[str(g) for g in range(5)], derived={"RDR": ["2", "3", "4"]}, ordinal=True
            )
            report = json.loads((Path(tmp) / method / "report.json").read_text())
            results[method] = {
                "recipe": str(METHODS[method].relative_to(REPO)),
                "summary": summary,
                "epochs_run": report["training"]["epochs_run"],
                "best_epoch": report["training"]["best_epoch"],
                "minutes": round((time.perf_counter() - t0) / 60, 1),
            }
            print(f"{method}: AUC {_fmt(summary['macro_auroc'])}  ACC {_fmt(summary['accuracy'])}", flush=True)
    payload = {
        "bench": "medmnist",
        "data": str(args.data),
        "protocol": f"RetinaMNIST 28 px official splits (train 1080 / val 120 / test 400), upsampled to "
        f"{args.image_size} px; ≤ {args.max_epochs} epochs and ≤ {args.budget_minutes} min per method",
        "published": PUBLISHED,
        "aim": {"auc": 0.80, "acc": 0.58},
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"\n{'method':22s} {'n':>4s}  {'AUC [95% CI]':24s} {'ACC [95% CI]':24s} {'QWK':>6s}")
    auc, acc = PUBLISHED["best_28px_auc"], PUBLISHED["best_28px_acc"]
    print(f"{'MedMNIST v2 best 28px':22s} {400:4d}  {auc:<24.3f} {acc:<24.3f}")
    for method, r in results.items():
        s = r["summary"]
        print(
            f"{method:22s} {s['n']:4d}  {_fmt(s['macro_auroc']):24s} {_fmt(s['accuracy']):24s} "
            f"{s['quadratic_kappa']['value']:6.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
