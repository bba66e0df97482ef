"""The staged run of ``retina.fusion``: frozen embeddings → three heads on the same virtual pairs → calibration,
threshold, comparison, card and report.

Why three heads: "does fusion help?" is only answered against each modality alone under the same conditions, so
the fundus-only and OCT-only heads are the same :class:`~vitalens.nets.fusion_head.EmbeddingFusionHead` on one
embedding, trained with the same optimiser, epochs and pairs. Each head's temperature is fitted on the validation
pairs; the fusion head's threshold is Youden's J on them; all three are scored once on the test pairs — AUROC with a
stratified bootstrap interval, the paired bootstrap difference fusion − each single modality, Brier score and ECE
before and after temperature scaling, and reliability curves. Only the fusion head ships.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vitalens.errors import InputError

if TYPE_CHECKING:
    from vitalens.training.tasks.retina_fusion import RetinaFusionTask

__all__ = ["train_fusion", "fit_head", "HEADS", "calibration_summary"]

logger = logging.getLogger(__name__)

#: Head name → the inputs it reads.
HEADS: dict[str, tuple[str, ...]] = {"fusion": ("fundus", "oct"), "fundus_only": ("fundus",), "oct_only": ("oct",)}


def _inputs(ds: Any, names: tuple[str, ...]) -> list[torch.Tensor]:
    return [getattr(ds, n) for n in names]


def fit_head(task: RetinaFusionTask, bundle: Any, name: str, *, out: Path) -> tuple[Any, dict[str, Any]]:
    """Train one head (``fusion``, ``fundus_only``, ``oct_only``) on the training pairs, early-stopped on val."""
    from vitalens.nets import create_net
    from vitalens.training.heads import BinaryHeadModule, OptimConfig, restore_best, tensor_loader, tensor_trainer

    cfg, ho = task.recipe, task.options.head
    names = HEADS[name]
    dims = [bundle.meta["dims"][n] for n in names]
    kwargs = {**cfg.net.kwargs, "dims": dims, "modalities": list(names)}
    torch.manual_seed(cfg.seed)
    head = create_net(cfg.net.name, pretrained=False, **kwargs)
    head.fit_standardisation(*_inputs(bundle.train, names))
    y_train = torch.as_tensor(bundle.train.labels, dtype=torch.float32)
    y_val = torch.as_tensor(bundle.val.labels, dtype=torch.float32)
    pos_weight = float((y_train == 0).sum() / max(1.0, float((y_train == 1).sum())))
    optim = OptimConfig(ho.lr, ho.weight_decay, cfg.train.plateau_patience, cfg.train.plateau_factor, cfg.train.min_lr)
    module = BinaryHeadModule(head, optim, pos_weight)
    trainer, ckpt = tensor_trainer(cfg.train, out, name, ho.max_epochs, ho.early_stopping_patience)
    trainer.fit(
        module,
        tensor_loader(*_inputs(bundle.train, names), y_train, batch_size=ho.batch_size, shuffle=True, seed=cfg.seed),
        tensor_loader(*_inputs(bundle.val, names), y_val, batch_size=ho.batch_size, shuffle=False, seed=cfg.seed),
    )
    info = {**restore_best(module, ckpt), "epochs_run": trainer.current_epoch, "pos_weight": pos_weight}
    info.pop("checkpoint", None)
    return head.eval(), {**info, "kwargs": kwargs}


@torch.no_grad()
def _logits(head: Any, ds: Any, names: tuple[str, ...]) -> np.ndarray:
    head.eval()
    return head(*_inputs(ds, names)).reshape(-1).double().numpy()


def calibration_summary(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Brier score and ECE before/after temperature scaling, and the calibrated reliability curve."""
    from vitalens.training.calibration import expected_calibration_error, reliability_curve

    return {
        "brier_uncalibrated": float(np.mean((raw - y) ** 2)),
        "brier": float(np.mean((calibrated - y) ** 2)),
        "ece_uncalibrated": float(expected_calibration_error(raw, y, n_bins)),
        "ece": float(expected_calibration_error(calibrated, y, n_bins)),
        "reliability": reliability_curve(calibrated, y, n_bins),
    }


def train_fusion(task: RetinaFusionTask, *, data_root: Path, out: Path, resume: bool = False) -> Path:
    """The whole run; writes ``out/artifact`` (the fusion head + card) and ``out/report.{json,md}``."""
    from scipy.special import expit

    from vitalens.artifacts import CalibrationSpec, save_artifact
    from vitalens.training.bootstrap import bootstrap_auroc, bootstrap_paired_delta, sensitivity_specificity
    from vitalens.training.calibration import fit_temperature
    from vitalens.training.engine import _card_metrics, build_card, choose_thresholds
    from vitalens.training.metrics import nan_to_none
    from vitalens.training.report import evaluate_split, report_head, write_report

    if resume:
        raise InputError(
            "retina.fusion trains three small heads in minutes and cannot resume; run it again", field="resume"
        )
    cfg, opts = task.recipe, task.options
    bundle = task.build_data(data_root)
    for split in ("train", "val", "test"):
        y = bundle.split(split).labels
        if y.size == 0 or y.min() == y.max():
            raise InputError(f"the {split} split has {y.size} pairs of one class: too few images", field="data")
    task._dims = [bundle.meta["dims"]["fundus"], bundle.meta["dims"]["oct"]]  # type: ignore[attr-defined]
    heads: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    yv, yt = bundle.val.labels, bundle.test.labels
    probs_test: dict[str, np.ndarray] = {}
    for name, names in HEADS.items():
        head, info = fit_head(task, bundle, name, out=out)
        heads[name] = head
        lv, lt = _logits(head, bundle.val, names), _logits(head, bundle.test, names)
        temperature = float(fit_temperature(lv, yv))
        pv, pt = expit(lv / temperature), expit(lt / temperature)
        probs_test[name] = pt
        results[name] = {
            "inputs": list(names),
            "training": info,
            "temperature": temperature,
            "val_auroc": bootstrap_auroc(yv, pv, n_boot=200, seed=cfg.seed)["value"],
            "test_auroc": bootstrap_auroc(yt, pt, n_boot=opts.n_boot, seed=cfg.seed),
            "calibration_test": calibration_summary(yt.astype(float), expit(lt), pt, cfg.calibration.n_bins),
        }
    for single in ("fundus_only", "oct_only"):
        results["fusion"][f"delta_auroc_vs_{single}"] = bootstrap_paired_delta(
            yt, probs_test["fusion"], probs_test[single], n_boot=opts.n_boot, seed=cfg.seed
        )

    fusion = heads["fusion"]
    temperature = results["fusion"]["temperature"]
    pv = expit(_logits(fusion, bundle.val, HEADS["fusion"]) / temperature)
    thresholds, threshold_method = choose_thresholds(cfg.thresholds, task.labels, yv[:, None], pv[:, None])
    thr = thresholds["disease"]
    pt = probs_test["fusion"]
    sens, spec = sensitivity_specificity(yt, pt, thr)
    splits = {
        "val": evaluate_split(task.labels, yv[:, None], pv[:, None], [thr], n_bins=cfg.calibration.n_bins),
        "test": evaluate_split(
            task.labels,
            yt[:, None],
            pt[:, None],
            [thr],
            raw_probs=expit(_logits(fusion, bundle.test, HEADS["fusion"]))[:, None],
            n_bins=cfg.calibration.n_bins,
        ),
    }
    task._card_extra = nan_to_none(  # type: ignore[attr-defined]
        {
            "comparison_test": results,
            "operating_point": {"threshold": thr, "test_sensitivity": sens, "test_specificity": spec},
            "disease_definition": "fundus: ICDR grade ≥ 1; OCT: CNV, DME or DRUSEN",
        }
    )
    metrics = _card_metrics(splits["test"])
    metrics["auroc_ci95"] = [results["fusion"]["test_auroc"]["ci_low"], results["fusion"]["test_auroc"]["ci_high"]]
    metrics["single_modality_auroc"] = {k: results[k]["test_auroc"]["value"] for k in ("fundus_only", "oct_only")}
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds=thresholds,
        threshold_method=threshold_method,
        calibration=CalibrationSpec(method="temperature", params={"temperature": temperature}, fitted_on="val"),
        metrics=metrics,
        subgroups={},
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, fusion.cpu().eval(), card)
    report = {
        **report_head(card, artifact=artifact, data=data_root),
        "virtual_pairs": card.extra["virtual_pairs"],
        "encoders": card.extra["encoders"],
        "comparison": results,
        "splits": splits,
        "recipe": cfg.to_dict(),
    }
    write_report(out, report, labels=list(task.labels), y=yt[:, None], probs=pt[:, None], plot_split="test")
    logger.info(
        "trained retina.fusion: test AUROC fusion %.3f, fundus only %.3f, OCT only %.3f (n = %d virtual pairs)",
        results["fusion"]["test_auroc"]["value"],
        results["fundus_only"]["test_auroc"]["value"],
        results["oct_only"]["test_auroc"]["value"],
        yt.size,
    )
    return artifact
