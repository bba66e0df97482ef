"""``train()``: one engine for every analyzer — recipe → Lightning fit → thresholds/calibration → artifact + report.

Why in this order: the best epoch is chosen on validation macro-AUROC; calibration and per-label thresholds are
then fitted on the *validation* predictions only, and the untouched test split is evaluated once at the end, so
the card's held-out metrics are honest. The artifact (weights + card) and the report are written last, together.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.training.recipe import Recipe, ThresholdSection, default_recipe_path

__all__ = ["train", "resolve_recipe", "choose_thresholds", "build_card", "trainer_kwargs"]

logger = logging.getLogger(__name__)


def trainer_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The Lightning ``Trainer`` arguments that place the run: accelerator, devices, strategy, nodes, sync BN.

    Why one function: the recipe is the only place a run's placement is chosen (``--set trainer.strategy=ddp``), and
    every Trainer the engine builds (training, fine-tuning) must get the same placement.
    """
    tr = recipe.trainer
    return {
        "accelerator": recipe.train.accelerator,
        "devices": tr.devices,
        "strategy": tr.strategy,
        "num_nodes": tr.num_nodes,
        "sync_batchnorm": tr.sync_batchnorm,
    }


def resolve_recipe(
    analyzer: str, recipe: Path | str | dict[str, Any] | Recipe | None = None, overrides: dict[str, Any] | None = None
) -> Recipe:
    """Load ``recipe`` (default ``recipes/<analyzer>.yaml``), apply overrides, check it names ``analyzer``.

    Raises:
        UnknownNameError: no task registered under ``analyzer`` (lists the valid ones).
        FileNotFoundError: the recipe file does not exist.
        InputError: the recipe is invalid or was written for another analyzer.
    """
    from vitalens.training.tasks import get_task_class

    get_task_class(analyzer)
    if isinstance(recipe, Recipe):
        result = Recipe.load(recipe.model_dump(), overrides=overrides) if overrides else recipe
    else:
        source = default_recipe_path(analyzer) if recipe is None else recipe
        result = Recipe.load(source, overrides=overrides)
    if result.analyzer != analyzer:
        raise InputError(f"recipe is for analyzer '{result.analyzer}', not '{analyzer}'", field="recipe")
    return result


def choose_thresholds(
    section: ThresholdSection, labels: list[str], y_val: np.ndarray, probs_val: np.ndarray
) -> tuple[dict[str, float], str]:
    """Per-label operating thresholds chosen on validation probabilities, and the card's method text."""
    from vitalens.risk.thresholds import choose_threshold

    unknown = set(section.per_label) - set(labels)
    if unknown:
        raise InputError(
            f"threshold overrides for unknown labels {sorted(unknown)}; labels are {labels}",
            field="thresholds.per_label",
        )
    thresholds: dict[str, float] = {}
    for j, label in enumerate(labels):
        rule = section.rule_for(label)
        y = y_val[:, j]
        if rule.method != "fixed" and (y.sum() == 0 or y.sum() == len(y)):
            logger.warning("label %s has a single class on validation; its threshold falls back to 0.5", label)
        t = choose_threshold(y, probs_val[:, j], rule.method, target=rule.target, value=rule.value)
        thresholds[label] = float(min(max(t, 0.0), 1.0))
    text = f"{section.describe()} on the validation split"
    if section.per_label:
        text += "; " + ", ".join(f"{lab}: {r.describe()}" for lab, r in sorted(section.per_label.items()))
    return thresholds, text


def build_card(
    *,
    task: Any,
    recipe: Recipe,
    bundle: Any,
    thresholds: dict[str, float],
    threshold_method: str,
    calibration: Any,
    metrics: dict[str, Any],
    subgroups: dict[str, Any],
    output: Any = None,
    derived: list[Any] | None = None,
) -> Any:
    """The model card of a freshly trained artifact."""
    from vitalens.artifacts import ModelCard, NetSpec, OutputSpec
    from vitalens.training.metrics import nan_to_none

    demonstration = bundle.provenance != "real" or bundle.n_patients < recipe.card.min_real_patients
    limitations = recipe.card.limitations or task.default_limitations
    if demonstration:
        why = "synthetic data" if bundle.provenance != "real" else f"only {task.count_phrase(bundle)}"
        limitations = f"DEMONSTRATION MODEL ({why}): not for clinical use. " + limitations
    return ModelCard(
        name=recipe.card.name or f"{task.name}-{recipe.net.name}",
        analyzer=task.name,
        version=recipe.card.version,
        labels=list(task.labels),
        label_names=dict(task.label_names),
        architecture=NetSpec(name=recipe.net.name, kwargs=task.net_kwargs()),
        input=task.input_spec(bundle),
        thresholds=thresholds,
        threshold_method=threshold_method,
        calibration=calibration,
        output=output or OutputSpec(),
        derived=derived or [],
        training_data=task.training_data(bundle),
        demonstration=demonstration,
        metrics=nan_to_none(metrics),
        subgroup_metrics=nan_to_none(subgroups),
        intended_use=recipe.card.intended_use or task.default_intended_use,
        limitations=limitations,
        paper=recipe.card.paper,
        explanation_method=recipe.card.explanation_method,
        recipe=recipe.to_dict(),
        extra=task.card_extra(bundle),
    )


def _card_metrics(split_metrics: dict[str, Any]) -> dict[str, Any]:
    """The compact held-out metrics stored in the card (no curves, no subgroups)."""
    keep = (
        "n",
        "macro_auroc",
        "micro_auroc",
        "macro_ap",
        "macro_f1",
        "micro_f1",
        "macro_sensitivity",
        "macro_specificity",
        "ece",
        "ece_uncalibrated",
        "odir_score",
        "notes",
    )
    out = {k: split_metrics[k] for k in keep if k in split_metrics}
    out["split"] = "test"
    out["per_label"] = {
        lab: {k: m.get(k) for k in ("auroc", "ap", "f1", "sensitivity", "specificity", "threshold", "n_positive")}
        for lab, m in split_metrics["per_label"].items()
    }
    return out


def _load_best(module: Any, ckpt_path: str) -> int | None:
    """Load the best checkpoint's weights into ``module``; returns its epoch."""
    import torch

    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    return state.get("epoch")


def _finetune(
    module: Any,
    tc: Any,
    make_trainer: Any,
    train_loader: Any,
    val_loader: Any,
    ckpt_dir: Path,
    best_score: Any,
    monitor: str = "val_macro_auroc",
) -> dict[str, Any]:
    """The low-LR fine-tuning stage: every layer trainable at ``tc.finetune_lr`` for ``tc.finetune_epochs``.

    It starts from the best checkpoint of the main stage and is kept only if it beats that checkpoint's validation
    score (``monitor``); otherwise the main stage's weights are restored. Early stopping still watches validation.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from vitalens.training.callbacks import set_encoder_frozen
    from vitalens.training.module import monitor_mode

    mode = monitor_mode(monitor)

    set_encoder_frozen(module.net, False)
    main_cfg = module.cfg
    module.cfg = main_cfg.model_copy(update={"lr_head": tc.finetune_lr, "lr_encoder": tc.finetune_lr})
    ft_dir = Path(ckpt_dir) / "finetune"
    ft_ckpt = ModelCheckpoint(dirpath=ft_dir, filename="best-{epoch:02d}", monitor=monitor, mode=mode, save_top_k=1)
    stage = make_trainer(
        tc.finetune_epochs,
        [EarlyStopping(monitor=monitor, mode=mode, patience=tc.early_stopping_patience), ft_ckpt],
        "logs_finetune",
    )
    main_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    stage.fit(module, train_loader, val_loader)
    module.cfg = main_cfg
    ft_score = ft_ckpt.best_model_score
    sign = 1.0 if mode == "max" else -1.0
    improved = ft_score is not None and (best_score is None or sign * float(ft_score) > sign * float(best_score))
    if improved:
        _load_best(module, ft_ckpt.best_model_path)
    else:
        module.load_state_dict(main_state)
    logger.info(
        "fine-tuning stage (lr %g, %d epochs): best %s %s vs %s before; %s",
        tc.finetune_lr,
        tc.finetune_epochs,
        monitor,
        None if ft_score is None else round(float(ft_score), 4),
        None if best_score is None else round(float(best_score), 4),
        "kept" if improved else "discarded",
    )
    return {
        "epochs": tc.finetune_epochs,
        "lr": tc.finetune_lr,
        "best_val_score": None if ft_score is None else float(ft_score),
        "best_val_macro_auroc": None if ft_score is None or monitor != "val_macro_auroc" else float(ft_score),
        "improved": bool(improved),
        "checkpoint": ft_ckpt.best_model_path or None,
    }


def train(
    analyzer: str,
    *,
    data: Path,
    out: Path,
    recipe: Path | str | dict[str, Any] | Recipe | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
) -> Path:
    """Train ``analyzer``'s model on the dataset at ``data`` and write artifact + report under ``out``.

    Args:
        analyzer: registered task name, e.g. ``fundus.odir``.
        data: dataset root in its published layout (or its synthetic twin).
        out: output folder: ``checkpoints/``, ``logs/``, ``artifact/``, ``report.{json,md}``, ``*.png``.
        recipe: YAML path, mapping or :class:`Recipe`; default ``recipes/<analyzer>.yaml``.
        overrides: dotted recipe overrides, e.g. ``{"train.max_epochs": 2}``.
        resume: continue from ``out/checkpoints/last.ckpt``.

    Returns:
        The artifact folder ``out/artifact``.

    Example:
        >>> train("fundus.odir", data=Path("odir"), out=Path("runs/odir"), overrides={"train.max_epochs": 2})
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader

    from vitalens.artifacts import save_artifact
    from vitalens.training.calibration import apply_calibration, fit_calibration, sigmoid
    from vitalens.training.callbacks import GradualUnfreezing
    from vitalens.training.module import ClassifierModule, monitor_mode
    from vitalens.training.predict import predict_dataset
    from vitalens.training.report import evaluate_split, report_head, write_report
    from vitalens.training.samplers import make_weighted_sampler
    from vitalens.training.tasks import get_task, get_task_class

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if get_task_class(analyzer).problem == "segmentation":  # a logit per pixel: its own loop, same artifact/report
        from vitalens.training.segmentation import train_segmentation

        return train_segmentation(analyzer, data=data, out=out, recipe=recipe, overrides=overrides, resume=resume)
    cfg = resolve_recipe(analyzer, recipe, overrides)
    data, out = Path(data), Path(out)
    if not data.exists():
        raise FileNotFoundError(f"data root {data} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise InputError(f"cannot resume: {last} does not exist (train once without --resume)", field="resume")

    L.seed_everything(cfg.seed, workers=True)
    task = get_task(analyzer, cfg)
    staged = task.run_training(data_root=data, out=out, resume=resume)
    if staged is not None:
        return staged
    bundle = task.build_data(data)
    for name, size in bundle.split_sizes.items():
        if size == 0:
            raise InputError(f"the {name} split is empty; {bundle.n_patients} patients are too few", field="data")
    problem = task.output_problem
    net = task.build_net(bundle)
    loss = problem.build_loss(cfg.loss, bundle.targets["train"])
    module = ClassifierModule(task, net, loss, cfg.train, problem)
    monitor, mode = cfg.train.monitor, monitor_mode(cfg.train.monitor)

    tc = cfg.train
    sampler = make_weighted_sampler(bundle.targets["train"], cfg.seed) if tc.weighted_sampling else None
    gen = torch.Generator().manual_seed(cfg.seed)
    loader_kw: dict[str, Any] = {
        "num_workers": cfg.data.num_workers,
        "collate_fn": task.collate,
        "persistent_workers": cfg.data.num_workers > 0,
    }
    train_loader = DataLoader(
        bundle.train,
        batch_size=tc.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=gen,
        drop_last=len(bundle.train) > tc.batch_size,
        **loader_kw,
    )
    val_loader = DataLoader(bundle.val, batch_size=tc.batch_size, shuffle=False, **loader_kw)

    # Best epoch by the validation monitor (macro-AUROC by default); and, separately, the latest epoch as last.ckpt
    # for --resume (Lightning's save_last only refreshes when a new best is saved). Both at the end of the training
    # epoch, when it is complete.
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch:02d}",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        save_on_train_epoch_end=True,
    )
    latest = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [
        EarlyStopping(monitor=monitor, mode=mode, patience=tc.early_stopping_patience),
        checkpoint,
        latest,
        GradualUnfreezing(tc.unfreeze_after, tc.unfreeze_stages, tc.freeze_bn),
    ]
    if tc.progress_bar:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    on_cpu = tc.accelerator == "cpu" or (tc.accelerator == "auto" and not torch.cuda.is_available())
    deterministic: bool | str = (True if on_cpu else "warn") if tc.deterministic else False
    precision = tc.precision
    if on_cpu and precision.startswith("16"):
        logger.warning("precision %s needs a GPU; training in 32-true on CPU", precision)
        precision = "32-true"

    placement = trainer_kwargs(cfg)

    def make_trainer(max_epochs: int, stage_callbacks: list[Any], log_name: str) -> L.Trainer:
        return L.Trainer(
            **placement,
            precision=precision,
            deterministic=deterministic,
            max_epochs=max_epochs,
            max_time={"minutes": tc.max_time_minutes} if tc.max_time_minutes else None,
            callbacks=stage_callbacks,
            logger=CSVLogger(save_dir=str(out), name=log_name),
            default_root_dir=str(out),
            enable_progress_bar=tc.progress_bar,
            enable_model_summary=False,
            gradient_clip_val=tc.gradient_clip_val,
            limit_train_batches=tc.limit_train_batches,
            limit_val_batches=tc.limit_val_batches,
            log_every_n_steps=1,
            num_sanity_val_steps=0,
        )

    trainer = make_trainer(tc.max_epochs, callbacks, "logs")
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None)

    best_epoch: int | None = None
    if checkpoint.best_model_path:
        best_epoch = _load_best(module, checkpoint.best_model_path)
        logger.info("restored best checkpoint %s (epoch %s)", checkpoint.best_model_path, best_epoch)
    best_score = checkpoint.best_model_score
    finetune: dict[str, Any] | None = None
    if tc.finetune_epochs > 0:
        finetune = _finetune(module, tc, make_trainer, train_loader, val_loader, ckpt_dir, best_score, monitor)
        if finetune["improved"]:
            best_score = torch.tensor(finetune["best_val_score"])
    if trainer.global_rank != 0:
        # DDP: every process trained its shard; rank 0 alone evaluates and writes the artifact and report.
        logger.info("rank %d finished training; rank 0 writes the artifact", trainer.global_rank)
        return out / "artifact"
    device = "cuda" if (not on_cpu and torch.cuda.is_available()) else "cpu"

    predict_kw = {"batch_size": tc.batch_size, "num_workers": cfg.data.num_workers}
    val_logits, val_y, _ = predict_dataset(net, task, bundle.val, device, **predict_kw)
    test_logits, test_y, _ = predict_dataset(net, task, bundle.test, device, **predict_kw)

    n_bins = cfg.calibration.n_bins
    output = derived = None
    if problem.exclusive:
        from vitalens.training.exclusive import exclusive_card_metrics, fit_exclusive, score_exclusive_split

        fit = fit_exclusive(
            problem=problem,
            labels=task.labels,
            derived_specs=task.derived_findings,
            recipe=cfg,
            val_raw=val_logits,
            val_y=val_y,
        )
        calibration, output, derived = fit.calibration, fit.output, fit.derived
        thresholds, threshold_method = fit.thresholds, fit.threshold_method
        score_kw: dict[str, Any] = {"problem": problem, "labels": task.labels, "fit": fit, "n_bins": n_bins}
        val_metrics, _ = score_exclusive_split(raw=val_logits, y=val_y, extra=task.extra_metrics, **score_kw)
        test_metrics, test_probs = score_exclusive_split(
            raw=test_logits, y=test_y, groups=bundle.groups.get("test"), extra=task.extra_metrics, **score_kw
        )
        for d in derived:
            d.metrics = {
                k: test_metrics["derived"][d.code].get(k) for k in ("auroc", "sensitivity", "specificity", "n")
            }
        splits = {"val": val_metrics, "test": test_metrics}
        card_metrics = exclusive_card_metrics(test_metrics)
    else:
        calibration = fit_calibration(cfg.calibration.method, val_logits, val_y, per_label=cfg.calibration.per_label)
        val_probs = apply_calibration(calibration, val_logits)
        test_probs = apply_calibration(calibration, test_logits)
        thresholds, threshold_method = choose_thresholds(cfg.thresholds, list(task.labels), val_y, val_probs)
        thr = np.asarray([thresholds[lab] for lab in task.labels])

        splits = {
            "val": evaluate_split(
                task.labels,
                val_y,
                val_probs,
                thr,
                raw_probs=sigmoid(val_logits),
                extra=task.extra_metrics,
                n_bins=n_bins,
            ),
            "test": evaluate_split(
                task.labels,
                test_y,
                test_probs,
                thr,
                raw_probs=sigmoid(test_logits),
                groups=bundle.groups.get("test"),
                extra=task.extra_metrics,
                n_bins=n_bins,
            ),
        }
        card_metrics = _card_metrics(splits["test"])
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds=thresholds,
        threshold_method=threshold_method,
        calibration=calibration,
        metrics=card_metrics,
        subgroups=splits["test"].get("subgroups", {}),
        output=output,
        derived=derived,
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, net.cpu().eval(), card)

    report = {
        **report_head(card, artifact=artifact, data=data),
        "output": card.output.model_dump(mode="json"),
        "derived": [d.model_dump(mode="json") for d in card.derived],
        "training": {
            "best_epoch": best_epoch,
            "monitor": monitor,
            "best_val_score": float(best_score) if best_score is not None else None,
            "best_val_macro_auroc": float(best_score)
            if best_score is not None and monitor == "val_macro_auroc"
            else None,
            "epochs_run": trainer.current_epoch,
            "stopped_early": bool(trainer.should_stop and trainer.current_epoch < tc.max_epochs),
            "checkpoint": checkpoint.best_model_path or None,
            "finetune": finetune,
        },
        "splits": splits,
        "recipe": cfg.to_dict(),
    }
    write_report(out, report, labels=task.labels, y=test_y, probs=test_probs, plot_split="test")
    logger.info("trained %s: test macro AUROC %s; artifact %s", analyzer, splits["test"]["macro_auroc"], artifact)
    return artifact
