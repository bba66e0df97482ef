"""fundus.dr on the 150 real APTOS 2019 images: 5-fold CV, quadratic kappa and referable-DR AUROC, ours vs the design.

Why k-fold: 150 images (30 per grade) leave 22 test images in one 15 % split. Five folds (stratified by grade; APTOS
names no patient, so image = patient) give every image one out-of-fold prediction, scored through the artifact as
the analyzer scores it (the card's preprocessing with the Ben-Graham filter, CORN or softmax link, temperature).
Both recipes run on the same folds with the same epoch cap and wall-clock budget per fold: ours (EfficientNet-Lite0
from the offline ImageNet weights, CORN ordinal head) and the design's (EfficientNet-B0, cross-entropy; random init,
its ImageNet weights cannot be had offline). 95 % intervals: percentile bootstrap over the 150 images.

Usage:
    .venv/bin/python bench/aptos.py [--folds 5] [--image-size 160] [--max-epochs 10] [--budget-minutes 6]
Writes ``bench/results/aptos.json``. Aim: referable-DR AUROC ≥ 0.90.
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
logger = logging.getLogger("bench.aptos")

METHODS = {"ours": REPO / "recipes" / "fundus.dr.yaml", "design-b0": REPO / "recipes" / "fundus.dr.design-b0.yaml"}


def _fmt(ci: dict[str, Any]) -> str:
    return f"{ci['value']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("VITALENS_SHARED_DATA", SHARED)) / "fundus" / "aptos2019"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--budget-minutes", type=float, default=6.0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "aptos.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from vitalens.training.crossval import cross_validate, summarise

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-aptos-") as tmp:
        for method in args.methods:
            t0 = time.perf_counter()
            oof = cross_validate(
                "fundus.dr",
                data=args.data,
                recipe=METHODS[method],
                folds=args.folds,
                work=Path(tmp) / method,
                overrides={
                    "task.image_size": args.image_size,
                    "train.max_epochs": args.max_epochs,
                    "train.max_time_minutes": args.budget_minutes,
                    "train.precision": "32-true",
                    "seed": args.seed,
                },
            )
            summary = summarise(oof.probs, oof.y, labels=oof.labels, derived=oof.derived, ordinal=True, seed=args.seed)
            results[method] = {
                "recipe": str(METHODS[method].relative_to(REPO)),
                "summary": summary,
                "folds": oof.folds,
                "minutes": round((time.perf_counter() - t0) / 60, 1),
                "out_of_fold": oof.to_dict(),
            }
            print(
                f"{method}: QWK {_fmt(summary['quadratic_kappa'])}  RDR AUROC {_fmt(summary['RDR_auroc'])}", flush=True
            )
    payload = {
        "bench": "aptos",
        "data": str(args.data),
        "protocol": f"{args.folds}-fold CV (grade-stratified; image = patient), out-of-fold predictions pooled; "
        f"{args.image_size} px, ≤ {args.max_epochs} epochs and ≤ {args.budget_minutes} min per fold for every method",
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "aim": {"RDR_auroc": 0.90},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"\n{'method':10s} {'n':>4s}  {'QWK [95% CI]':24s} {'RDR AUROC [95% CI]':24s} {'accuracy [95% CI]':24s}")
    for method, r in results.items():
        s = r["summary"]
        print(
            f"{method:10s} {s['n']:4d}  {_fmt(s['quadratic_kappa']):24s} {_fmt(s['RDR_auroc']):24s} "
            f"{_fmt(s['accuracy']):24s}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
