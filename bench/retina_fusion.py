"""retina.fusion on real images: fusion vs each modality alone on the same held-out virtual pairs, with calibration.

The encoders are the bundled ``models/fundus-dr`` and ``models/oct-kermany4`` (frozen); each modality is read with
its encoder's own recipe, so the fusion test pairs are made of images neither encoder was fitted on. Pairs are
**virtual** (a fundus photograph of one person with an OCT scan of another, paired by label: normal with normal,
disease with disease). Three heads are trained on the same pairs with the same budget — fusion (both embeddings),
fundus only, OCT only — then temperature-scaled on the validation pairs and scored once on the test pairs: AUROC with
a stratified bootstrap 95 % interval, the paired bootstrap difference fusion − single modality, Brier score and ECE
before and after temperature scaling. Because the two images of a virtual pair are independent draws of one label,
fusion is *expected* to beat either alone here; the size of that gain is not evidence for real paired eyes.

Usage:
    .venv/bin/python bench/retina_fusion.py [--fundus DIR] [--oct DIR] [--models models] [--n-boot 2000]
Writes ``bench/results/retina_fusion.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VITALENS_SHARED_DATA", REPO.parent / "shared" / "data"))
logger = logging.getLogger("bench.retina_fusion")

NAMES = {"fusion": "fundus + OCT (fusion)", "fundus_only": "fundus only", "oct_only": "OCT only"}


def _ci(m: dict[str, Any]) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fundus", type=Path, default=SHARED / "fundus" / "aptos2019")
    parser.add_argument("--oct", type=Path, default=SHARED / "oct")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--from-run",
        type=Path,
        default=None,
        help="score an existing run of the same recipe (e.g. runs/retina-fusion of make model-retina-fusion) "
        "instead of training again: the figures are that run's, the bundled model's",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retina_fusion.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for path in (args.fundus, args.oct, args.models / "fundus-dr", args.models / "oct-kermany4"):
        if not path.exists():
            print(f"error: {path} not found (shared data or bundled encoder missing)", file=sys.stderr)
            return 2
    import torch

    from vitalens.training.engine import train
    from vitalens.training.metrics import nan_to_none

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    overrides = {
        "seed": args.seed,
        "task.fundus_artifact": str(args.models / "fundus-dr"),
        "task.oct_artifact": str(args.models / "oct-kermany4"),
        "task.fundus_data": str(args.fundus),
        "task.oct_data": str(args.oct),
        "task.n_boot": args.n_boot,
    }
    if args.from_run is not None:
        report = json.loads((args.from_run / "report.json").read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            train("retina.fusion", data=args.fundus.parent, out=work, overrides=overrides)
            report = json.loads((work / "report.json").read_text())
    comp = report["comparison"]
    pairs = report["training_data"]["splits"]["pairs"]
    print(
        f"\nretina.fusion on virtual pairs — test: {pairs['test']['pairs']} pairs "
        f"({pairs['test']['disease_pairs']} disease)"
    )
    head = f"{'model':24s} {'test AUROC [95% CI]':>24s} {'Brier':>7s} {'ECE raw':>8s} {'ECE cal':>8s} {'T':>6s}"
    print(head + "\n" + "-" * len(head))
    for key, name in NAMES.items():
        c = comp[key]
        cal = c["calibration_test"]
        print(
            f"{name:24s} {_ci(c['test_auroc']):>24s} {cal['brier']:>7.3f} {cal['ece_uncalibrated']:>8.3f} "
            f"{cal['ece']:>8.3f} {c['temperature']:>6.2f}"
        )
    for single in ("fundus_only", "oct_only"):
        d = comp["fusion"][f"delta_auroc_vs_{single}"]
        print(f"fusion − {NAMES[single]}: ΔAUROC {_ci(d)} (fusion better in {d['p_a_better']:.0%} of replicates)")
    payload = {
        "benchmark": "retina.fusion: fusion vs each modality alone on the same held-out virtual pairs",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "virtual_pairs": report["virtual_pairs"],
        "encoders": report["encoders"],
        "pairs": pairs,
        "comparison": comp,
        "settings": {
            "seed": args.seed,
            "n_boot": args.n_boot,
            "recipe": "recipes/retina.fusion.yaml",
            "from_run": str(args.from_run) if args.from_run is not None else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(nan_to_none(payload), indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
