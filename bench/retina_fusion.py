"""retina.fusion on real images: fusion vs each modality alone on the same held-out virtual pairs, with calibration.

The encoders are the bundled ``models/fundus-dr`` and ``models/oct-kermany4`` (frozen); each modality is read with
its encoder's own recipe, so the fusion test pairs are made of images neither encoder was fitted on. Pairs are
**virtual** (a fundus photograph of one person with an OCT scan of another, paired by label: normal with normal,
disease with disease). Three heads are trained on the same pairs with the same budget — fusion (both embeddings),
fundus only, OCT only — then temperature-scaled on the validation pairs and scored once on the test pairs: AUROC with
a stratified bootstrap 95 % interval, the paired bootstrap difference fusion − single modality, Brier score and ECE
before and after temperature scaling. Because the two images of a virtual pair are independent draws of one label,
fusion is *expected* to beat either alone here; the size of that gain is not evidence for real paired eyes.

The multiclass head (``--head multiclass`` or ``both``; recipe ``task.head.kind: multiclass``) predicts the fundus's
DR grade 0–4 and the scan's OCT class from the same concatenated embeddings of the same pairs (two softmax groups),
and is scored on the same held-out pairs beside each modality's own analyzer — ``fundus.dr`` on the photograph,
``oct.kermany4`` on the scan, through their cards' output and calibration: accuracy and quadratic kappa (DR grade),
accuracy and macro one-vs-rest AUROC (OCT class), top-label ECE before and after its per-group temperatures, each
with a percentile bootstrap 95 % interval resampling OCT scans (pairs sharing a scan move together), the paired
difference fusion − alone, and a top-label reliability figure (``retina_fusion_multiclass_reliability.png``). What
the other image can add on virtual pairs is only the normal/disease label the pair was aligned by.

``--head binary`` keeps the multiclass rows already in ``--out``; ``--head multiclass`` keeps the binary rows and
checks that its test pairs are the ones the bundled binary model (``models/retina-fusion``, whose run made those rows)
was tested on.

Usage:
    .venv/bin/python bench/retina_fusion.py [--fundus DIR] [--oct DIR] [--models models] [--n-boot 2000]
        [--head both|binary|multiclass]
Writes ``bench/results/retina_fusion.json``. About 10 CPU-minutes per head on 2 cores (embedding the 150 fundus and
218 OCT images through the frozen encoders dominates).
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
GROUPS = {
    "dr_grade": ("DR grade", ("accuracy", "quadratic_kappa")),
    "oct_class": ("OCT class", ("accuracy", "macro_auroc")),
}
WORDS = {"accuracy": "accuracy", "quadratic_kappa": "QWK", "macro_auroc": "macro AUROC"}


def _ci(m: dict[str, Any]) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def _run(args: argparse.Namespace, overrides: dict[str, Any], from_run: Path | None, name: str) -> dict[str, Any]:
    from vitalens.training.engine import train

    if from_run is not None:
        return dict(json.loads((from_run / "report.json").read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)) / name
        train("retina.fusion", data=args.fundus.parent, out=work, overrides=overrides)
        report = dict(json.loads((work / "report.json").read_text()))
        card = json.loads((work / "artifact" / "card.json").read_text())
        report["records"] = card["extra"]["records"]
        return report


def _print_binary(report: dict[str, Any]) -> None:
    comp = report["comparison"]
    pairs = report["training_data"]["splits"]["pairs"] if "training_data" in report else report["pairs"]
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


def _print_multiclass(comp: dict[str, Any], n: int) -> None:
    print(f"\nretina.fusion multiclass head on the same virtual test pairs (n = {n})")
    head = f"{'output':10s} {'model':22s} {'metric':12s} {'value [95% CI]':>24s} {'ECE raw':>8s} {'ECE cal':>8s}"
    print(head + "\n" + "-" * len(head))
    for group, (title, metrics) in GROUPS.items():
        for who in ("fusion", "alone"):
            part = comp[group][who]
            name = "fundus + OCT (fusion)" if who == "fusion" else f"{part['analyzer']} alone"
            for metric in metrics:
                print(
                    f"{title:10s} {name:22s} {WORDS[metric]:12s} {_ci(part[metric]):>24s} "
                    f"{part['top_label_ece_uncalibrated']:>8.3f} {part['top_label_ece']['value']:>8.3f}"
                )
        for metric in metrics:
            d = comp[group]["delta_fusion_minus_alone"][metric]
            print(f"{title}: fusion − alone Δ{WORDS[metric]} {_ci(d)}")


def _reliability_figure(comp: dict[str, Any], path: Path) -> Path:
    from vitalens.training.report import plot_reliability

    curves = {}
    for group, (title, _) in GROUPS.items():
        for who in ("fusion", "alone"):
            part = comp[group][who]
            name = "fusion" if who == "fusion" else f"{part['analyzer']} alone"
            curves[f"{title}, {name} (ECE {part['top_label_ece']['value']:.3f})"] = part["reliability"]
    return plot_reliability(curves, path, title="Top-label reliability, held-out virtual pairs (calibrated)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fundus", type=Path, default=SHARED / "fundus" / "aptos2019")
    parser.add_argument("--oct", type=Path, default=SHARED / "oct")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="keep each run here (WORK/binary, WORK/multiclass)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch CPU threads")
    parser.add_argument(
        "--from-run",
        type=Path,
        default=None,
        help="score an existing run of the same recipe (e.g. runs/retina-fusion of make model-retina-fusion) "
        "instead of training again: the figures are that run's, the bundled model's",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retina_fusion.json")
    parser.add_argument(
        "--head",
        choices=("both", "binary", "multiclass"),
        default="both",
        help="which heads to run; each keeps the other head's rows already in --out",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra recipe override for both heads"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for path in (args.fundus, args.oct, args.models / "fundus-dr", args.models / "oct-kermany4"):
        if not path.exists():
            print(f"error: {path} not found (shared data or bundled encoder missing)", file=sys.stderr)
            return 2
    import torch

    from vitalens.training.metrics import nan_to_none
    from vitalens.training.recipe import parse_overrides

    torch.set_num_threads(args.threads)
    overrides = {
        "seed": args.seed,
        "task.fundus_artifact": str(args.models / "fundus-dr"),
        "task.oct_artifact": str(args.models / "oct-kermany4"),
        "task.fundus_data": str(args.fundus),
        "task.oct_data": str(args.oct),
        "task.n_boot": args.n_boot,
        **parse_overrides(args.set),
    }
    payload: dict[str, Any] = {}
    if args.head == "multiclass":
        if not args.out.is_file():
            print(
                f"error: --head multiclass keeps the binary rows of {args.out}, which does not exist", file=sys.stderr
            )
            return 2
        payload = json.loads(args.out.read_text())
    else:
        report = _run(args, overrides, args.from_run, "binary")
        _print_binary(report)
        kept = json.loads(args.out.read_text()).get("multiclass") if args.out.is_file() else None
        payload = {
            "benchmark": "retina.fusion: fusion vs each modality alone on the same held-out virtual pairs",
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "virtual_pairs": report["virtual_pairs"],
            "encoders": report["encoders"],
            "pairs": report["training_data"]["splits"]["pairs"],
            "comparison": report["comparison"],
            "settings": {
                "seed": args.seed,
                "n_boot": args.n_boot,
                "recipe": "recipes/retina.fusion.yaml",
                "from_run": str(args.from_run) if args.from_run is not None else None,
                "set": args.set,
            },
        }
        if args.head == "binary" and kept is not None:  # the multiclass rows are another run's: keep them
            payload["multiclass"] = kept
    if args.head in ("both", "multiclass"):
        report = _run(args, {**overrides, "task.head.kind": "multiclass"}, None, "multiclass")
        comp = report["comparison_multiclass"]
        n = int(report["training_data"]["splits"]["pairs"]["test"]["pairs"])
        _print_multiclass(comp, n)
        bundled = args.models / "retina-fusion" / "card.json"
        same = None
        if bundled.is_file():
            same = json.loads(bundled.read_text())["extra"].get("records", {}).get("test") == report["records"]["test"]
            print(f"test pairs identical to the bundled binary model's: {same}")
        figure = _reliability_figure(comp, args.out.parent / "retina_fusion_multiclass_reliability.png")
        payload["multiclass"] = {
            "what": "two softmax groups (DR grade of the fundus photograph, OCT class of the scan) on the "
            "concatenated frozen embeddings, vs each modality's own analyzer on the same held-out virtual pairs",
            "n_test_pairs": n,
            "test_pairs_same_as_bundled_binary": same,
            "clusters": "bootstrap resamples OCT scans (pairs sharing a scan move together)",
            "temperatures": report["calibration"]["params"]["group_temperatures"],
            "training": report["training"],
            "comparison": comp,
            "figure": figure.name,
            "settings": {
                "seed": args.seed,
                "n_boot": args.n_boot,
                "recipe": "recipes/retina.fusion.yaml",
                "overrides": ["task.head.kind=multiclass", *args.set],
            },
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(nan_to_none(payload), indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
