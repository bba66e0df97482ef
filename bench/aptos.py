"""fundus.dr on the 150 real APTOS 2019 images: 5-fold CV, quadratic kappa and referable-DR AUROC, ours vs the design.

Why k-fold: 150 images (30 per grade) leave 22 test images in one 15 % split. Five folds (stratified by grade; APTOS
names no patient, so image = patient) give every image one out-of-fold prediction, scored through the artifact as
the analyzer scores it (the card's preprocessing with the Ben-Graham filter, CORN or softmax link, temperature).
Both recipes run on the same folds with the same epoch cap and wall-clock budget per fold: ours (EfficientNet-Lite0
from the offline ImageNet weights, CORN ordinal head) and the design's (EfficientNet-B0, cross-entropy; random init,
its ImageNet weights cannot be had offline). 95 % intervals: percentile bootstrap over the 150 images.

Levers (:data:`METHODS`), each ours with one change, same folds and budget: the encoder started from the bundled
in-domain ``models/fundus-odir`` (same Lite0 backbone and input normalisation) instead of ImageNet, Lite1, and
cross-entropy instead of CORN; ``--flips`` adds a row per method scored with test-time flips from the same fold
models. Each fold's early stopping, thresholds and temperature use its inner validation split only; the outer
folds are only scored.

Usage:
    .venv/bin/python bench/aptos.py [--folds 5] [--image-size 160] [--max-epochs 10] [--budget-minutes 6] [--flips]
        [--methods ours design-b0 ...] [--out FILE]
    .venv/bin/python bench/aptos.py --merge part1.json part2.json --out bench/results/aptos.json
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

OURS = REPO / "recipes" / "fundus.dr.yaml"
#: name → (recipe, recipe overrides, what it measures). The levers are ours with one change each.
METHODS: dict[str, tuple[Path, dict[str, Any], str]] = {
    "ours": (OURS, {}, "the recipe as committed"),
    "design-b0": (REPO / "recipes" / "fundus.dr.design-b0.yaml", {}, "the design's recipe (EfficientNet-B0, CE)"),
    "ours-odir-init": (
        OURS,
        {"net.init_encoder": str(REPO / "models" / "fundus-odir")},
        "encoder initialised from the bundled in-domain models/fundus-odir (Lite0) instead of ImageNet",
    ),
    "ours-lite1": (OURS, {"net.name": "image_classifier_lite1"}, "EfficientNet-Lite1 offline ImageNet weights"),
    "ours-ce": (OURS, {"loss.name": "ce"}, "softmax cross-entropy instead of the CORN ordinal head"),
}


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
    parser.add_argument("--flips", action="store_true", help="also score each fold with test-time flips")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "aptos.json")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="combine the results of these JSON files (runs of other --methods with the same protocol) into --out "
        "and print the table; trains nothing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.merge:
        return _merge(args.merge, args.out)
    import torch

    from vitalens.training.crossval import cross_validate, summarise

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-aptos-") as tmp:
        for method in args.methods:
            t0 = time.perf_counter()
            recipe, changes, what = METHODS[method]
            oof = cross_validate(
                "fundus.dr",
                data=args.data,
                recipe=recipe,
                folds=args.folds,
                work=Path(tmp) / method,
                overrides={
                    **changes,
                    "task.image_size": args.image_size,
                    "train.max_epochs": args.max_epochs,
                    "train.max_time_minutes": args.budget_minutes,
                    "train.precision": "32-true",
                    "seed": args.seed,
                },
                flips=args.flips,
            )
            minutes = round((time.perf_counter() - t0) / 60, 1)
            rows = {method: oof.probs}
            if oof.probs_flips is not None:
                rows[f"{method}+flips"] = oof.probs_flips
            for name, probs in rows.items():
                summary = summarise(probs, oof.y, labels=oof.labels, derived=oof.derived, ordinal=True, seed=args.seed)
                results[name] = {
                    "recipe": str(recipe.relative_to(REPO)),
                    "overrides": {
                        k: str(Path(v).relative_to(REPO)) if k == "net.init_encoder" else v for k, v in changes.items()
                    },
                    "what": what + (" + test-time flips (mean of 4)" if name.endswith("+flips") else ""),
                    "summary": summary,
                    "folds": oof.folds,
                    "minutes": minutes,
                    "out_of_fold": {**oof.to_dict(), "probs": probs.round(6).tolist()},
                }
                results[name]["out_of_fold"].pop("probs_flips", None)
                print(
                    f"{name}: QWK {_fmt(summary['quadratic_kappa'])}  RDR AUROC {_fmt(summary['RDR_auroc'])}",
                    flush=True,
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
    _table(results)
    return 0


def _table(results: dict[str, Any]) -> None:
    print(f"\n{'method':22s} {'n':>4s}  {'QWK [95% CI]':24s} {'RDR AUROC [95% CI]':24s} {'accuracy [95% CI]':24s}")
    for method, r in results.items():
        s = r["summary"]
        print(
            f"{method:22s} {s['n']:4d}  {_fmt(s['quadratic_kappa']):24s} {_fmt(s['RDR_auroc']):24s} "
            f"{_fmt(s['accuracy']):24s}"
        )


def _merge(parts: list[Path], out: Path) -> int:
    """One JSON from runs of different methods; their protocols must agree (same folds, size, epochs, budget)."""
    payloads = [json.loads(p.read_text(encoding="utf-8")) for p in parts]
    protocols = {p["protocol"] for p in payloads}
    if len(protocols) != 1:
        raise SystemExit(f"cannot merge runs of different protocols: {sorted(protocols)}")
    merged = {**payloads[0], "results": {k: v for p in payloads for k, v in p["results"].items()}}
    merged["machine"]["runs"] = len(payloads)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    _table(merged["results"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
