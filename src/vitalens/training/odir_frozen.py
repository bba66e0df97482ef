"""The staged ``fundus.odir`` run on a frozen trunk: cached features → k-fold heads → out-of-fold calibration →
one net averaging the fold heads, with a card whose figures are out-of-fold.

Why: a recipe with ``task.frozen_trunk`` set trains on a CPU in minutes (see :mod:`vitalens.training.odir_features`)
and every one of the patients gets an out-of-fold prediction, so calibration and thresholds are fitted on all of them
(not on ~49 validation patients) and the card's ECE is cross-fitted: each fold's probabilities come from a
calibration fitted on the other folds, which is what the calibration fitted on all folds gives a new patient. The
bundled net is the ImageNet trunk plus the k fold heads (:class:`~vitalens.nets.bilateral.BilateralFusionNet` with
``n_heads``), whose logits it averages; one encoder pass, as for a single head.

Age is z-scored with the mean and SD of all patients' ages (no label is involved), so the k heads and the card share
one normalisation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vitalens.training.tasks.fundus_odir import FundusOdirTask

__all__ = ["train_frozen_odir", "load_heads_into_net"]

logger = logging.getLogger(__name__)


def load_heads_into_net(net: Any, heads: list[Any]) -> None:
    """Copy trained :class:`~vitalens.training.odir_heads.FeatureHead` parameters into the net's heads, in order."""
    n = 1 + len(net.extra_heads)
    if len(heads) != n:
        raise ValueError(f"the net has {n} heads, got {len(heads)} trained heads")
    for i, head in enumerate(heads):
        target = net if i == 0 else net.extra_heads[i - 1]
        for part in ("age_mlp", "fusion", "classifier"):
            module = getattr(target, part) if i == 0 else target[part]
            module.load_state_dict(getattr(head, part).state_dict())


def train_frozen_odir(task: FundusOdirTask, *, data_root: Path, out: Path) -> Path:
    """Run the frozen-trunk recipe of ``task``; returns the artifact folder ``out/artifact``."""
    from vitalens.artifacts import TrainingData, save_artifact
    from vitalens.data.odir import ODIR_LABELS, OdirDataset
    from vitalens.data.odir_keywords import eye_targets
    from vitalens.data.splits import patient_kfold
    from vitalens.data.torch_odir import age_stats
    from vitalens.errors import InputError
    from vitalens.nets import create_net
    from vitalens.training.calibration import crossfit_calibration, fit_calibration, sigmoid
    from vitalens.training.engine import _card_metrics, build_card, choose_thresholds
    from vitalens.training.odir_features import extract_features
    from vitalens.training.odir_heads import crossval_heads
    from vitalens.training.report import evaluate_split, report_head, write_report
    from vitalens.training.tasks._base import DataBundle
    from vitalens.training.tasks.fundus_odir import age_band

    cfg, opts = task.recipe, task.options
    frozen = opts.frozen_trunk
    if frozen is None:
        raise ValueError("train_frozen_odir needs task.frozen_trunk in the recipe")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = OdirDataset(Path(data_root))
    if cfg.data.max_patients is not None:
        dataset.records = dataset.records[: cfg.data.max_patients]
    k = cfg.data.n_folds
    if len(dataset) < 2 * k:
        raise InputError(f"{len(dataset)} patients are too few for {k} folds", field="data")
    y = dataset.targets
    ids = list(dataset.patient_ids)
    folds = np.zeros(len(ids), dtype=int)
    for fold, (_, test) in enumerate(patient_kfold(dataset.patient_ids, y, k=k, seed=task.split_seed)):
        folds[test] = fold
    probe = create_net(cfg.net.name, pretrained=False)
    backbone = str(probe.backbone)
    views = tuple(dict.fromkeys([*frozen.head.train_views, *frozen.head.test_views]))
    features = extract_features(
        dataset,
        backbone=backbone,
        pretrained=cfg.net.pretrained,
        size=opts.image_size,
        views=views,
        cache_dir=Path(frozen.cache_dir) if frozen.cache_dir else out / "feature-cache",
    )
    ages = dataset.ages.astype(np.float64)
    age_mean, age_std = age_stats(ages)
    head_cfg = frozen.head_config(seed=cfg.seed)
    oof = crossval_heads(
        features,
        ages,
        y,
        folds,
        head_cfg,
        eye_y=eye_targets(dataset.records),
        age_norm=(age_mean, age_std),
        keep_heads=True,
    )
    method = cfg.calibration.method
    per_label = cfg.calibration.per_label
    calibration = fit_calibration(method, oof.logits, y, per_label=per_label, fitted_on=f"out-of-fold ({k} folds)")
    probs = crossfit_calibration(method, oof.logits, y, folds, per_label=per_label)
    thresholds, threshold_method = choose_thresholds(cfg.thresholds, list(task.labels), y, probs)
    threshold_method += f" (out-of-fold predictions of {len(ids)} patients)"
    thr = np.asarray([thresholds[lab] for lab in task.labels])
    groups = {"sex": dataset.sexes, "age_band": np.asarray([age_band(float(a)) for a in ages])}
    metrics = evaluate_split(
        list(ODIR_LABELS),
        y.astype(int),
        probs,
        thr,
        raw_probs=sigmoid(oof.logits),
        groups=groups,
        extra=task.extra_metrics,
        n_bins=cfg.calibration.n_bins,
    )
    metrics["notes"] = [
        *metrics.get("notes", []),
        f"out-of-fold over {k} patient-level folds: each patient scored by the fold head that never saw it; "
        "probabilities cross-fitted (calibration fitted on the other folds); the bundled net averages the "
        f"{k * head_cfg.n_members} fold heads",
    ]
    heads = [h for members in oof.heads for h in members]
    cfg.net.kwargs.update({"n_heads": len(heads), "derived_normal": head_cfg.derived_normal})
    cfg.net.kwargs.update({"age_dim": head_cfg.age_dim, "head_hidden": list(head_cfg.head_hidden)})
    net = create_net(cfg.net.name, pretrained=cfg.net.pretrained, **task.net_kwargs())
    load_heads_into_net(net, heads)
    provenance = task.provenance(Path(data_root))
    bundle = DataBundle(
        train=[],
        val=[],
        test=[],
        targets={},
        provenance=provenance,
        datasets=["ODIR-5K"],
        n_patients=len(ids),
        # the fold heads together saw every patient: all are "train" for evaluate (its test is then external data)
        meta={"age_mean": float(age_mean), "age_std": float(age_std), "records": {"train": ids, "val": [], "test": []}},
    )
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds=thresholds,
        threshold_method=threshold_method,
        calibration=calibration,
        metrics={**_card_metrics(metrics), "split": "out-of-fold"},
        subgroups=metrics.get("subgroups", {}),
    )
    card = card.model_copy(
        update={
            "training_data": TrainingData(
                datasets=["ODIR-5K"],
                provenance=provenance,
                n_patients=len(ids),
                n_samples=len(ids),
                splits={
                    "unit": "patient",
                    "folds": k,
                    "seed": task.split_seed,
                    "sizes": {"out_of_fold": len(ids)},
                },
                description=f"{'Synthetic twin of ' if provenance == 'synthetic' else ''}ODIR-5K; {k}-fold "
                "patient-level cross-validation on a frozen ImageNet trunk: every patient scored once out of "
                "fold; calibration and thresholds fitted on the out-of-fold predictions, ECE cross-fitted; the "
                f"bundled net averages the {len(heads)} fold heads.",
            )
        }
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, net.cpu().eval(), card)
    report = {
        **report_head(card, artifact=artifact, data=data_root),
        "training": {
            "mode": "frozen trunk, k-fold heads",
            "folds": k,
            "head": head_cfg.to_dict(),
            "features": {"backbone": backbone, "size": opts.image_size, "views": list(views)},
            "epochs_run": head_cfg.epochs,
        },
        "splits": {"out-of-fold": metrics},
        "recipe": cfg.to_dict(),
    }
    write_report(out, report, labels=task.labels, y=y, probs=probs, plot_split="out-of-fold")
    logger.info("fundus.odir frozen trunk: out-of-fold macro AUROC %s; artifact %s", metrics["macro_auroc"], artifact)
    return artifact
