"""cxr.anomaly on real radiographs: the design's ablation beside its published figures, normal-only baselines,
the shipped method's operating point, and the UMAP of the VAE latent.

Protocol (the same splits and frozen features for every row):

- COVID-19 Radiography sample (``../shared/data/cxr/covid19_radiography_sample``: 500 Normal, 100 COVID, 100 Viral
  Pneumonia): Normal images split 60/20/20 (train/val/test), each abnormal class 30 % validation / 70 % test. Nothing
  abnormal is ever fitted on, except by the one row marked "design: labelled scorer", whose scorer trains on half of
  the validation anomalies (as the design trains it with labels); the test anomalies are unseen by every row.
- PneumoniaMNIST (``../shared/data/medmnist/pneumoniamnist.npz``): training normals only (the published training
  pneumonias are dropped), published val and test.

Rows: the design's five (reconstruction error only, KL only, scorer only, recon + KL, full fusion
0.4·σ(z(recon)) + 0.2·σ(z(KL)) + 0.4·scorer) for each way of training the scorer — feature-space synthetic
anomalies (normal-only), opacities painted on normal radiographs (normal-only) and the design's labelled scorer —
and the normal-only baselines a reviewer asks for on the same frozen features: Mahalanobis distance to the training
normals' Gaussian (Rippel et al. 2020; PaDiM's statistic on pooled features) and mean distance to the 5 nearest
training normals. AUROC on the test split with a stratified bootstrap 95 % interval (n and positives given), per
abnormal class too. The design's published AUROCs (0.62 / 0.68 / 0.65 / 0.69 / 0.718) are printed beside them; they
were measured on another split of the full database with VGG16 features, so they are a reference, not a paired
comparison. VGG16 (the design's encoder) needs hub weights and is not measured offline.

The shipped method is the normal-only row with the best *validation* AUROC; its threshold is Youden's J on
validation and its test sensitivity/specificity are reported with intervals.

Usage:
    .venv/bin/python bench/cxr_anomaly.py [--datasets covid,pneumoniamnist] [--n-boot 2000] [--no-umap]
        [--threads 1] [--set train.max_epochs=12 --set task.scorer.max_epochs=12 ...]   (a smaller CPU budget: recorded
        in the JSON; bench/results/cxr_anomaly.json used the bundled model's, see its settings.overrides)
Writes ``bench/results/cxr_anomaly.json`` and ``bench/results/cxr_anomaly_umap_<dataset>.png``.
"""

from __future__ import annotations

import argparse
import copy
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
SHARED = Path(os.environ.get("VITALENS_SHARED_DATA", REPO.parent / "shared" / "data"))
logger = logging.getLogger("bench.cxr_anomaly")

PUBLISHED = {"recon": 0.62, "kl": 0.68, "scorer": 0.65, "recon_kl": 0.69, "fusion": 0.718}
ROW_NAMES = {
    "recon": "recon error only",
    "kl": "KL only",
    "scorer": "scorer only",
    "recon_kl": "recon + KL",
    "fusion": "full fusion",
    "mahalanobis": "Mahalanobis (Gaussian, same features)",
    "knn": "kNN distance (k = 5, same features)",
}
VARIANTS = {
    "feature": ("synthetic_feature", "normal-only: scorer on perturbed normal features", True),
    "image": ("synthetic_image", "normal-only: scorer on opacities painted on normals", True),
    "labelled": ("labelled", "design: scorer on half the labelled val anomalies", False),
}
DATASETS = {
    "covid": {
        "path": SHARED / "cxr" / "covid19_radiography_sample",
        "title": "COVID-19 Radiography sample (500 Normal, 100 COVID, 100 Viral Pneumonia)",
        "overrides": {"task.image_size": 224},
    },
    "pneumoniamnist": {
        "path": SHARED / "medmnist" / "pneumoniamnist.npz",
        "title": "PneumoniaMNIST (28 px; normals train, published val/test)",
        "overrides": {"task.image_size": 128, "task.augment_copies": 1},
    },
}


def _task(overrides: dict[str, Any]) -> Any:
    from vitalens.training.engine import resolve_recipe
    from vitalens.training.tasks import get_task

    return get_task("cxr.anomaly", resolve_recipe("cxr.anomaly", overrides=overrides))


def _fmt_auc(m: dict[str, Any]) -> str:
    if m["value"] != m["value"]:
        return "n/a"
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def run_dataset(key: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every row of one dataset on shared splits and features."""
    import torch

    from vitalens.nets import create_net
    from vitalens.nets.cxr_anomaly import ANOMALY_OUTPUTS
    from vitalens.training.anomaly import component_metrics, encode_splits, fit_pipeline
    from vitalens.training.bootstrap import bootstrap_metric, sensitivity_specificity
    from vitalens.training.engine import choose_thresholds

    spec = DATASETS[key]
    base = {**spec["overrides"], "seed": args.seed, "task.n_boot": args.n_boot, **args.overrides}
    t0 = time.perf_counter()
    encoder_task = _task({**base, "task.scorer.anomalies": "synthetic_image"})  # encodes every extra view once
    bundle = encoder_task.build_data(spec["path"])
    cfg = encoder_task.recipe
    template = create_net(
        cfg.net.name, pretrained=cfg.net.pretrained, knn_bank_size=len(bundle.train), knn_k=encoder_task.options.knn_k
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    feats = encode_splits(encoder_task, bundle, template, device, cache_dir=args.feature_cache)
    encode_s = time.perf_counter() - t0
    print(f"[{key}] features in {encode_s:.0f}s: {bundle.meta['class_counts']}", flush=True)

    fitted_by_variant: dict[str, Any] = {}
    comps: dict[str, dict[str, Any]] = {}
    for vkey, (anomalies, _label, _normal_only) in VARIANTS.items():
        t1 = time.perf_counter()
        task = _task({**base, "task.scorer.anomalies": anomalies})
        fitted = fit_pipeline(task, bundle, out=work / key / vkey, feats=feats, net=copy.deepcopy(template))
        fitted_by_variant[vkey] = fitted
        comps[vkey] = component_metrics(fitted, list(ANOMALY_OUTPUTS), n_boot=args.n_boot, seed=args.seed)
        print(f"[{key}] {vkey}: fitted in {time.perf_counter() - t1:.0f}s", flush=True)

    rows: list[dict[str, Any]] = []

    def add(score: str, variant: str, group: str) -> None:
        c = comps[variant][score]
        rows.append(
            {
                "row": ROW_NAMES[score],
                "score": score,
                "variant": variant,
                "group": group,
                "trained_on": VARIANTS[variant][1] if score in ("scorer", "fusion") else "normal-only",
                "normal_only": VARIANTS[variant][2] or score not in ("scorer", "fusion"),
                "val_auroc": c["val_auroc"],
                "test": c["test"],
                "test_per_class": c["test_per_class"],
                "published": PUBLISHED.get(score),
            }
        )

    for score in ("recon", "kl"):
        add(score, "feature", "design ablation")
    for vkey in VARIANTS:
        add("scorer", vkey, "design ablation")
    add("recon_kl", "feature", "design ablation")
    for vkey in VARIANTS:
        add("fusion", vkey, "design ablation")
    add("mahalanobis", "feature", "normal-only baseline")
    add("knn", "feature", "normal-only baseline")

    candidates = [r for r in rows if r["normal_only"] and r["val_auroc"] is not None]
    best = max(candidates, key=lambda r: r["val_auroc"])
    fitted = fitted_by_variant[best["variant"]]
    yv, yt = fitted.targets["val"], fitted.targets["test"]
    sv, st = fitted.scores["val"][best["score"]], fitted.scores["test"][best["score"]]
    thresholds, method = choose_thresholds(encoder_task.recipe.thresholds, ["anomaly"], yv[:, None], sv[:, None])
    thr = thresholds["anomaly"]
    shipped = {
        "row": best["row"],
        "variant": best["variant"],
        "score": best["score"],
        "val_auroc": best["val_auroc"],
        "test_auroc": best["test"],
        "threshold": thr,
        "threshold_method": method,
        "test_sensitivity": bootstrap_metric(
            yt, st, lambda a, b: sensitivity_specificity(a, b, thr)[0], n_boot=args.n_boot, seed=args.seed
        ),
        "test_specificity": bootstrap_metric(
            yt, st, lambda a, b: sensitivity_specificity(a, b, thr)[1], n_boot=args.n_boot, seed=args.seed
        ),
    }
    umap_png = None
    if args.umap:
        umap_png = plot_umap(
            key, fitted_by_variant["feature"], REPO / "bench" / "results" / f"cxr_anomaly_umap_{key}.png"
        )
    counts = bundle.meta["class_counts"]
    return {
        "dataset": spec["title"],
        "data": str(spec["path"]),
        "encoder": template.encoder.describe(),
        "image_size": encoder_task.options.image_size,
        "class_counts": counts,
        "n_test": int(yt.size),
        "n_test_abnormal": int(yt.sum()),
        "rows": rows,
        "shipped": shipped,
        "vae": {k: v for k, v in fitted_by_variant["feature"].info["vae"].items() if k != "checkpoint"},
        "scorer_runs": {
            v: {k: x for k, x in f.info["scorer"].items() if k not in ("checkpoint", "labelled_indices_in_val")}
            for v, f in fitted_by_variant.items()
        },
        "umap_png": None if umap_png is None else str(umap_png.relative_to(REPO)),
        "seconds": {"features": round(encode_s, 1), "total": round(time.perf_counter() - t0, 1)},
    }


def plot_umap(key: str, fitted: Any, path: Path) -> Path | None:
    """UMAP (umap-learn) of the VAE latent (posterior means) of every split, coloured by class."""
    try:
        import umap
    except ImportError:
        print("umap-learn is not installed; no UMAP plot (pip install umap-learn)", file=sys.stderr)
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, cls, split = [], [], []
    for name in ("train", "val", "test"):
        lat.append(fitted.scores[name]["latent"])
        cls += fitted.classes[name].tolist()
        split += [name] * len(fitted.classes[name])
    emb = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0).fit_transform(np.concatenate(lat))
    cls_arr, split_arr = np.asarray(cls), np.asarray(split)
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=120)
    for c in sorted(set(cls), key=lambda c: (c.lower() != "normal", c)):
        for s, marker in (("train", "."), ("val", "^"), ("test", "o")):
            m = (cls_arr == c) & (split_arr == s)
            if m.any():
                ax.scatter(emb[m, 0], emb[m, 1], s=10, marker=marker, alpha=0.7, label=f"{c} ({s})")
    ax.set_title(f"VAE latent (UMAP) — {key}: trained on normals only")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def print_tables(results: dict[str, Any]) -> None:
    for res in results.values():
        print(f"\n== {res['dataset']} — test n = {res['n_test']} ({res['n_test_abnormal']} abnormal)")
        classes = sorted({c for r in res["rows"] for c in r["test_per_class"]})
        head = f"{'row':40s} {'scorer trained on':48s} {'val':>6s} {'test AUROC [95% CI]':>24s} {'published':>9s}"
        head += "".join(f" {c[:16]:>16s}" for c in classes)
        print(head + "\n" + "-" * len(head))
        for r in res["rows"]:
            pub = f"{r['published']:.3f}" if r["published"] is not None else "—"
            val = f"{r['val_auroc']:.3f}" if r["val_auroc"] is not None else "n/a"
            line = f"{r['row']:40s} {r['trained_on']:48s} {val:>6s} {_fmt_auc(r['test']):>24s} {pub:>9s}"
            line += "".join(f" {r['test_per_class'][c]['value']:>16.3f}" for c in classes if c in r["test_per_class"])
            print(line)
        s = res["shipped"]
        print(
            f"shipped (best normal-only on validation): {s['row']} [{s['variant']}] — "
            f"test AUROC {_fmt_auc(s['test_auroc'])}; "
            f"threshold {s['threshold']:.3f} ({s['threshold_method']}): sensitivity {_fmt_auc(s['test_sensitivity'])}, "
            f"specificity {_fmt_auc(s['test_specificity'])}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="covid,pneumoniamnist")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-umap", dest="umap", action="store_false")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument(
        "--feature-cache",
        type=Path,
        default=REPO / "runs" / "cxr-feature-cache",
        help="frozen-encoder features are cached here (make model-cxr-anomaly reuses them)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cxr_anomaly.json")
    parser.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="torch threads (1 on a shared, loaded CPU: the small VAE/scorer steps then do not spin on barriers)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override for every row (e.g. train.max_epochs=40 on a small CPU budget); recorded in the JSON",
    )
    args = parser.parse_args(argv)
    from vitalens.errors import InputError
    from vitalens.training.recipe import parse_overrides

    try:
        args.overrides = parse_overrides(args.sets)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keys = [k.strip() for k in args.datasets.split(",") if k.strip()]
    unknown = set(keys) - set(DATASETS)
    if unknown:
        print(f"error: unknown dataset(s) {sorted(unknown)}; valid: {sorted(DATASETS)}", file=sys.stderr)
        return 2
    missing = [str(DATASETS[k]["path"]) for k in keys if not DATASETS[k]["path"].exists()]
    if missing:
        print(f"error: data not found: {missing} (../shared/data absent?)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for key in keys:
            results[key] = run_dataset(key, args, work)
    payload = {
        "benchmark": "cxr.anomaly: design ablation vs normal-only baselines on real radiographs",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "seed": args.seed,
            "n_boot": args.n_boot,
            "recipe": "recipes/cxr.anomaly.yaml",
            "overrides": args.overrides,
            "threads": args.threads,
        },
        "published_design_auroc": PUBLISHED,
        "results": results,
    }
    print_tables(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists() and set(keys) != set(DATASETS):  # a partial run keeps the other datasets' results
        old = json.loads(args.out.read_text())
        payload["results"] = {**old.get("results", {}), **results}
    from vitalens.training.metrics import nan_to_none

    args.out.write_text(json.dumps(nan_to_none(payload), indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
