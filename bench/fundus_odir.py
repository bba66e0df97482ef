"""fundus.odir on the 304 real ODIR patients: 5-fold patient-level CV of the levers, calibration, the seed recipe.

What a reviewer would accept: every one of the 304 patients is scored exactly once out of fold (iteratively
stratified patient-level folds, the engine's ``patient_kfold`` with seed 0), at the resolution the images have
(256 px), with patient-bootstrap 95 % intervals on the pooled out-of-fold predictions.

Why frozen-trunk features: this runs on a 2-core CPU shared with other jobs. Every photograph goes through the
ImageNet EfficientNet-Lite trunk once per view (identity, horizontal flip, ...; cached under ``--cache``), and the
fusion head (the bundled net's own head: both eyes + age MLP) trains on the cached vectors in seconds, so each lever
gets the full 5-fold CV. Levers are added one at a time on top of those kept so far (a lever is kept when the pooled
out-of-fold macro-AUROC rises; the paired bootstrap difference is reported beside it). Choosing levers on the same
out-of-fold predictions flatters the final figure slightly; the intervals are wider than that bias.

Calibration: per-label Platt, isotonic and temperature are each fitted on the out-of-fold logits of the other folds
and applied to the held-out fold (cross-fitting), so the ECE is the one the card's calibration — fitted on all
out-of-fold logits — gives on new patients. Reliability plot: ``bench/results/fundus_odir_reliability.png``.

The seed design (bilateral EfficientNet-B4 from random init, focal loss; its ImageNet weights cannot be had
offline) is trained end to end by the engine on the same folds and image size, under the same wall-clock budget per
fold that ours used (trunk features + heads). Latency: one analysis of the bundled artifact, with and without
Grad-CAM.

Extras (``--extras``, on the kept head recipe): the other trunks, the trunks' features concatenated, and with
``--pool-stages`` the multi-stage features (the pooled outputs of intermediate encoder blocks appended to each trunk's
vector: finer scales, where small lesions live), each with paired deltas against the kept Lite0 row and the
Lite0+Lite1 concatenation.

Usage:
    nice -n 10 .venv/bin/python bench/fundus_odir.py                     # levers + calibration + seed + latency
    nice -n 10 .venv/bin/python bench/fundus_odir.py --skip-seed --skip-latency
    nice -n 10 .venv/bin/python bench/fundus_odir.py --skip-cv --skip-split --skip-seed --skip-latency --extras \
        --merge --views id --backbones lite0,lite1,lite2 --pool-stages 4,6   # add extras rows, keep the rest
Writes ``bench/results/fundus_odir.json``. Demonstration figures; decision support, not a diagnosis.
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

SEED_RECIPE = REPO / "recipes" / "fundus.odir.seed-b4.yaml"
BACKBONES = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1", "lite2": "efficientnet_lite2"}


def _levers(views: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The levers in the order they are tried; view levers only where those views were extracted."""
    levers: list[tuple[str, dict[str, Any]]] = []
    if "hflip" in views:
        levers.append(("flip augmentation (train on id + hflip)", {"train_views": ("id", "hflip")}))
    strong = tuple(v for v in views if v != "id")
    if len(strong) > 1:
        levers.append((f"stronger augmentation (train on {len(views)} views)", {"train_views": views}))
    if "hflip" in views:
        levers.append(("test-time flips (mean of id + hflip)", {"test_views": ("id", "hflip")}))
    levers += [
        ("per-eye auxiliary targets (weight 0.5)", {"aux_weight": 0.5}),
        ("derived N (no other label)", {"derived_normal": True}),
        ("ensemble of 5 heads", {"n_members": 5}),
    ]
    return levers


def _paired_delta(y: np.ndarray, a: np.ndarray, b: np.ndarray, ids: list[str]) -> dict[str, Any]:
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.odir_heads import _macro_auroc

    return bootstrap_ci(lambda t, s, r: _macro_auroc(t, s) - _macro_auroc(t, r), y, a, b, clusters=ids, n_boot=500)


def _deltas(row: dict[str, Any]) -> str:
    """The row's paired deltas, "Δ name +x.xxx [lo, hi]" each."""
    out = []
    for key, value in row.items():
        if key.startswith("delta_vs_"):
            out.append(f"Δ {key[9:]} {value['value']:+.3f} [{value['low']:+.3f}, {value['high']:+.3f}]")
    return "  ".join(out)


def _short(score: dict[str, Any]) -> str:
    m = score["macro_auroc"]
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def load_data(args: argparse.Namespace) -> dict[str, Any]:
    from vitalens.data.odir import OdirDataset
    from vitalens.data.odir_keywords import eye_targets
    from vitalens.data.splits import patient_kfold

    dataset = OdirDataset(args.data)
    y = dataset.targets
    ids = list(dataset.patient_ids)
    fold_of = np.zeros(len(ids), dtype=int)
    for k, (_, test) in enumerate(patient_kfold(dataset.patient_ids, y, k=args.folds, seed=args.split_seed)):
        fold_of[test] = k
    return {
        "dataset": dataset,
        "y": y,
        "ids": ids,
        "ages": dataset.ages.astype(np.float64),
        "eye_y": eye_targets(dataset.records),
        "folds": fold_of,
        "labels": list(dataset.labels),
    }


def features_for(
    data: dict[str, Any], args: argparse.Namespace, backbone: str, pool_stages: tuple[int, ...] = ()
) -> tuple[Any, float]:
    from vitalens.training.odir_features import extract_features

    t0 = time.perf_counter()
    feats = extract_features(
        data["dataset"],
        backbone=BACKBONES[backbone],
        pretrained=backbone,
        size=args.image_size,
        views=args.views,
        cache_dir=args.cache,
        pool_stages=pool_stages,
    )
    seconds = time.perf_counter() - t0
    stages = f" + pooled blocks {list(pool_stages)}" if pool_stages else ""
    print(f"features {backbone}{stages} {feats.feats.shape} in {seconds:.0f} s", flush=True)
    return feats, seconds


def features_timed(
    data: dict[str, Any], args: argparse.Namespace, backbone: str, pool_stages: tuple[int, ...] = ()
) -> tuple[Any, float | None]:
    """:func:`features_for`, with ``None`` for the seconds when every view came from the cache (a cache read is not
    an extraction time)."""
    before = set(args.cache.glob("*.npy")) if args.cache.is_dir() else set()
    feats, seconds = features_for(data, args, backbone, pool_stages)
    return feats, (None if set(args.cache.glob("*.npy")) == before else seconds)


def run_levers(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The greedy lever ladder on Lite0 features, then the other trunks under the kept configuration."""
    from dataclasses import replace

    from vitalens.training.odir_heads import HeadConfig, crossval_heads, score_oof

    y, ids, labels = data["y"], data["ids"], data["labels"]

    def evaluate(features: Any, cfg: HeadConfig) -> tuple[dict[str, Any], Any, float]:
        t0 = time.perf_counter()
        oof = crossval_heads(features, data["ages"], y, data["folds"], cfg, eye_y=data["eye_y"])
        seconds = time.perf_counter() - t0
        score = score_oof(oof.logits, y, data["folds"], labels=labels, patient_ids=ids, n_boot=args.n_boot)
        return score, oof, seconds

    feats, extract_s = features_for(data, args, "lite0")
    current = HeadConfig(epochs=args.epochs, seed=args.seed)
    score, oof, head_s = evaluate(feats, current)
    ladder = [{"step": "frozen Lite0 + age head (id view)", "kept": True, "score": score, "head_seconds": head_s}]
    print(f"{'frozen Lite0 + age head':48s} {_short(score)}", flush=True)
    best_score, best_oof = score, oof
    for name, change in _levers(tuple(args.views)):
        cand = replace(current, **change)
        score, oof, head_s = evaluate(feats, cand)
        delta = _paired_delta(y, oof.logits, best_oof.logits, ids)
        kept = score["macro_auroc"]["value"] > best_score["macro_auroc"]["value"]
        ladder.append({"step": name, "kept": kept, "score": score, "delta_vs_kept": delta, "head_seconds": head_s})
        print(
            f"{name:48s} {_short(score)}  Δ {delta['value']:+.3f} [{delta['low']:+.3f}, {delta['high']:+.3f}]"
            f"  {'kept' if kept else 'dropped'}",
            flush=True,
        )
        if kept:
            current, best_score, best_oof = cand, score, oof
    trunks: dict[str, Any] = {
        "lite0": {"score": best_score, "feature_seconds": extract_s, "n_features": int(feats.feats.shape[-1])}
    }
    for backbone in args.backbones:
        if backbone == "lite0":
            continue
        other, seconds = features_for(data, args, backbone)
        score, oof, _ = evaluate(other, current)
        delta = _paired_delta(y, oof.logits, best_oof.logits, ids)
        trunks[backbone] = {"score": score, "feature_seconds": seconds, "delta_vs_lite0": delta}
        print(f"{'trunk ' + backbone:48s} {_short(score)}  Δ vs lite0 {delta['value']:+.3f}", flush=True)
    calibration = {}
    for method in ("none", "temperature", "platt", "isotonic"):
        s = score_oof(best_oof.logits, y, data["folds"], labels=labels, patient_ids=ids, calibration=method)
        calibration[method] = {"ece": s["ece"], "odir_score": s["odir_score"], "reliability": s["reliability"]}
        print(f"calibration {method:12s} ECE {s['ece']['value']:.3f} [{s['ece']['low']:.3f}, {s['ece']['high']:.3f}]")
    _plot_reliability(calibration, args.out.with_name("fundus_odir_reliability.png"))
    return {
        "features": {"image_size": args.image_size, "views": list(args.views), "cache": str(args.cache)},
        "ladder": ladder,
        "kept_config": current.to_dict(),
        "trunks": trunks,
        "calibration_cross_fitted": calibration,
        "ours_seconds_per_fold": (extract_s + ladder[0]["head_seconds"]) / args.folds,
    }


def run_extras(data: dict[str, Any], args: argparse.Namespace, cv: dict[str, Any]) -> dict[str, Any]:
    """On the kept head recipe of an earlier ladder: the other trunks, the trunks' features concatenated (every
    prefix of ``--backbones`` from two trunks on), the smaller head that keeps k fold heads inside the 25 MB bundle
    limit, and with ``--pool-stages`` each trunk and concatenation again on multi-stage features."""
    from dataclasses import replace

    from vitalens.training.odir_features import EyeFeatures
    from vitalens.training.odir_heads import HeadConfig, crossval_heads, score_oof

    y, ids, labels = data["y"], data["ids"], data["labels"]
    # one member per fold (the bundled recipe's fold heads), which also keeps the comparisons within the CPU budget
    kept = HeadConfig(**{**cv["kept_config"], "head_hidden": tuple(cv["kept_config"]["head_hidden"]), "n_members": 1})

    def evaluate(features: Any, cfg: HeadConfig) -> tuple[dict[str, Any], np.ndarray]:
        oof = crossval_heads(features, data["ages"], y, data["folds"], cfg, eye_y=data["eye_y"])
        return score_oof(oof.logits, y, data["folds"], labels=labels, patient_ids=ids, n_boot=args.n_boot), oof.logits

    # with pooled stages the leading columns are the plain vectors and are cached too, so extract those first
    staged: dict[str, Any] = {}
    stage_seconds: dict[str, float] = {}  # extraction times; cache reads are left out
    if args.pool_stages:
        for backbone in args.backbones:
            staged[backbone], seconds = features_timed(data, args, backbone, args.pool_stages)
            if seconds is not None:
                stage_seconds[backbone] = seconds
    base, _ = features_for(data, args, "lite0")
    ref_score, ref = evaluate(base, kept)
    extras: dict[str, Any] = {"reference": {"config": kept.to_dict(), "score": ref_score}}
    print(f"{'kept recipe, 1 member per fold':48s} {_short(ref_score)}", flush=True)
    small = replace(kept, head_hidden=(128, 64))
    score, logits = evaluate(base, small)
    extras["head_128_64"] = {"score": score, "delta_vs_kept": _paired_delta(y, logits, ref, ids)}
    print(f"{'head (128, 64) for the bundle':48s} {_short(score)}", flush=True)
    trunk_feats = {"lite0": base}
    trunk_logits = {"lite0": ref}
    for backbone in args.backbones:
        if backbone == "lite0":
            continue
        feats, seconds = features_timed(data, args, backbone)
        trunk_feats[backbone] = feats
        score, logits = evaluate(feats, kept)
        trunk_logits[backbone] = logits
        delta = _paired_delta(y, logits, ref, ids)
        extras[f"trunk_{backbone}"] = {"score": score, "delta_vs_lite0": delta}
        if seconds is not None:
            extras[f"trunk_{backbone}"]["feature_seconds"] = seconds
        print(f"{'trunk ' + backbone:48s} {_short(score)}  Δ {delta['value']:+.3f}", flush=True)

    def concatenated(parts: dict[str, Any]) -> Any:
        views = [feats.view_index(kept.train_views) for feats in parts.values()]
        joined = np.concatenate([f.feats[:, :, v] for f, v in zip(parts.values(), views, strict=True)], -1)
        return EyeFeatures(joined, base.patient_ids, tuple(kept.train_views), "+".join(parts), "mixed", 256)

    # every prefix of --backbones with two trunks or more: Lite0+Lite1 (the row "trunks_concatenated"), then
    # Lite0+Lite1+Lite2; deltas against Lite0 alone and against the two-trunk row
    combos = [list(args.backbones[:n]) for n in range(2, len(args.backbones) + 1)] if "lite0" in trunk_feats else []
    two: np.ndarray | None = None
    for combo in combos:
        score, logits = evaluate(
            concatenated({b: trunk_feats[b] for b in combo}), replace(kept, test_views=kept.train_views)
        )
        trunk_logits["+".join(combo)] = logits
        row: dict[str, Any] = {"score": score, "delta_vs_lite0": _paired_delta(y, logits, ref, ids), "trunks": combo}
        if two is None:
            two = logits
            key = "trunks_concatenated"
        else:
            key = "trunks_concatenated_" + "_".join(combo)
            row["delta_vs_two_trunks"] = _paired_delta(y, logits, two, ids)
        extras[key] = row
        print(f"{'trunks concatenated ' + '+'.join(combo):48s} {_short(score)}  {_deltas(row)}", flush=True)
    if two is not None:
        for backbone in args.backbones:
            if backbone != "lite0" and f"trunk_{backbone}" in extras:
                logits = trunk_logits[backbone]
                extras[f"trunk_{backbone}"]["delta_vs_two_trunks"] = _paired_delta(y, logits, two, ids)
    # the multi-stage lever: each trunk and each concatenation again with the pooled intermediate blocks appended
    groups = [[b] for b in staged] + ([c for c in combos if all(b in staged for b in c)] if staged else [])
    scales = ["raw", "matched"] if args.stage_scale == "both" else [args.stage_scale]
    for scale, group in ((sc, g) for sc in scales for g in groups):
        name = "+".join(group)
        source = staged if scale == "raw" else {b: _match_scale(staged[b], trunk_feats[b]) for b in group}
        feats = source[group[0]] if len(group) == 1 else concatenated({b: source[b] for b in group})
        cfg = kept if len(group) == 1 else replace(kept, test_views=kept.train_views)
        score, logits = evaluate(feats, cfg)
        row = {
            "score": score,
            "trunks": group,
            "pool_stages": list(args.pool_stages),
            "stage_scale": scale,
            "n_features": int(feats.feats.shape[-1]),
            "delta_vs_lite0": _paired_delta(y, logits, ref, ids),
            "delta_vs_same_trunks_without_stages": _paired_delta(y, logits, trunk_logits[name], ids),
        }
        if len(group) == 1 and group[0] in stage_seconds:
            row["feature_seconds"] = stage_seconds[group[0]]
        if two is not None:
            row["delta_vs_two_trunks"] = _paired_delta(y, logits, two, ids)
        stage_set = ".".join(str(k) for k in args.pool_stages)
        key = f"stages_{stage_set}_" + "_".join(group) + ("" if scale == "raw" else "_matched")
        extras[key] = row
        print(f"{'stages ' + scale + ' ' + name:48s} {_short(score)}  {_deltas(row)}", flush=True)
    return extras


def _match_scale(staged: Any, plain: Any) -> Any:
    """``staged`` with its appended stage columns multiplied by one scalar so that their mean per-column SD equals
    that of the trunk's own vector (``plain``'s columns).

    Why: the pooled block outputs are BN outputs (per-column SD ~0.7-0.8 over patients on Lite0) while the
    ReLU6-pooled head vector's is ~0.13, so unscaled they dominate the head's first layer. The scalar uses no label
    and is computed over all patients' features (a fixed, unsupervised preprocessing constant per trunk)."""
    from dataclasses import replace

    width = plain.feats.shape[-1]
    if not np.array_equal(staged.feats[..., :width], plain.feats):
        raise ValueError("staged features do not start with the plain vectors")
    rows = staged.feats.reshape(-1, staged.feats.shape[-1])
    factor = float(rows[:, :width].std(axis=0).mean() / max(rows[:, width:].std(axis=0).mean(), 1e-12))
    feats = staged.feats.copy()
    feats[..., width:] *= factor
    return replace(staged, feats=feats)


def _plot_reliability(calibration: dict[str, Any], path: Path) -> None:
    from vitalens.training.report import plot_reliability

    curves = {f"{m} (ECE {c['ece']['value']:.3f})": c["reliability"] for m, c in calibration.items()}
    plot_reliability(curves, path, title="fundus.odir out-of-fold reliability (cross-fitted calibration)")
    print(f"wrote {path}")


def run_bundled_split(data: dict[str, Any], args: argparse.Namespace, cv: dict[str, Any]) -> dict[str, Any]:
    """The bundled model's own held-out measure: the 50 test patients of the 0.7/0.15/0.15 split (seed 0) that the
    current card reports. The current artifact is re-scored on them here; the kept head recipe is trained as the
    bundled recipe would be (k fold heads on the other 254 patients, averaged, per-label Platt fitted on their
    out-of-fold logits) and scored on the same 50: macro-AUROC, the paired difference, and each one's ECE beside
    the ECE a perfectly calibrated model shows at this n (consistency resampling)."""
    from vitalens.artifacts import CalibrationSpec
    from vitalens.data.splits import patient_split
    from vitalens.data.torch_odir import age_stats
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import apply_calibration, fit_platt
    from vitalens.training.crossval import predict_split
    from vitalens.training.odir_heads import HeadConfig, _macro_auroc, head_logits, train_head

    y, ids = data["y"], np.asarray(data["ids"])
    parts = patient_split(ids, y, fractions=(0.7, 0.15, 0.15), seed=0)
    test = np.zeros(len(ids), dtype=bool)
    test[parts["test"]] = True
    # the bundled recipe (recipes/fundus.odir.frozen.yaml): one (128, 64) head per fold, so 5 fit in 25 MB
    cfg = HeadConfig(**{**cv["kept_config"], "head_hidden": (128, 64), "n_members": 1})
    feats, _ = features_for(data, args, "lite0")
    views = feats.view_index(cfg.train_views)
    mean, std = age_stats(data["ages"])
    z_age = (data["ages"] - mean) / std
    rest = np.flatnonzero(~test)
    inner = np.arange(rest.size) % args.folds
    heads = []
    inner_oof = np.zeros((rest.size, y.shape[1]))
    test_views = feats.view_index(cfg.test_views)
    for k in range(args.folds):
        fit = rest[inner != k]
        head = train_head(
            feats.feats[fit][:, :, views], z_age[fit], y[fit], cfg, eye_y=data["eye_y"][fit], seed=cfg.seed + k
        )
        heads.append(head)
        held = rest[inner == k]
        inner_oof[inner == k] = head_logits([head], feats.feats[held][:, :, test_views], z_age[held])
    ours = head_logits(heads, feats.feats[test][:, :, test_views], z_age[test])
    # the recipe's calibration: per-label Platt on the out-of-fold logits of the 254 training patients, applied
    # to the averaged fold heads on the 50 (what the bundled frozen net would show)
    platt = CalibrationSpec(method="platt", params=fit_platt(inner_oof, y[rest]), fitted_on="out-of-fold")
    ours_p = apply_calibration(platt, ours)
    kw = {"clusters": list(ids[test]), "n_boot": args.n_boot}
    out: dict[str, Any] = {"n_test": int(test.sum()), "frozen_heads": bootstrap_ci(_macro_auroc, y[test], ours, **kw)}
    out["frozen_heads_calibration"] = _calibration_on(y[test], ours_p, kw)
    if (args.artifact / "card.json").is_file():
        probs, y_cur, meta = predict_split(args.artifact, args.data, "test")
        order = {pid: i for i, pid in enumerate(meta["patient_id"])}
        if set(order) == set(ids[test]):
            cur = np.asarray(probs)[[order[p] for p in ids[test]]]
            card = json.loads((args.artifact / "card.json").read_text())
            out["current_artifact_card"] = f"{card['name']} {card['version']}"
            out["current_artifact"] = bootstrap_ci(_macro_auroc, y[test], cur, **kw)
            out["current_artifact_calibration"] = _calibration_on(y[test], cur, kw)
            out["frozen_minus_current_auroc"] = bootstrap_ci(
                lambda t, s, r: _macro_auroc(t, s) - _macro_auroc(t, r), y[test], ours_p, cur, **kw
            )
    for name, v in out.items():
        if isinstance(v, dict) and "value" in v:
            print(f"50-patient test split, {name:28s} {v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]", flush=True)
        elif isinstance(v, dict):
            e, c = v["ece"], v["ece_if_calibrated"]
            print(
                f"50-patient test split, {name:28s} ECE {e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]; a "
                f"calibrated model {c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}], p = {c['p_value']:.3f}",
                flush=True,
            )
    return out


def _calibration_on(y: np.ndarray, probs: np.ndarray, kw: dict[str, Any]) -> dict[str, Any]:
    """ECE of ``probs`` (patient-bootstrap CI) beside the ECE a perfectly calibrated model shows at this n."""
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import ece_consistency, expected_calibration_error

    return {
        "ece": bootstrap_ci(lambda t, s: expected_calibration_error(s, t), y, probs, **kw),
        "ece_if_calibrated": ece_consistency(probs, y).summary(),
    }


def run_seed(data: dict[str, Any], args: argparse.Namespace, minutes: float) -> dict[str, Any]:
    """The seed recipe end to end on the same folds and size, ``minutes`` of training per fold; pooled OOF."""
    from vitalens.training import train
    from vitalens.training.crossval import predict_split
    from vitalens.training.odir_heads import _macro_auroc

    probs = np.full(data["y"].shape, np.nan)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vitalens-bench-") as tmp:
        for fold in range(args.folds):
            out = Path(tmp) / f"fold{fold}"
            overrides = {
                "data.fold": fold,
                "data.n_folds": args.folds,
                "data.num_workers": 0,
                "data.split_seed": args.split_seed,
                "train.max_time_minutes": minutes,
                "train.progress_bar": False,
                "train.precision": "32-true",
                "task.image_size": args.image_size,
                "seed": args.seed,
            }
            t0 = time.perf_counter()
            artifact = train("fundus.odir", data=args.data, out=out, recipe=SEED_RECIPE, overrides=overrides)
            seconds = time.perf_counter() - t0
            p, y, meta = predict_split(artifact, args.data, "test")
            index = {pid: i for i, pid in enumerate(data["ids"])}
            rows_idx = [index[pid] for pid in meta["patient_id"]]
            probs[rows_idx] = p
            report = json.loads((out / "report.json").read_text())
            rows.append(
                {
                    "fold": fold,
                    "n_test": len(rows_idx),
                    "macro_auroc": _macro_auroc(np.asarray(y), p),
                    "epochs_run": report["training"]["epochs_run"],
                    "seconds": round(seconds, 1),
                }
            )
            print(f"seed fold {fold}: macro-AUROC {rows[-1]['macro_auroc']:.3f} in {seconds:.0f} s", flush=True)
    if np.isnan(probs).any():
        raise RuntimeError("the seed folds did not score every patient once")
    from vitalens.training.bootstrap import bootstrap_ci

    logits = np.log(np.clip(probs, 1e-7, 1)) - np.log(np.clip(1 - probs, 1e-7, 1))
    score = bootstrap_ci(_macro_auroc, data["y"], logits, clusters=data["ids"], n_boot=args.n_boot)
    print(
        f"{'seed recipe (B4 random init, end to end)':48s} {score['value']:.3f} "
        f"[{score['low']:.3f}, {score['high']:.3f}]"
    )
    return {
        "recipe": str(SEED_RECIPE.relative_to(REPO)),
        "minutes_per_fold": minutes,
        "folds": rows,
        "macro_auroc": score,
    }


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
    out: dict[str, Any] = {
        "artifact": str(artifact.relative_to(REPO)) if artifact.is_relative_to(REPO) else str(artifact)
    }
    out["threads"] = torch.get_num_threads()
    for explain in (False, True):
        times = []
        result = None
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
            "mean_positive_findings": None if not explain or result is None else len(result.positive),
        }
        print(f"latency {key}: p50 {out[key]['p50_ms']:.0f} ms  p95 {out[key]['p95_ms']:.0f} ms", flush=True)
    return out


def print_table(payload: dict[str, Any]) -> None:
    cv = payload.get("cv") or {}
    labels = list(cv["ladder"][0]["score"]["per_label_auroc"]) if cv else []
    if cv:
        print("\nstep" + " " * 45 + "macro-AUROC [95% CI]     " + " ".join(f"{lab:>5s}" for lab in labels))
        for row in cv["ladder"]:
            s = row["score"]
            per = " ".join(f"{s['per_label_auroc'][lab]['value']:5.2f}" for lab in labels)
            print(f"{row['step'][:47]:48s} {_short(s):24s} {per}  {'kept' if row['kept'] else 'dropped'}")
        for name, t in cv["trunks"].items():
            print(f"{'trunk ' + name:48s} {_short(t['score'])}")
        extras = {k: v for k, v in (cv.get("extras") or {}).items() if isinstance(v, dict) and "score" in v}
        if extras:
            print(
                "\nextras (kept recipe, 1 head per fold)"
                + " " * 11
                + "macro-AUROC [95% CI]     "
                + " ".join(f"{lab:>5s}" for lab in labels)
            )
            for name, row in extras.items():
                s = row["score"]
                per = " ".join(f"{s['per_label_auroc'][lab]['value']:5.2f}" for lab in labels)
                print(f"{name[:47]:48s} {_short(s):24s} {per}")
                if _deltas(row):
                    print(f"{'':50s}{_deltas(row)}")
    if "macro_auroc" in payload.get("seed", {}):  # a merged file may hold only a note on why the seed was not run
        s = payload["seed"]["macro_auroc"]
        print(f"{'seed recipe, same budget':48s} {s['value']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fundus" / "odir")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--views", default="id,hflip", help="trunk views to extract (see odir_features.VIEWS)")
    parser.add_argument("--backbones", default="lite0", help="trunks compared under the kept head: lite0,lite1,lite2")
    parser.add_argument("--epochs", type=int, default=30, help="head epochs")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "feature-cache")
    parser.add_argument("--seed-minutes", type=float, default=None, help="seed recipe budget per fold (default: ours)")
    parser.add_argument("--artifact", type=Path, default=REPO / "models" / "fundus-odir")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--skip-cv", action="store_true", help="reuse the ladder of --out")
    parser.add_argument("--extras", action="store_true", help="other trunks, bundle-size head on the kept recipe")
    parser.add_argument(
        "--pool-stages", default="", help="with --extras: encoder blocks pooled and appended, e.g. 4,6 (Lite s16, s32)"
    )
    parser.add_argument(
        "--stage-scale",
        choices=("raw", "matched", "both"),
        default="raw",
        help="pooled stage columns as extracted, rescaled to the trunk vector's spread, or both rows",
    )
    parser.add_argument(
        "--merge", action="store_true", help="update --out in place: keep every section and extras row not rerun"
    )
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--skip-split", action="store_true", help="skip the 50-patient test split comparison")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fundus_odir.json")
    args = parser.parse_args(argv)
    args.views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    args.backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    args.pool_stages = tuple(int(k) for k in args.pool_stages.split(",") if k.strip())
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)  # tiny heads: one thread beats two on a shared CPU
    if not args.data.is_dir():
        print(f"error: ODIR data not found at {args.data} (../shared/data absent?)", file=sys.stderr)
        return 2
    unknown = set(args.backbones) - set(BACKBONES)
    if unknown or "id" not in args.views:
        print(f"error: backbones must be among {sorted(BACKBONES)} and views must include id", file=sys.stderr)
        return 2
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    payload: dict[str, Any] = {
        "benchmark": "fundus.odir 5-fold patient-level CV on the real ODIR-5K sample (304 patients)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "folds": args.folds,
            "split_seed": args.split_seed,
            "image_size": args.image_size,
            "views": list(args.views),
            "backbones": args.backbones,
            "head_epochs": args.epochs,
            "seed": args.seed,
        },
        "notice": "Demonstration figures on 304 patients; decision support, not a diagnosis.",
    }
    if args.merge:  # the previous file's sections (settings, decisions) stay; those rerun below replace theirs
        payload = {**previous, "machine": payload["machine"]}
    data = load_data(args)
    if not args.skip_cv:
        payload["cv"] = run_levers(data, args)
    elif "cv" in previous:
        payload["cv"] = previous["cv"]
    if not args.skip_split and "cv" in payload:
        payload["bundled_split"] = run_bundled_split(data, args, payload["cv"])
    elif "bundled_split" in previous:
        payload["bundled_split"] = previous["bundled_split"]
    if args.extras and "cv" in payload:
        extras = run_extras(data, args, payload["cv"])
        extras["run_settings"] = {
            "views": list(args.views),
            "backbones": args.backbones,
            "pool_stages": list(args.pool_stages),
            "stage_scale": args.stage_scale,
            "n_boot": args.n_boot,
            "cache": str(args.cache),
        }
        kept_rows = payload["cv"].get("extras", {}) if args.merge else {}
        for key, row in extras.items():  # a rerun from the cache keeps the extraction time measured before
            old = kept_rows.get(key)
            if isinstance(row, dict) and isinstance(old, dict) and "feature_seconds" in old:
                row.setdefault("feature_seconds", old["feature_seconds"])
        payload["cv"]["extras"] = {**kept_rows, **extras}
    if not args.skip_seed:
        minutes = args.seed_minutes
        if minutes is None:
            minutes = max(1.0, (payload.get("cv") or {}).get("ours_seconds_per_fold", 120.0) / 60.0)
        payload["seed"] = run_seed(data, args, minutes)
    elif "seed" in previous:
        payload["seed"] = previous["seed"]
    if not args.skip_latency and (args.artifact / "card.json").is_file():
        payload["latency"] = run_latency(args.artifact, args.data, args.latency_runs)
    elif "latency" in previous:
        payload["latency"] = previous["latency"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print_table(payload)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
