"""The segmentation loop of the engine: a logit per pixel, masked BCE + Dice, whole-image validation and test.

Why a loop of its own beside the classifier engine: a classifier's batch is ``(B, L)`` logits scored by macro-AUROC
over samples, calibrated and thresholded per label; a segmentation net's is ``(B, 1, H, W)``, scored over millions
of pixels inside a field-of-view mask, its threshold chosen from pixel histograms. Sharing the recipe schema, the
task registry, the artifact (weights + card) and the report layout keeps ``vitalens train <analyzer>`` one command,
while neither loop carries the other's special cases. Tasks opt in with ``problem = "segmentation"``.

Order, as in the classifier engine: the best epoch by validation AUC; the threshold on the validation images only
(recipe ``thresholds.method``: ``f1`` maximises pixel F1, ``youden`` maximises J, ``fixed`` uses ``value``); the
untouched test images evaluated once at the end; artifact and report written last, together.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitalens.errors import InputError
from vitalens.training.seg_metrics import ScoreHistogram, best_f1_threshold, pixel_metrics

if TYPE_CHECKING:
    from vitalens.training.recipe import Recipe, ThresholdSection, TrainSection
    from vitalens.training.tasks import TrainingTask

__all__ = ["SegmentationModule", "train_segmentation", "masked_bce_dice", "choose_pixel_threshold", "SEG_MONITOR"]

logger = logging.getLogger(__name__)

#: What early stopping, checkpointing and the LR schedule watch: pixel AUC on the validation images (higher better).
SEG_MONITOR = "val_pixel_auc"

#: Histogram resolution of the validation metric during training (the final metrics use the finer default).
_VAL_BINS = 1000
#: Threshold rules a pixel histogram supports.
_PIXEL_THRESHOLD_METHODS = ("f1", "youden", "fixed")


def masked_bce_dice(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, dice_weight: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy plus soft-Dice loss over the pixels where ``mask`` is 1.

    Why both: BCE gives every pixel a gradient; Dice counters the 1 : 8 vessel-to-background imbalance and
    optimises overlap, which is what F1 (= Dice) measures.
    """
    m = mask.float()
    n = m.sum().clamp_min(1.0)
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * m).sum() / n
    prob = torch.sigmoid(logits) * m
    t = target * m
    dice = 1.0 - (2.0 * (prob * t).sum() + 1.0) / (prob.sum() + t.sum() + 1.0)
    return bce + dice_weight * dice


def _image_tensor(image: dict[str, Any], device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image["channel"], dtype=np.float32))[None, None].to(device)


class SegmentationModule(L.LightningModule):
    """Trains a dense net on patch batches; validates on whole images (pixel AUC and best F1 inside the FOV).

    Args:
        task: the task plug-in (runs a batch through the net).
        net: a ``(B, 1, H, W)`` → ``(B, 1, H, W)`` logit net.
        train: the recipe's ``train:`` section (``lr_head`` is the learning rate of every parameter).
        flip_average: validation averages the image and its mirror, as inference does.
    """

    def __init__(self, task: TrainingTask, net: nn.Module, train: TrainSection, *, flip_average: bool = True) -> None:
        super().__init__()
        self.task = task
        self.net = net
        self.cfg = train
        self.flip_average = flip_average
        self._hists: list[ScoreHistogram] = []

    def forward(self, batch: Any) -> torch.Tensor:
        return self.task.forward(self.net, batch)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = masked_bce_dice(logits, batch["target"], batch["fov"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        from vitalens.vessels.segment import net_vessel_probability

        image = batch  # one prepared image per step (collate is the identity)
        prob = net_vessel_probability(
            self.net, image["channel"], device=str(self.device), flip_average=self.flip_average
        )
        self._hists.append(ScoreHistogram.from_pixels(image["vessels"], prob, image["fov"], bins=_VAL_BINS))

    def on_validation_epoch_start(self) -> None:
        self._hists.clear()

    def on_validation_epoch_end(self) -> None:
        if not self._hists:
            return
        pooled = ScoreHistogram.pool(self._hists)
        auc = pooled.auc()
        if math.isnan(auc):
            logger.warning("validation images hold a single class; %s set to 0.5", SEG_MONITOR)
            auc = 0.5
        self.log(SEG_MONITOR, auc, prog_bar=True)
        self.log("val_best_f1", pixel_metrics(pooled, best_f1_threshold(pooled))["f1"], prog_bar=True)
        self._hists.clear()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.cfg.lr_head, weight_decay=self.cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=self.cfg.plateau_factor,
            patience=self.cfg.plateau_patience,
            min_lr=self.cfg.min_lr,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": SEG_MONITOR, "interval": "epoch", "strict": False},
        }


def choose_pixel_threshold(section: ThresholdSection, hist: ScoreHistogram) -> tuple[float, str]:
    """The operating threshold from the validation pixels' histogram, and the card's method text."""
    method = section.method
    if method == "f1":
        t = best_f1_threshold(hist)
    elif method == "fixed":
        t = float(section.value)
    elif method == "youden":
        tp = np.cumsum(hist.pos[::-1])[::-1] / max(hist.pos.sum(), 1)
        tn = 1.0 - np.cumsum(hist.neg[::-1])[::-1] / max(hist.neg.sum(), 1)
        j = tp + tn - 1.0
        t = float((len(j) - 1 - int(np.argmax(j[::-1]))) / hist.bins)
    else:
        raise InputError(
            f"thresholds.method '{method}' is not available for segmentation; use f1, youden or fixed",
            field="thresholds.method",
        )
    return t, f"{section.describe()} over the validation images' field-of-view pixels"


def _evaluate_images(
    net: nn.Module, images: list[dict[str, Any]], threshold: float, *, device: str, flip_average: bool
) -> tuple[dict[str, Any], list[ScoreHistogram]]:
    """Pooled and per-image metrics of ``net`` on prepared images at ``threshold``, plus the per-image histograms."""
    from vitalens.vessels.segment import net_vessel_probability

    hists, per_image = [], {}
    for image in images:
        prob = net_vessel_probability(net, image["channel"], device=device, flip_average=flip_average)
        hist = ScoreHistogram.from_pixels(image["vessels"], prob, image["fov"])
        hists.append(hist)
        per_image[image["image_id"]] = pixel_metrics(hist, threshold)
    pooled = pixel_metrics(ScoreHistogram.pool(hists), threshold)
    metrics = {
        "n": len(images),
        "unit": "image; pixel metrics pooled over every field-of-view pixel",
        **{k: pooled[k] for k in ("accuracy", "auc", "sensitivity", "specificity", "precision", "f1")},
        "n_pixels": int(pooled["n_pixels"]),
        "macro_auroc": pooled["auc"],
        "micro_auroc": pooled["auc"],
        "macro_f1": pooled["f1"],
        "per_label": {
            "vessel": {
                "auroc": pooled["auc"],
                "ap": None,
                "f1": pooled["f1"],
                "sensitivity": pooled["sensitivity"],
                "specificity": pooled["specificity"],
                "threshold": threshold,
                "n_positive": int(pooled["n_positive"]),
            }
        },
        "per_image": per_image,
    }
    return metrics, hists


def evaluate_segmentation(
    net: nn.Module, task: Any, images: list[dict[str, Any]], threshold: float, *, device: str
) -> tuple[dict[str, Any], list[ScoreHistogram]]:
    """``vitalens evaluate`` of a segmentation artifact: the same whole-image pass training's test used.

    Why here: the classifier path of :func:`vitalens.training.evaluate.evaluate` batches ``(B, L)`` logits; a
    segmentation net is scored per image over its field-of-view pixels, exactly as :func:`train_segmentation`
    scored its test split, so a re-run on the same images reproduces the card's figures.
    """
    flip_average = bool(getattr(task.options, "flip_average", True))
    return _evaluate_images(net.to(device).eval(), images, threshold, device=device, flip_average=flip_average)


def write_segmentation_eval(out: Path, report: dict[str, Any], hists: list[ScoreHistogram], split: str) -> Path:
    """``report.json``, ``report.md`` and ``roc.png`` of an evaluation (the training report's layout)."""
    from vitalens import DECISION_SUPPORT_NOTICE
    from vitalens.training.metrics import nan_to_none

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"notice": DECISION_SUPPORT_NOTICE, **report}
    (out / "report.json").write_text(json.dumps(nan_to_none(report), indent=2, default=str) + "\n", encoding="utf-8")
    m = report["splits"][split]
    ev = report["evaluated_on"]
    lines = [
        f"# Evaluation — {report['analyzer']} ({report['model']})",
        "",
        f"> {DECISION_SUPPORT_NOTICE}",
        "",
        f"- Data: {report['data']} — {ev['selection']} ({ev['n_records']} images)",
        f"- Threshold: {report['thresholds']['vessel']:.3f} ({report['threshold_method']})",
        *([f"- Warning: {report['warning']}"] if report.get("warning") else []),
        "",
        "| split | images | accuracy | AUC | sensitivity | specificity | F1 |",
        "|---|---|---|---|---|---|---|",
        f"| {split} | {m['n']} | {m['accuracy']:.4f} | {m['auc']:.4f} | {m['sensitivity']:.4f} | "
        f"{m['specificity']:.4f} | {m['f1']:.4f} |",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return _plot_roc(hists, out / "roc.png", f"{report['analyzer']} — {split} images")


def _plot_roc(hists: list[ScoreHistogram], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = ScoreHistogram.pool(hists)
    tpr = np.concatenate([[0.0], np.cumsum(pooled.pos[::-1]) / max(pooled.pos.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(pooled.neg[::-1]) / max(pooled.neg.sum(), 1)])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"vessel pixels (AUC {pooled.auc():.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _markdown(report: dict[str, Any]) -> str:
    from vitalens import DECISION_SUPPORT_NOTICE

    lines = [f"# Training report — {report['analyzer']}", "", f"> {DECISION_SUPPORT_NOTICE}", ""]
    if report.get("demonstration"):
        lines += ["**Demonstration model**: trained on synthetic or few data; not for clinical use.", ""]
    td = report["training_data"]
    lines += [
        f"- Training data: {td['description']}",
        f"- Threshold: {report['thresholds']['vessel']:.3f} ({report['threshold_method']})",
        f"- Training: best epoch {report['training']['best_epoch']}, validation pixel AUC "
        f"{report['training']['best_val_pixel_auc']}, {report['training']['epochs_run']} epochs run",
        "",
        "| split | images | accuracy | AUC | sensitivity | specificity | F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in report["splits"].items():
        lines.append(
            f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['auc']:.4f} | {m['sensitivity']:.4f} | "
            f"{m['specificity']:.4f} | {m['f1']:.4f} |"
        )
    lines += ["", "Metrics over every field-of-view pixel, pooled; plot: `roc.png`.", ""]
    return "\n".join(lines)


def train_segmentation(
    analyzer: str,
    *,
    data: Path,
    out: Path,
    recipe: Path | str | dict[str, Any] | Recipe | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
) -> Path:
    """Train a segmentation task's net and write ``out/artifact`` (weights + card) and ``out/report.{json,md}``.

    Same arguments and outputs as :func:`vitalens.training.engine.train`, which calls this for tasks whose
    ``problem`` is ``segmentation``.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader

    from vitalens import DECISION_SUPPORT_NOTICE
    from vitalens.artifacts import CalibrationSpec, save_artifact
    from vitalens.training.engine import build_card, resolve_recipe
    from vitalens.training.metrics import nan_to_none
    from vitalens.training.tasks import get_task

    cfg = resolve_recipe(analyzer, recipe, overrides)
    if cfg.thresholds.method not in _PIXEL_THRESHOLD_METHODS:
        raise InputError(
            f"thresholds.method '{cfg.thresholds.method}' is not available for segmentation; use "
            f"{', '.join(_PIXEL_THRESHOLD_METHODS)}",
            field="thresholds.method",
        )
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
    bundle = task.build_data(data)
    net = task.build_net(bundle)
    flip_average = bool(getattr(task.options, "flip_average", True))
    module = SegmentationModule(task, net, cfg.train, flip_average=flip_average)
    tc = cfg.train
    train_loader = DataLoader(
        bundle.train, batch_size=tc.batch_size, shuffle=False, num_workers=cfg.data.num_workers, drop_last=True
    )
    val_loader = DataLoader(bundle.val, batch_size=None, shuffle=False, collate_fn=lambda x: x)

    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best-{epoch:02d}", monitor=SEG_MONITOR, mode="max", save_top_k=1
    )
    latest = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    on_cpu = tc.accelerator == "cpu" or (tc.accelerator == "auto" and not torch.cuda.is_available())
    precision = tc.precision
    if on_cpu and precision.startswith("16"):
        logger.warning("precision %s needs a GPU; training in 32-true on CPU", precision)
        precision = "32-true"
    trainer = L.Trainer(
        accelerator=tc.accelerator,
        devices=1,
        precision=precision,
        deterministic=(True if on_cpu else "warn") if tc.deterministic else False,
        max_epochs=tc.max_epochs,
        max_time={"minutes": tc.max_time_minutes} if tc.max_time_minutes else None,
        callbacks=[
            EarlyStopping(monitor=SEG_MONITOR, mode="max", patience=tc.early_stopping_patience),
            checkpoint,
            latest,
        ],
        logger=CSVLogger(save_dir=str(out), name="logs"),
        default_root_dir=str(out),
        enable_progress_bar=tc.progress_bar,
        enable_model_summary=False,
        gradient_clip_val=tc.gradient_clip_val,
        limit_train_batches=tc.limit_train_batches,
        limit_val_batches=tc.limit_val_batches,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None)

    best_epoch = None
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        best_epoch = state.get("epoch")
        logger.info("restored best checkpoint %s (epoch %s)", checkpoint.best_model_path, best_epoch)
    device = "cuda" if (not on_cpu and torch.cuda.is_available()) else "cpu"
    net = module.net.to(device).eval()

    _, val_hists = _evaluate_images(net, bundle.val, 0.5, device=device, flip_average=flip_average)
    threshold, threshold_method = choose_pixel_threshold(cfg.thresholds, ScoreHistogram.pool(val_hists))
    val_metrics, _ = _evaluate_images(net, bundle.val, threshold, device=device, flip_average=flip_average)
    test_metrics, test_hists = _evaluate_images(net, bundle.test, threshold, device=device, flip_average=flip_average)
    card_metrics = {k: v for k, v in test_metrics.items() if k != "per_image"}
    card_metrics["split"] = "test"
    card = build_card(
        task=task,
        recipe=cfg,
        bundle=bundle,
        thresholds={"vessel": threshold},
        threshold_method=threshold_method,
        calibration=CalibrationSpec(method="none"),
        metrics=card_metrics,
        subgroups={},
    )
    artifact = out / "artifact"
    card = save_artifact(artifact, net.cpu().eval(), card)
    best_score = checkpoint.best_model_score
    report = {
        "notice": DECISION_SUPPORT_NOTICE,
        "analyzer": analyzer,
        "artifact": str(artifact),
        "data": str(data),
        "demonstration": card.demonstration,
        "labels": list(task.labels),
        "label_names": dict(task.label_names),
        "training_data": card.training_data.model_dump(mode="json"),
        "thresholds": {"vessel": threshold},
        "threshold_method": threshold_method,
        "calibration": {"method": "none"},
        "training": {
            "best_epoch": best_epoch,
            "best_val_pixel_auc": None if best_score is None else float(best_score),
            "epochs_run": trainer.current_epoch,
            "checkpoint": checkpoint.best_model_path or None,
        },
        "splits": {"val": val_metrics, "test": test_metrics},
        "recipe": cfg.to_dict(),
    }
    (out / "report.json").write_text(json.dumps(nan_to_none(report), indent=2, default=str) + "\n", encoding="utf-8")
    (out / "report.md").write_text(_markdown(report), encoding="utf-8")
    _plot_roc(test_hists, out / "roc.png", f"{analyzer} — test images")
    logger.info(
        "trained %s: test pixel AUC %.4f, F1 %.4f at %.3f; artifact %s",
        analyzer,
        test_metrics["auc"],
        test_metrics["f1"],
        threshold,
        artifact,
    )
    return artifact
