"""The staged run of ``retina.fusion``: frozen embeddings → three heads on the same virtual pairs → calibration,
threshold, comparison, card and report.

Why three heads: "does fusion help?" is only answered against each modality alone under the same conditions, so
the fundus-only and OCT-only heads are the same :class:`~vitalens.nets.fusion_head.EmbeddingFusionHead` on one
embedding, trained with the same optimiser, epochs and pairs. Each head's temperature is fitted on the validation
pairs; the fusion head's threshold is Youden's J on them; all three are scored once on the test pairs — AUROC with a
stratified bootstrap interval, the paired bootstrap difference fusion − each single modality, Brier score and ECE
before and after temperature scaling, and reliability curves. Only the fusion head ships.

The multiclass head (``task.head.kind: multiclass``, :func:`train_fusion_multiclass`) predicts the fundus's DR grade
and the scan's OCT class from the same pairs' concatenated embeddings; its peers are the encoders' *own* analyzers
(``fundus.dr`` on the photograph, ``oct.kermany4`` on the scan, each through its card's output and calibration), on
the same test pairs, because those are what a user already gets without fusion.
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

__all__ = [
    "train_fusion",
    "train_fusion_multiclass",
    "fit_head",
    "fit_multiclass_head",
    "HEADS",
    "calibration_summary",
    "group_summary",
]

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


# -- the multiclass head (DR grade × OCT class) ------------------------------------------------------------------
def fit_multiclass_head(task: RetinaFusionTask, bundle: Any, *, out: Path) -> tuple[Any, dict[str, Any]]:
    """Train the two-softmax head (DR grade, OCT class) on the training pairs, early-stopped on the validation loss
    (the sum of both cross-entropies)."""
    from vitalens.nets import create_net
    from vitalens.training.heads import (
        GroupedSoftmaxHeadModule,
        OptimConfig,
        restore_best,
        tensor_loader,
        tensor_trainer,
    )
    from vitalens.training.tasks.retina_fusion import MULTICLASS_GROUPS

    cfg, ho = task.recipe, task.options.head
    names = HEADS["fusion"]
    groups = tuple(len(c) for c in MULTICLASS_GROUPS.values())
    dims = [bundle.meta["dims"][n] for n in names]
    # the task's kwargs (the recipe's, the groups, the std floor's default), sized by this bundle's embeddings
    kwargs = {**task.net_kwargs(), "dims": dims, "modalities": list(names)}
    torch.manual_seed(cfg.seed)
    head = create_net(cfg.net.name, pretrained=False, **kwargs)
    head.fit_standardisation(*_inputs(bundle.train, names))
    y_train = torch.as_tensor(bundle.train.classes, dtype=torch.long)
    y_val = torch.as_tensor(bundle.val.classes, dtype=torch.long)
    optim = OptimConfig(ho.lr, ho.weight_decay, cfg.train.plateau_patience, cfg.train.plateau_factor, cfg.train.min_lr)
    module = GroupedSoftmaxHeadModule(head, optim, groups)
    trainer, ckpt = tensor_trainer(cfg.train, out, "multiclass", ho.max_epochs, ho.early_stopping_patience)
    trainer.fit(
        module,
        tensor_loader(*_inputs(bundle.train, names), y_train, batch_size=ho.batch_size, shuffle=True, seed=cfg.seed),
        tensor_loader(*_inputs(bundle.val, names), y_val, batch_size=ho.batch_size, shuffle=False, seed=cfg.seed),
    )
    info = {**restore_best(module, ckpt), "epochs_run": trainer.current_epoch}
    info.pop("checkpoint", None)
    return head.eval(), {**info, "kwargs": kwargs}


@torch.no_grad()
def _raw(head: Any, ds: Any) -> np.ndarray:
    head.eval()
    out: np.ndarray = head(*_inputs(ds, HEADS["fusion"])).double().numpy()
    return out


def fit_softmax_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """``T`` in [0.05, 20] minimising the NLL of ``softmax(logits / T)`` for class indices ``y`` (1 when ``y`` holds
    one class: nothing to fit) — the softmax heads' own validation fit (:func:`vitalens.training.problems.fit_output`)
    applied to one group's columns."""
    from vitalens.training.problems import Problem, fit_output

    z, t = np.asarray(logits, dtype=float), np.asarray(y, dtype=int)
    if t.size == 0:
        return 1.0
    k = z.shape[1]
    calibration, _ = fit_output(Problem("multiclass", "softmax", k), "temperature", z, np.eye(k)[t])
    return float(calibration.params.get("temperature", 1.0))


def _macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    from vitalens.training.multiclass_metrics import macro_auroc_ovr

    return macro_auroc_ovr(y, p)[0]


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float((p.argmax(1) == y).mean()) if y.size else float("nan")


def _metric_fns(k: int, ordinal: bool) -> dict[str, Any]:
    from vitalens.training.multiclass_metrics import quadratic_kappa, top_label_ece

    fns: dict[str, Any] = {"accuracy": _accuracy, "macro_auroc": _macro_auroc}
    if ordinal:
        fns["quadratic_kappa"] = lambda y, p: quadratic_kappa(y, p.argmax(1), k)
    fns["top_label_ece"] = lambda y, p: top_label_ece(p, y)
    return fns


def _ci(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": res["value"],
        "ci_low": res["low"],
        "ci_high": res["high"],
        "n": res["n"],
        "n_clusters": res["n_clusters"],
    }


def group_summary(
    y: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    *,
    raw_probs: np.ndarray | None = None,
    ordinal: bool = False,
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    n_bins: int = 10,
) -> dict[str, Any]:
    """One exclusive label set (DR grade or OCT class) of one model on the test pairs: the full multi-class metrics,
    accuracy / macro AUROC / (quadratic kappa) / top-label ECE each with a percentile bootstrap 95 % interval
    (resampling ``clusters``: the OCT scan, which several pairs may share), and the top-label reliability curve."""
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import reliability_curve
    from vitalens.training.multiclass_metrics import multiclass_metrics, top_label_ece

    k = len(labels)
    onehot = np.eye(k)[y]
    out: dict[str, Any] = {"metrics": multiclass_metrics(onehot, probs, labels, ordinal=ordinal, n_bins=n_bins)}
    for name, fn in _metric_fns(k, ordinal).items():
        out[name] = _ci(bootstrap_ci(fn, y, probs, clusters=clusters, n_boot=n_boot, seed=seed))
    if raw_probs is not None:
        out["top_label_ece_uncalibrated"] = float(top_label_ece(raw_probs, y, n_bins))
    correct = (probs.argmax(1) == y).astype(float)
    out["reliability"] = reliability_curve(probs.max(1), correct, n_bins)
    return out


def _paired_deltas(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, *, ordinal: bool, clusters: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    """Fusion − single modality on the same pairs, per metric, with a paired cluster bootstrap interval."""
    from vitalens.training.bootstrap import bootstrap_ci

    out: dict[str, Any] = {}
    for name, fn in _metric_fns(a.shape[1], ordinal).items():
        if name == "top_label_ece":
            continue

        def delta(yy: np.ndarray, pa: np.ndarray, pb: np.ndarray, fn: Any = fn) -> float:
            return float(fn(yy, pa) - fn(yy, pb))

        out[name] = _ci(bootstrap_ci(delta, y, a, b, clusters=clusters, n_boot=n_boot, seed=seed))
    return out


def _alone(task: RetinaFusionTask, modality: str, emb: torch.Tensor, classes: tuple[str, ...]) -> dict[str, Any]:
    """The encoder's own analyzer output on these images: its classifier on the same pooled embedding, through its
    card's output link and calibration (what ``fundus.dr`` / ``oct.kermany4`` report), columns in ``classes``
    order; also uncalibrated."""
    from vitalens.artifacts import CalibrationSpec, predict_probabilities
    from vitalens.artifacts.outputs import output_probabilities
    from vitalens.training.tasks.retina_fusion import _encoder_net

    ref = task.encoder(modality)  # type: ignore[arg-type]
    net = _encoder_net(ref)
    with torch.no_grad():
        raw = net.forward_head(emb.float()).double().numpy()
    order = [list(ref.card.labels).index(c) for c in classes]
    return {
        "probs": predict_probabilities(ref.card, raw)[:, order],
        "raw_probs": output_probabilities(ref.card.output, CalibrationSpec(), raw)[:, order],
        "analyzer": ref.analyzer,
        "model": ref.card.name,
    }


def train_fusion_multiclass(task: RetinaFusionTask, *, data_root: Path, out: Path, resume: bool = False) -> Path:
    """The multiclass run; writes ``out/artifact`` (the two-softmax head + card) and ``out/report.{json,md}``.

    The pairs are the binary run's (same rule, same seeds). The head's two temperatures are fitted on the validation
    pairs, one per softmax group; each group is scored once on the test pairs beside its encoder's own analyzer.
    """
    from vitalens.artifacts import CalibrationSpec, OutputSpec, save_artifact
    from vitalens.artifacts.outputs import output_probabilities, softmax_groups
    from vitalens.training.engine import build_card
    from vitalens.training.metrics import nan_to_none
    from vitalens.training.report import report_head, write_report
    from vitalens.training.tasks.retina_fusion import MULTICLASS_GROUPS

    if resume:
        raise InputError(
            "retina.fusion trains one small head in minutes and cannot resume; run it again", field="resume"
        )
    cfg, opts = task.recipe, task.options
    bundle = task.build_data(data_root)
    for split in ("train", "val"):
        ds = bundle.split(split)
        for k, group in enumerate(MULTICLASS_GROUPS):
            present = np.unique(ds.classes[:, k]) if len(ds) else np.array([])
            if present.size < 2:
                raise InputError(
                    f"the {split} split's {len(ds)} pairs hold {present.size} {group.replace('_', ' ')} class(es): too "
                    "few images for the multiclass head",
                    field="data",
                )
    if len(bundle.test) == 0:
        raise InputError("the test split has no pairs: too few images", field="data")
    task._dims = [bundle.meta["dims"]["fundus"], bundle.meta["dims"]["oct"]]  # type: ignore[attr-defined]
    head, info = fit_multiclass_head(task, bundle, out=out)
    zv, zt = _raw(head, bundle.val), _raw(head, bundle.test)
    yv, yt = bundle.val.classes, bundle.test.classes
    clusters = np.asarray(bundle.test.oct_ids).astype(str)  # pairs sharing one OCT scan resample together
    modality = {"dr_grade": "fundus", "oct_class": "oct"}
    encoder_of = {"dr_grade": "fundus.dr", "oct_class": "oct.kermany4"}
    output = OutputSpec(
        problem="multiclass", head="softmax", params={"groups": {g: len(c) for g, c in MULTICLASS_GROUPS.items()}}
    )
    columns = softmax_groups(output)
    temperatures = {
        group: fit_softmax_temperature(zv[:, columns[group]], yv[:, k]) for k, group in enumerate(MULTICLASS_GROUPS)
    }
    calibration = CalibrationSpec(method="temperature", params={"group_temperatures": temperatures}, fitted_on="val")
    # the test probabilities through the card's own output link, as the analyzer will compute them
    probs_test = output_probabilities(output, calibration, zt)
    raw_test = output_probabilities(output, CalibrationSpec(), zt)
    results: dict[str, Any] = {}
    for k, (group, classes) in enumerate(MULTICLASS_GROUPS.items()):
        cols, t = columns[group], temperatures[group]
        pt = probs_test[:, cols]
        ordinal = group == "dr_grade"
        alone = _alone(task, modality[group], getattr(bundle.test, modality[group]), classes)
        common = {"ordinal": ordinal, "clusters": clusters, "n_boot": opts.n_boot, "seed": cfg.seed}
        results[group] = {
            "classes": list(classes),
            "label_of": f"the {'fundus photograph' if ordinal else 'OCT scan'} of each pair",
            "temperature": t,
            "fusion": group_summary(
                yt[:, k],
                pt,
                list(classes),
                raw_probs=raw_test[:, cols],
                **common,  # type: ignore[arg-type]
            ),
            "alone": {
                "analyzer": alone["analyzer"],
                "model": alone["model"],
                **group_summary(yt[:, k], alone["probs"], list(classes), raw_probs=alone["raw_probs"], **common),  # type: ignore[arg-type]
            },
            "delta_fusion_minus_alone": _paired_deltas(yt[:, k], pt, alone["probs"], **common),  # type: ignore[arg-type]
            "peer": f"{encoder_of[group]} alone on the same test pairs (its card's output and calibration)",
        }
    metrics: dict[str, Any] = {"n_test_pairs": int(len(bundle.test))}
    for group, r in results.items():
        keys = ("accuracy", "quadratic_kappa", "macro_auroc", "top_label_ece")
        metrics[group] = {
            key: {"fusion": r["fusion"][key]["value"], "alone": r["alone"][key]["value"]}
            for key in keys
            if key in r["fusion"]
        }
        metrics[group]["accuracy_ci95"] = [r["fusion"]["accuracy"]["ci_low"], r["fusion"]["accuracy"]["ci_high"]]
    task._card_extra = nan_to_none(  # type: ignore[attr-defined]
        {
            "comparison_multiclass_test": results,
            "groups": {g: list(c) for g, c in MULTICLASS_GROUPS.items()},
            "disease_definition": "pairs aligned by fundus ICDR grade ≥ 1 ↔ OCT CNV, DME or DRUSEN (grade 0 ↔ NORMAL)",
        }
    )
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds={},
        threshold_method="the most probable class of each group (DR grade, OCT class); no threshold",
        calibration=calibration,
        metrics=metrics,
        subgroups={},
        output=output,
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, head.cpu().eval(), card)
    splits = {
        f"test · {group.replace('_', ' ')} ({'fusion' if who == 'fusion' else r['alone']['analyzer'] + ' alone'})": {
            "n": r[who]["metrics"]["n"],
            "multiclass": {**r[who]["metrics"], "top_label_ece_uncalibrated": r[who].get("top_label_ece_uncalibrated")},
            "reliability": r[who]["reliability"],
        }
        for group, r in results.items()
        for who in ("fusion", "alone")
    }
    report = {
        **report_head(card, artifact=artifact, data=data_root),
        "virtual_pairs": card.extra["virtual_pairs"],
        "encoders": card.extra["encoders"],
        "head": "multiclass",
        "training": info,
        "comparison_multiclass": results,
        "splits": splits,
        "recipe": cfg.to_dict(),
    }
    y_all = np.concatenate([np.eye(len(c))[yt[:, k]] for k, c in enumerate(MULTICLASS_GROUPS.values())], axis=1)
    write_report(out, report, labels=list(task.labels), y=y_all, probs=probs_test, plot_split="test")
    logger.info(
        "trained retina.fusion (multiclass): test DR-grade accuracy %.3f (fundus.dr alone %.3f), OCT-class accuracy "
        "%.3f (oct.kermany4 alone %.3f), n = %d virtual pairs",
        results["dr_grade"]["fusion"]["accuracy"]["value"],
        results["dr_grade"]["alone"]["accuracy"]["value"],
        results["oct_class"]["fusion"]["accuracy"]["value"],
        results["oct_class"]["alone"]["accuracy"]["value"],
        len(bundle.test),
    )
    return artifact
