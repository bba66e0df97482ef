"""The staged training of ``cxr.anomaly``: features → VAE → scorer → training-normal statistics → choice,
threshold, card and report.

Why staged, in this order:

1. encode every split once with the frozen encoder (:mod:`~vitalens.training.anomaly.features`);
2. fit the per-feature standardisation on the training normals (the projection to the VAE width is fixed);
3. train the VAE on the training normals' projected features (augmented views too, when asked), early-stopped on
   the validation *normals'* loss — it never sees an abnormal image;
4. train the latent scorer on training-normal latents vs positives that depend on ``task.scorer.anomalies``:
   perturbed normal features or opacities painted on normal radiographs (both normal-only), or half of the labelled
   validation anomalies (the design's variant, said so in the card);
5. fit the z-statistics of reconstruction error and KL, the Gaussian and the kNN bank on the training normals;
6. score validation and test; with ``task.output: auto`` ship the candidate with the best validation AUROC; choose
   its threshold on validation (Youden's J by default); report every component on the test split with bootstrap
   intervals, once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vitalens.errors import InputError

if TYPE_CHECKING:
    from vitalens.training.tasks._base import DataBundle
    from vitalens.training.tasks.cxr_anomaly import CxrAnomalyTask

__all__ = [
    "out_of_distribution_limits",
    "out_of_fold_gaussian_distances",
    "FittedPipeline",
    "fit_pipeline",
    "score_features",
    "component_metrics",
    "train_anomaly",
    "encode_splits",
]

logger = logging.getLogger(__name__)

_NORMAL_QUANTILE = 0.95


@dataclass
class FittedPipeline:
    """A fitted net with every split's component scores (numpy, ``(N,)`` each) and how each stage went."""

    net: Any
    scores: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]
    classes: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


def _feature_key(task: CxrAnomalyTask, bundle: DataBundle, net: Any, *, synthetic: bool) -> str:
    """What the cached features depend on: encoder, weights, preprocessing, the images of each split, the views."""
    import hashlib
    import json

    opts = task.options
    payload = {
        "version": 1,
        "encoder": net.encoder.describe(),
        "pretrained": str(task.recipe.net.pretrained),
        "preprocess": bundle.train.preprocess.config(),
        "ids": {s: bundle.split(s).image_ids.tolist() for s in ("train", "val", "test")},
        # Resolved: the Makefile's relative ../shared/data and the bench's absolute path name the same images.
        "source": str(Path(bundle.meta["root"]).resolve()) if bundle.meta.get("root") else None,
        "augment_copies": opts.augment_copies,
        "seed": task.recipe.seed,
        "synthetic_image_copies": opts.scorer.image_copies if synthetic else 0,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def encode_splits(
    task: CxrAnomalyTask, bundle: DataBundle, net: Any, device: str, *, cache_dir: Path | None = None
) -> Any:
    """Stage 1: features of every split, the augmented training views and the image-space synthetic anomalies.

    With ``cache_dir`` the features are saved there (``features-<key>.pt``, the key a hash of everything they
    depend on) and reused by a later run with the same encoder, preprocessing, images and views, so the VAE and
    scorer can be re-fitted without re-encoding (minutes on a CPU).
    """
    from vitalens.training.anomaly.features import SplitFeatures

    need_synthetic = task.options.scorer.anomalies == "synthetic_image"
    if cache_dir is not None:
        keys = [_feature_key(task, bundle, net, synthetic=True)]
        if not need_synthetic:
            keys.append(_feature_key(task, bundle, net, synthetic=False))
        for key in keys:
            path = Path(cache_dir) / f"features-{key}.pt"
            if path.is_file():
                logger.info("cxr.anomaly: features from cache %s", path)
                return SplitFeatures(**torch.load(path, map_location="cpu", weights_only=True))
    feats = _encode(task, bundle, net, device, synthetic=need_synthetic)
    if cache_dir is not None:
        path = Path(cache_dir) / f"features-{_feature_key(task, bundle, net, synthetic=need_synthetic)}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "train": feats.train,
                "val": feats.val,
                "test": feats.test,
                "train_augmented": feats.train_augmented,
                "synthetic": feats.synthetic,
            },
            tmp,
        )
        tmp.replace(path)
    return feats


def _encode(task: CxrAnomalyTask, bundle: DataBundle, net: Any, device: str, *, synthetic: bool) -> Any:
    from vitalens.data.cxr_transforms import CxrAugment, SyntheticOpacity
    from vitalens.training.anomaly.features import SplitFeatures, extract_features

    opts, seed = task.options, task.recipe.seed
    bs = task.recipe.train.batch_size

    def encode(dataset: Any) -> torch.Tensor:
        return extract_features(net, dataset, device=device, batch_size=bs)

    feats = SplitFeatures(train=encode(bundle.train), val=encode(bundle.val), test=encode(bundle.test))
    if opts.augment_copies:
        feats.train_augmented = torch.cat(
            [
                encode(bundle.train.with_transforms(augment=CxrAugment(seed=seed * 1000 + k)))
                for k in range(opts.augment_copies)
            ]
        )
    if synthetic:
        val_normals = bundle.val.subset(bundle.val.targets[:, 0] == 0)
        painted = [
            encode(bundle.train.with_transforms(pixel_transform=SyntheticOpacity(seed=seed * 1000 + 500 + k)))
            for k in range(opts.scorer.image_copies)
        ]
        feats.synthetic = {
            "train": torch.cat(painted),
            "val": encode(val_normals.with_transforms(pixel_transform=SyntheticOpacity(seed=seed * 1000 + 999))),
        }
    logger.info(
        "cxr.anomaly features: train %s, val %s, test %s, augmented %s, synthetic %s",
        tuple(feats.train.shape),
        tuple(feats.val.shape),
        tuple(feats.test.shape),
        None if feats.train_augmented is None else tuple(feats.train_augmented.shape),
        {k: tuple(v.shape) for k, v in feats.synthetic.items()},
    )
    return feats


@torch.no_grad()
def _latents(net: Any, raw: torch.Tensor) -> torch.Tensor:
    net.eval()
    return net.vae.scores(net.project(net.standardize(raw)))["mu"]


@torch.no_grad()
def _latents_std(net: Any, standardized: torch.Tensor) -> torch.Tensor:
    net.eval()
    return net.vae.scores(net.project(standardized))["mu"]


def _scorer_data(
    task: CxrAnomalyTask, net: Any, feats: Any, val_y: np.ndarray
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], dict[str, Any]]:
    """Training and validation ``(latent, label)`` sets of the scorer, and what they were made of (for the card)."""
    from vitalens.training.anomaly.synthetic import FeatureSpaceAnomalies

    opts, seed = task.options.scorer, task.recipe.seed
    z_train_norm = _latents(net, feats.train)
    val_norm_mask = val_y == 0
    z_val_norm = _latents(net, feats.val[torch.as_tensor(val_norm_mask)])
    n_syn = max(1, round(feats.train.shape[0] * opts.per_normal))
    info: dict[str, Any] = {"anomalies": opts.anomalies, "negatives": f"{feats.train.shape[0]} training normals"}
    if opts.anomalies == "synthetic_feature":
        gen = FeatureSpaceAnomalies(seed=seed * 1000 + 7)
        pos = _latents_std(net, gen(net.standardize(feats.train), n_syn))
        val_pos = _latents_std(
            net,
            gen.set_random_state(seed * 1000 + 8)(
                net.standardize(feats.val[torch.as_tensor(val_norm_mask)]), z_val_norm.shape[0]
            ),
        )
        info.update(
            positives=f"{n_syn} perturbed training-normal features ({', '.join(gen.kinds)})",
            validation=f"{z_val_norm.shape[0]} validation normals vs as many perturbed validation-normal features",
            labelled_anomalies_seen=0,
            normal_only=True,
        )
    elif opts.anomalies == "synthetic_image":
        pos = _latents(net, feats.synthetic["train"])
        val_pos = _latents(net, feats.synthetic["val"])
        info.update(
            positives=f"{pos.shape[0]} training normals with painted opacities ({opts.image_copies} copies each)",
            validation=f"{z_val_norm.shape[0]} validation normals vs the same with painted opacities",
            labelled_anomalies_seen=0,
            normal_only=True,
        )
    else:  # labelled: half the validation anomalies train the scorer, the other half early-stops it
        abn = np.flatnonzero(val_y == 1)
        if abn.size < 2:
            raise InputError("scorer.anomalies 'labelled' needs at least 2 validation anomalies", field="task.scorer")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(abn)
        half = perm[: abn.size // 2]
        rest = perm[abn.size // 2 :]
        pos = _latents(net, feats.val[torch.as_tensor(half)])
        val_pos = _latents(net, feats.val[torch.as_tensor(rest)])
        info.update(
            positives=f"{half.size} labelled validation anomalies (the design's labelled scorer)",
            validation=f"{z_val_norm.shape[0]} validation normals vs the other {rest.size} validation anomalies",
            labelled_anomalies_seen=int(abn.size),
            labelled_indices_in_val=[int(i) for i in sorted(half)],
            normal_only=False,
        )
    train_z = torch.cat([z_train_norm, pos])
    train_y = torch.cat([torch.zeros(z_train_norm.shape[0]), torch.ones(pos.shape[0])])
    val_z = torch.cat([z_val_norm, val_pos])
    val_t = torch.cat([torch.zeros(z_val_norm.shape[0]), torch.ones(val_pos.shape[0])])
    info["n_train"] = {"negatives": int(z_train_norm.shape[0]), "positives": int(pos.shape[0])}
    return (train_z, train_y), (val_z, val_t), info


@torch.no_grad()
def out_of_fold_gaussian_distances(standardized: torch.Tensor, *, folds: int = 5, seed: int = 0) -> torch.Tensor:
    """Each training normal's Mahalanobis distance to a Gaussian fitted *without* its fold, ``(N,)``.

    Why: in-sample distances of a Gaussian fitted in D dimensions to N ≈ 2D samples are far smaller than any new
    image's, so z-statistics taken from them would put every new normal many standard deviations out. The
    out-of-fold distances are what a new normal looks like; the shipped Gaussian is still fitted on all of them.
    """
    from vitalens.nets.anomaly_scoring import GaussianDistance

    n = standardized.shape[0]
    folds = max(2, min(folds, n // 2))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out = torch.empty(n, dtype=standardized.dtype)
    for k in range(folds):
        held = order[k::folds]
        keep = torch.ones(n, dtype=torch.bool)
        keep[held] = False
        g = GaussianDistance(standardized.shape[1]).fit(standardized[keep])
        out[held] = g(standardized[held]).to(out.dtype)
    return out


@torch.no_grad()
def score_features(net: Any, raw: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every component score of raw features ``(N, D)`` as numpy (``latent`` ``(N, latent_dim)``)."""
    net.eval().cpu()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, raw.shape[0], batch_size):
        for key, value in net.scores_from_features(raw[start : start + batch_size]).items():
            parts.setdefault(key, []).append(value.double().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def fit_pipeline(
    task: CxrAnomalyTask, bundle: DataBundle, *, out: Path, feats: Any | None = None, net: Any | None = None
) -> FittedPipeline:
    """Stages 1–5 (see the module docstring): a fitted net and every split's scores."""
    from vitalens.training.anomaly.modules import OptimConfig, ScorerModule, VaeModule
    from vitalens.training.heads import pick_device, restore_best, tensor_loader, tensor_trainer

    cfg, opts = task.recipe, task.options
    tc = cfg.train
    device = pick_device(tc.accelerator)
    n_train = len(bundle.train)
    task.fitted["net_kwargs"] = {"knn_bank_size": n_train, "knn_k": opts.knn_k, "output": "fusion"}
    if net is None:
        from vitalens.nets import create_net

        net = create_net(cfg.net.name, pretrained=cfg.net.pretrained, **task.net_kwargs())
    if feats is None:
        cache = Path(opts.feature_cache) if opts.feature_cache else out / "feature-cache"
        feats = encode_splits(task, bundle, net, device, cache_dir=cache)
    net = net.cpu()
    val_y = bundle.targets["val"][:, 0]

    # 2. standardisation on the training normals (augmented views included: they are normals too).
    vae_train_raw = feats.train if feats.train_augmented is None else torch.cat([feats.train, feats.train_augmented])
    net.feature_norm.fit(vae_train_raw)

    # 3. VAE on normal features.
    with torch.no_grad():
        x_train = net.project(net.standardize(vae_train_raw))
        x_val = net.project(net.standardize(feats.val[torch.as_tensor(val_y == 0)]))
    optim = OptimConfig(tc.lr_head, tc.weight_decay, tc.plateau_patience, tc.plateau_factor, tc.min_lr)
    vae_module = VaeModule(net.vae, optim)
    trainer, ckpt = tensor_trainer(tc, out, "vae", tc.max_epochs, tc.early_stopping_patience)
    trainer.fit(
        vae_module,
        tensor_loader(x_train, batch_size=tc.batch_size, shuffle=True, seed=cfg.seed),
        tensor_loader(x_val, batch_size=tc.batch_size, shuffle=False, seed=cfg.seed),
    )
    vae_info = {**restore_best(vae_module, ckpt), "epochs_run": trainer.current_epoch, "n_train": int(x_train.shape[0])}
    vae_info["n_val_normals"] = int(x_val.shape[0])
    net.vae.eval()

    # 4. scorer on latents.
    so = opts.scorer
    (tz, ty), (vz, vy), scorer_info = _scorer_data(task, net, feats, val_y)
    pos_weight = float((ty == 0).sum() / max(1.0, float((ty == 1).sum())))
    scorer_module = ScorerModule(
        net.scorer, OptimConfig(so.lr, tc.weight_decay, tc.plateau_patience, tc.plateau_factor, tc.min_lr), pos_weight
    )
    trainer, ckpt = tensor_trainer(tc, out, "scorer", so.max_epochs, so.early_stopping_patience)
    trainer.fit(
        scorer_module,
        tensor_loader(tz, ty, batch_size=so.batch_size, shuffle=True, seed=cfg.seed + 1),
        tensor_loader(vz, vy, batch_size=so.batch_size, shuffle=False, seed=cfg.seed + 1),
    )
    scorer_info.update(restore_best(scorer_module, ckpt), epochs_run=trainer.current_epoch, pos_weight=pos_weight)
    net.eval()

    # 5. statistics of the training normals (originals only).
    with torch.no_grad():
        fs_train = net.standardize(feats.train)
        vae_train = net.vae.scores(net.project(fs_train))
        net.recon_z.fit(vae_train["recon"])
        net.kl_z.fit(vae_train["kl"])
        net.gaussian.fit(fs_train)
        net.gaussian_z.fit(out_of_fold_gaussian_distances(fs_train, folds=5, seed=cfg.seed))
        if net.knn is not None:
            net.knn.fit(fs_train)
            net.knn_z.fit(net.knn(fs_train, exclude_self=True))

    scores = {name: score_features(net, feats.split(name)) for name in ("train", "val", "test")}
    targets = {name: bundle.targets[name][:, 0].astype(int) for name in ("train", "val", "test")}
    classes = {name: bundle.split(name).classes for name in ("train", "val", "test")}
    info = {"vae": vae_info, "scorer": scorer_info, "gaussian_shrinkage": net.gaussian.shrinkage, "features": feats}
    return FittedPipeline(net=net, scores=scores, targets=targets, classes=classes, info=info)


def component_metrics(
    fitted: FittedPipeline, outputs: list[str], *, n_boot: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per score: validation AUROC, test AUROC with a bootstrap interval, and test AUROC per abnormal class."""
    from sklearn.metrics import roc_auc_score

    from vitalens.training.bootstrap import bootstrap_auroc

    out: dict[str, dict[str, Any]] = {}
    yv, yt = fitted.targets["val"], fitted.targets["test"]
    ct = fitted.classes["test"]
    for name in outputs:
        if name not in fitted.scores["test"]:
            continue
        sv, st = fitted.scores["val"][name], fitted.scores["test"][name]
        entry: dict[str, Any] = {
            "val_auroc": float(roc_auc_score(yv, sv)) if 0 < yv.sum() < yv.size else None,
            "test": bootstrap_auroc(yt, st, n_boot=n_boot, seed=seed),
            "test_per_class": {},
        }
        for cls in sorted(set(ct[yt == 1].tolist())):
            mask = (yt == 0) | (ct == cls)
            entry["test_per_class"][cls] = bootstrap_auroc(yt[mask], st[mask], n_boot=n_boot, seed=seed)
        out[name] = entry
    return out


def out_of_distribution_limits(fitted: FittedPipeline) -> dict[str, Any]:
    """Limits on the Mahalanobis distance beyond which an input is not scored as a chest radiograph.

    An anomaly detector scores "unlike the normals"; a photograph that is no chest radiograph at all (a fundus
    photograph, a document) is maximally unlike them and would get a confident "abnormal". The validation split
    holds normal *and* abnormal radiographs: an input further from the training normals than every one of them is
    flagged (scored, with a warning), and one beyond ``median + 3·(max − median)`` of them is refused.
    """
    d = np.asarray(fitted.scores["val"]["mahalanobis_distance"], dtype=float)
    med, top = float(np.median(d)), float(d.max())
    refuse = med + 3.0 * (top - med)
    test = np.asarray(fitted.scores["test"]["mahalanobis_distance"], dtype=float)
    return {
        "statistic": "mahalanobis_distance",
        "flag_above": top,
        "refuse_above": refuse,
        "method": "flag above the largest distance of any validation radiograph (normal or abnormal); refuse above "
        "median + 3·(max − median) of them",
        "n_validation": int(d.size),
        "test_flagged": int(((test > top) & (test <= refuse)).sum()),
        "test_refused": int((test > refuse).sum()),
        "n_test": int(test.size),
    }


def _choose_output(task: CxrAnomalyTask, comps: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    opts = task.options
    if opts.output != "auto":
        return opts.output, {"method": f"fixed by the recipe (task.output: {opts.output})"}
    cands = [c for c in opts.auto_candidates if c in comps and comps[c]["val_auroc"] is not None]
    if not cands:
        logger.warning("no validation anomalies to choose the shipped score; shipping the design's fusion")
        return "fusion", {"method": "no validation anomalies: the design's fusion by default"}
    best = max(cands, key=lambda c: comps[c]["val_auroc"])  # ties: the earlier candidate (max keeps the first)
    return best, {
        "method": "highest validation AUROC among the normal-only candidates",
        "candidates": {c: comps[c]["val_auroc"] for c in cands},
    }


def train_anomaly(task: CxrAnomalyTask, *, data_root: Path, out: Path, resume: bool = False) -> Path:
    """The whole ``cxr.anomaly`` run: fit, choose, threshold, write ``out/artifact`` and ``out/report.{json,md}``.

    Raises:
        InputError: ``resume`` (the stages are short; rerun instead), or data the task cannot split.
    """
    from vitalens.artifacts import CalibrationSpec, save_artifact
    from vitalens.nets.cxr_anomaly import ANOMALY_OUTPUTS
    from vitalens.training.bootstrap import bootstrap_metric, sensitivity_specificity
    from vitalens.training.engine import _card_metrics, build_card, choose_thresholds
    from vitalens.training.metrics import nan_to_none
    from vitalens.training.report import evaluate_split, report_head, write_report

    if resume:
        raise InputError(
            "cxr.anomaly trains in short stages and cannot resume; run it again without --resume", field="resume"
        )
    cfg, opts = task.recipe, task.options
    bundle = task.build_data(data_root)
    fitted = fit_pipeline(task, bundle, out=out)
    net = fitted.net
    comps = component_metrics(fitted, list(ANOMALY_OUTPUTS), n_boot=opts.n_boot, seed=cfg.seed)
    chosen, selection = _choose_output(task, comps)
    net.output = chosen
    task.fitted["net_kwargs"]["output"] = chosen

    yv, yt = fitted.targets["val"], fitted.targets["test"]
    sv, st = fitted.scores["val"][chosen], fitted.scores["test"][chosen]
    q_normal = float(np.quantile(sv[yv == 0], _NORMAL_QUANTILE))
    if 0 < yv.sum() < yv.size:
        thresholds, threshold_method = choose_thresholds(cfg.thresholds, task.labels, yv[:, None], sv[:, None])
    else:
        thresholds = {"anomaly": q_normal}
        threshold_method = (
            f"{_NORMAL_QUANTILE:.0%} quantile of the validation normals' scores (no validation anomalies)"
        )
    thr = thresholds["anomaly"]
    labels = list(task.labels)
    splits = {
        name: evaluate_split(
            labels,
            fitted.targets[name][:, None],
            fitted.scores[name][chosen][:, None],
            [thr],
            groups={"class": fitted.classes[name]},
            n_bins=cfg.calibration.n_bins,
        )
        for name in ("val", "test")
    }
    sens_ci = bootstrap_metric(
        yt, st, lambda a, b: sensitivity_specificity(a, b, thr)[0], n_boot=opts.n_boot, seed=cfg.seed
    )
    spec_ci = bootstrap_metric(
        yt, st, lambda a, b: sensitivity_specificity(a, b, thr)[1], n_boot=opts.n_boot, seed=cfg.seed
    )
    sens_q, spec_q = sensitivity_specificity(yt, st, q_normal)
    ood = out_of_distribution_limits(fitted)
    scorer_info = fitted.info["scorer"]
    shipped_uses_scorer = chosen in ("scorer", "fusion")
    task.fitted["card_extra"] = nan_to_none(
        {
            "pipeline": net.describe(),
            "shipped_score": chosen,
            "shipped_score_is_probability": False,
            "selection": selection,
            "trained_on_normal_images_only": bool(scorer_info["normal_only"]) or not shipped_uses_scorer,
            "labelled_images_seen": {
                "vae": 0,
                "gaussian_knn_zstats": 0,
                "scorer": scorer_info["labelled_anomalies_seen"],
                "threshold_and_selection": int(yv.sum()),
            },
            "scorer_training": {k: v for k, v in scorer_info.items() if k != "checkpoint"},
            "vae_training": {k: v for k, v in fitted.info["vae"].items() if k != "checkpoint"},
            "components_test": comps,
            "operating_point": {
                "threshold": thr,
                "method": threshold_method,
                "test_sensitivity": sens_ci,
                "test_specificity": spec_ci,
            },
            "ood": ood,
            "normal_only_operating_point": {
                "threshold": q_normal,
                "method": f"{_NORMAL_QUANTILE:.0%} quantile of the validation normals' {chosen} scores",
                "test_sensitivity": sens_q,
                "test_specificity": spec_q,
            },
        }
    )
    metrics = _card_metrics(splits["test"])
    metrics["auroc_ci95"] = [comps[chosen]["test"]["ci_low"], comps[chosen]["test"]["ci_high"]]
    metrics["shipped_score"] = chosen
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds=thresholds,
        threshold_method=f"{threshold_method} ({chosen} score)",
        calibration=CalibrationSpec(method="none", params={}, fitted_on=None),
        metrics=metrics,
        subgroups=splits["test"].get("subgroups", {}),
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, net.cpu().eval(), card)
    report = {
        **report_head(card, artifact=artifact, data=data_root),
        "shipped_score": chosen,
        "selection": selection,
        "components": comps,
        "training": {
            "vae": task.fitted["card_extra"]["vae_training"],
            "scorer": task.fitted["card_extra"]["scorer_training"],
        },
        "splits": splits,
        "recipe": cfg.to_dict(),
    }
    write_report(out, report, labels=labels, y=yt[:, None], probs=st[:, None], plot_split="test")
    auc = comps[chosen]["test"]
    logger.info(
        "trained cxr.anomaly: shipped %s, test AUROC %.3f [%.3f, %.3f] (n = %d); artifact %s",
        chosen,
        auc["value"] if not math.isnan(auc["value"]) else float("nan"),
        auc["ci_low"],
        auc["ci_high"],
        auc["n"],
        artifact,
    )
    return artifact
