"""fundus.dr on the 150 real APTOS 2019 images: 5-fold CV, quadratic kappa and referable-DR AUROC, ours vs the design.

Why k-fold: 150 images (30 per grade) leave 22 test images in one 15 % split. Five folds (stratified by grade; APTOS
names no patient, so image = patient) give every image one out-of-fold prediction, scored through the artifact as
the analyzer scores it (the card's preprocessing with the Ben-Graham filter, CORN or softmax link, temperature).
Both recipes run on the same folds with the same epoch cap and wall-clock budget per fold: ours (EfficientNet-Lite1
from the offline ImageNet weights, CORN ordinal head; Lite0 before #13) and the design's (EfficientNet-B0,
cross-entropy; random init, its ImageNet weights cannot be had offline). 95 % intervals: percentile bootstrap over
the 150 images.

Levers (:data:`METHODS`), each one change against the row named in its ``versus``, same folds and budget: Lite0
and Lite2 instead of Lite1, early stopping on the validation loss, and on the Lite0 base the encoder started from
the bundled in-domain ``models/fundus-odir`` (a Lite0, same input normalisation) instead of ImageNet, cross-entropy
instead of CORN and the validation loss; ``--flips`` adds a row per method scored with test-time flips from the same
fold models; ``--seed`` reruns with other folds and inits (rows tagged ``@seedN``). The JSON's ``paired`` holds
each row's difference to its ``versus`` with a paired bootstrap interval (and its mean over seeds).
Each fold's early stopping, thresholds and temperature use its inner validation split only; the outer folds are only
scored (the choice between the levers is made on them, so a seed-0 winner is rerun at seed 1 before it is adopted).

Usage:
    .venv/bin/python bench/aptos.py [--folds 5] [--image-size 160] [--max-epochs 10] [--budget-minutes 6] [--flips]
        [--methods ours design-b0 ...] [--seed 0] [--threads 2] [--out FILE]
    The committed JSON: each method at --image-size 192 --max-epochs 24 --budget-minutes 3.5 --threads 1 --flips
    (one --methods per process, two processes at a time), then --merge.
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
LITE0 = {"net.name": "image_classifier_lite0"}
#: name → (recipe, recipe overrides, what it measures, the row it differs from by that one change). Before #13 the
#: recipe was Lite0 ("ours-lite0"); its levers are measured on that base.
METHODS: dict[str, tuple[Path, dict[str, Any], str, str | None]] = {
    "ours": (OURS, {}, "the recipe as committed (EfficientNet-Lite1, CORN)", None),
    "design-b0": (
        REPO / "recipes" / "fundus.dr.design-b0.yaml",
        {},
        "the design's recipe (EfficientNet-B0 random init, CE)",
        "ours",
    ),
    "ours-val-loss": (
        OURS,
        {"train.monitor": "val_loss"},
        "early stopping and the best checkpoint on the inner validation loss instead of its QWK (20 images: QWK "
        "jumps in steps)",
        "ours",
    ),
    "ours-lite0": (OURS, LITE0, "EfficientNet-Lite0 offline ImageNet weights (the recipe before #13)", "ours"),
    "ours-lite2": (OURS, {"net.name": "image_classifier_lite2"}, "EfficientNet-Lite2 offline ImageNet weights", "ours"),
    "ours-lite0-odir-init": (
        OURS,
        {**LITE0, "net.init_encoder": str(REPO / "models" / "fundus-odir")},
        "Lite0 encoder initialised from the bundled in-domain models/fundus-odir instead of ImageNet (its encoder "
        "is a Lite0: no Lite1 start exists)",
        "ours-lite0",
    ),
    "ours-lite0-ce": (OURS, {**LITE0, "loss.name": "ce"}, "Lite0, softmax cross-entropy instead of CORN", "ours-lite0"),
    "ours-lite0-val-loss": (
        OURS,
        {**LITE0, "train.monitor": "val_loss"},
        "Lite0, early stopping and the best checkpoint on the inner validation loss instead of its QWK (20 images: "
        "QWK jumps in steps)",
        "ours-lite0",
    ),
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
            recipe, changes, what, versus = METHODS[method]
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
            tag = f"@seed{args.seed}" if args.seed else ""
            rows = {f"{method}{tag}": (oof.probs, f"{versus}{tag}" if versus else None)}
            if oof.probs_flips is not None:
                rows[f"{method}+flips{tag}"] = (oof.probs_flips, f"{method}{tag}")
            for name, (probs, reference) in rows.items():
                summary = summarise(probs, oof.y, labels=oof.labels, derived=oof.derived, ordinal=True, seed=args.seed)
                results[name] = {
                    "recipe": str(recipe.relative_to(REPO)),
                    "overrides": {
                        k: str(Path(v).relative_to(REPO)) if k == "net.init_encoder" else v for k, v in changes.items()
                    },
                    "what": what + (" + test-time flips (mean of 4)" if "+flips" in name else ""),
                    "versus": reference,
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
        "paired": _paired(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    _table(results)
    return 0


def _table(results: dict[str, Any]) -> None:
    print(f"\n{'method':28s} {'n':>4s}  {'QWK [95% CI]':24s} {'RDR AUROC [95% CI]':24s} {'accuracy [95% CI]':24s}")
    for method, r in results.items():
        s = r["summary"]
        print(
            f"{method:28s} {s['n']:4d}  {_fmt(s['quadratic_kappa']):24s} {_fmt(s['RDR_auroc']):24s} "
            f"{_fmt(s['accuracy']):24s}"
        )


def _paired(results: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Each row's referable-DR AUROC and QWK minus those of the row it differs from by one change (its ``versus``),
    with paired bootstrap 95 % intervals (the same images resampled for both): the figure that says whether a lever
    clearly helps. Rows are aligned by image id, so runs with other fold assignments (seeds) pair too."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.multiclass_metrics import quadratic_kappa

    def aligned(r: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
        oof = r["out_of_fold"]
        order = np.argsort(oof["sample_ids"])
        return sorted(oof["sample_ids"]), np.asarray(oof["y"])[order], np.asarray(oof["probs"])[order]

    def d_auc(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        ref = t >= 2
        if ref.all() or not ref.any():
            return float("nan")
        return float(roc_auc_score(ref, a[:, 2:].sum(1)) - roc_auc_score(ref, b[:, 2:].sum(1)))

    def d_qwk(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        k = a.shape[1]
        return float(quadratic_kappa(t, a.argmax(1), k) - quadratic_kappa(t, b.argmax(1), k))

    out: dict[str, Any] = {}
    pairs: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for name, r in results.items():
        versus = r.get("versus")
        if not versus or versus not in results:
            continue
        ids, y, a = aligned(r)
        ids_b, y_b, b = aligned(results[versus])
        if ids != ids_b or not np.array_equal(y, y_b):
            raise SystemExit(f"{name} scored other images than {versus}: the runs cannot be paired")
        out[name] = {
            "versus": versus,
            "RDR_auroc_difference": bootstrap_ci(d_auc, y, a, b, seed=seed),
            "quadratic_kappa_difference": bootstrap_ci(d_qwk, y, a, b, seed=seed),
        }
        pairs.setdefault((name.split("@")[0], versus.split("@")[0]), []).append((y, a, b))
    # The same comparison at several seeds (other folds, inits and inner splits): the mean of the per-seed paired
    # differences, the images resampled jointly, so one lucky seed does not decide a default.
    for (name, versus), runs in pairs.items():
        if len(runs) < 2:
            continue
        y = runs[0][0]
        arrays = [m for _, a, b in runs for m in (a, b)]

        def mean_auc(t: np.ndarray, *ab: np.ndarray) -> float:
            return float(np.mean([d_auc(t, ab[i], ab[i + 1]) for i in range(0, len(ab), 2)]))

        def mean_qwk(t: np.ndarray, *ab: np.ndarray) -> float:
            return float(np.mean([d_qwk(t, ab[i], ab[i + 1]) for i in range(0, len(ab), 2)]))

        out[f"{name} (mean over {len(runs)} seeds)"] = {
            "versus": versus,
            "RDR_auroc_difference": bootstrap_ci(mean_auc, y, *arrays, seed=seed),
            "quadratic_kappa_difference": bootstrap_ci(mean_qwk, y, *arrays, seed=seed),
        }
    return out


def _merge(parts: list[Path], out: Path) -> int:
    """One JSON from runs of different methods; their protocols must agree (same folds, size, epochs, budget)."""
    payloads = [json.loads(p.read_text(encoding="utf-8")) for p in parts]
    protocols = {p["protocol"] for p in payloads}
    if len(protocols) != 1:
        raise SystemExit(f"cannot merge runs of different protocols: {sorted(protocols)}")
    rows = {k: v for p in payloads for k, v in p["results"].items()}
    order = {name: i for i, name in enumerate(METHODS)}

    def rank(name: str) -> tuple[int, str]:
        return order.get(name.split("@")[0].removesuffix("+flips"), len(order)), name

    merged = {**payloads[0], "results": {k: rows[k] for k in sorted(rows, key=rank)}}
    merged.pop("note", None)
    notes = sorted({p["note"] for p in payloads if p.get("note")})
    if notes:
        merged["notes"] = notes
    merged["machine"]["runs"] = len(payloads)
    merged["paired"] = _paired(merged["results"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    _table(merged["results"])
    print(f"\n{'paired difference':50s} {'Δ RDR AUROC [95% CI]':24s} {'Δ QWK [95% CI]':24s}")
    for name, d in merged["paired"].items():
        print(
            f"{name + ' − ' + d['versus']:50s} {_fmt(d['RDR_auroc_difference']):24s} "
            f"{_fmt(d['quadratic_kappa_difference']):24s}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
