"""The generic LightningModule of the engine: any task's net, any multi-label loss, one optimiser recipe.

Why one module for all tasks: the task plug-in says how to run a batch (``task.forward``/``task.targets``); the
optimiser (AdamW with a lower encoder learning rate), the LR-on-plateau schedule and the validation macro-AUROC
that drives early stopping and checkpointing are the same for every analyzer.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch import nn

if TYPE_CHECKING:
    from vitalens.training.problems import Problem
    from vitalens.training.recipe import TrainSection
    from vitalens.training.tasks import TrainingTask

__all__ = ["ClassifierModule", "MONITOR", "masked_macro_auroc", "monitor_mode"]

logger = logging.getLogger(__name__)

#: The default metric early stopping, checkpointing and the LR schedule watch (higher is better).
MONITOR = "val_macro_auroc"


def monitor_mode(monitor: str) -> str:
    """``min`` for a loss, ``max`` for every score."""
    return "min" if monitor.endswith("loss") else "max"


def masked_macro_auroc(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Macro AUROC (torchmetrics) over the labels that have both classes in ``target``; NaN when none has.

    Args:
        logits: ``(N, L)`` scores (any monotone transform of probabilities gives the same AUROC).
        target: ``(N, L)`` 0/1.
    """
    from torchmetrics.functional.classification import multilabel_auroc

    t = target.int()
    pos = t.sum(0)
    valid = (pos > 0) & (pos < t.shape[0])
    if not bool(valid.any()):
        return float("nan")
    per = multilabel_auroc(logits[:, valid].float(), t[:, valid], num_labels=int(valid.sum()), average=None)
    return float(per.mean())


class ClassifierModule(L.LightningModule):
    """Trains ``net`` on ``task`` batches with ``loss``; logs ``train_loss``, ``val_loss`` and ``val_macro_auroc``.

    With a multi-class or ordinal ``problem`` it also logs ``val_accuracy`` and ``val_qwk`` (quadratic weighted
    kappa) every epoch, AUROC is one-vs-rest over the class probabilities, and the per-class precision, recall and
    F1 are logged as ``val_f1_<label>`` etc. and written to the log as one line per epoch.

    Args:
        task: the task plug-in (runs batches).
        net: the network; its ``encoder`` (if any) gets ``train.lr_encoder``, everything else ``train.lr_head``.
        loss: the problem's loss on raw outputs ``(B, n_outputs)`` and one-hot float targets ``(B, K)``.
        train: the recipe's ``train:`` section.
        problem: the head (default: multi-label sigmoid).
    """

    def __init__(
        self, task: TrainingTask, net: nn.Module, loss: nn.Module, train: TrainSection, problem: Problem | None = None
    ) -> None:
        super().__init__()
        self.task = task
        self.net = net
        self.loss_fn = loss
        self.cfg = train
        self.problem = problem
        self.monitor = getattr(train, "monitor", MONITOR)
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, batch: Any) -> torch.Tensor:
        return self.task.forward(self.net, batch)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = self.loss_fn(logits, self.task.targets(batch))
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits = self(batch)
        target = self.task.targets(batch)
        loss = self.loss_fn(logits, target)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=logits.shape[0])
        self._val_logits.append(logits.detach().float().cpu())
        self._val_targets.append(target.detach().cpu())

    def on_validation_epoch_start(self) -> None:
        self._val_logits.clear()
        self._val_targets.clear()

    def on_validation_epoch_end(self) -> None:
        if not self._val_logits:
            return
        raw, target = torch.cat(self._val_logits), torch.cat(self._val_targets)
        if self.trainer.world_size > 1:
            # DDP: each process saw one shard of the validation set; the AUROC that drives checkpointing and early
            # stopping must be the same number on every rank (the distributed sampler pads shards to equal length).
            raw = self.all_gather(raw.to(self.device)).reshape(-1, raw.shape[-1]).cpu()
            target = self.all_gather(target.to(self.device)).reshape(-1, target.shape[-1]).cpu()
        scores = raw
        if self.problem is not None and self.problem.exclusive:
            from vitalens.training.problems import torch_class_probabilities

            scores = torch_class_probabilities(self.problem, raw)
            self._log_exclusive(scores, target)
        auroc = masked_macro_auroc(scores, target)
        if math.isnan(auroc):
            logger.warning("no validation label has both classes; val_macro_auroc set to 0.5 (chance)")
            auroc = 0.5
        self.log(MONITOR, auroc, prog_bar=True)
        self._val_logits.clear()
        self._val_targets.clear()

    def _log_exclusive(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        """Accuracy, quadratic kappa and per-class precision/recall/F1 of one validation epoch."""
        from vitalens.training.multiclass_metrics import multiclass_metrics

        labels = list(self.task.labels)
        m = multiclass_metrics(target.numpy(), probs.double().numpy(), labels, ordinal=True)
        self.log("val_accuracy", m["accuracy"], prog_bar=True)
        qwk = m.get("quadratic_kappa", float("nan"))
        self.log(
            "val_qwk",
            0.0 if math.isnan(qwk) else qwk,
            prog_bar=self.problem is not None and self.problem.kind == "ordinal",
        )
        parts = []
        for lab, pc in m["per_class"].items():
            for key in ("precision", "recall", "f1"):
                value = pc[key]
                self.log(f"val_{key}_{lab}", 0.0 if math.isnan(value) else value)
            parts.append(f"{lab} P {pc['precision']:.2f} R {pc['recall']:.2f} F1 {pc['f1']:.2f} (n {pc['support']})")
        logger.info(
            "epoch %d val: accuracy %.3f, QWK %.3f | %s", self.current_epoch, m["accuracy"], qwk, " · ".join(parts)
        )

    def configure_optimizers(self) -> dict[str, Any]:
        encoder = getattr(self.net, "encoder", None)
        enc_ids = {id(p) for p in encoder.parameters()} if isinstance(encoder, nn.Module) else set()
        enc_params = [p for p in self.net.parameters() if id(p) in enc_ids]
        head_params = [p for p in self.net.parameters() if id(p) not in enc_ids]
        groups = [{"params": head_params, "lr": self.cfg.lr_head, "name": "head"}]
        if enc_params:
            groups.append({"params": enc_params, "lr": self.cfg.lr_encoder, "name": "encoder"})
        kind = getattr(self.cfg, "optimizer", "adamw")
        optimizer_cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        optimizer = optimizer_cls(groups, weight_decay=self.cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=monitor_mode(self.monitor),
            factor=self.cfg.plateau_factor,
            patience=self.cfg.plateau_patience,
            min_lr=self.cfg.min_lr,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor, "interval": "epoch", "strict": False},
        }
