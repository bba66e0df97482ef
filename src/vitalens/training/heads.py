"""Small Lightning modules that train a head on precomputed tensors (frozen-encoder designs).

Why here: the anomaly scorer (on VAE latents) and the retina fusion head (on two frozen encoders' embeddings) both
train a small binary head on tensors, with the design's AdamW + ReduceLROnPlateau on the validation loss; one
module serves both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

__all__ = [
    "OptimConfig",
    "BinaryHeadModule",
    "GroupedSoftmaxHeadModule",
    "pick_device",
    "tensor_trainer",
    "tensor_loader",
    "restore_best",
]

logger = logging.getLogger(__name__)


class OptimConfig:
    """AdamW + ReduceLROnPlateau settings shared by both stages."""

    def __init__(
        self,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        plateau_patience: int = 5,
        plateau_factor: float = 0.5,
        min_lr: float = 1e-7,
    ) -> None:
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.plateau_patience, self.plateau_factor, self.min_lr = (
            int(plateau_patience),
            float(plateau_factor),
            float(min_lr),
        )

    def build(self, params: Any) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.plateau_factor, patience=self.plateau_patience, min_lr=self.min_lr
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch", "strict": True},
        }


class BinaryHeadModule(L.LightningModule):
    """Trains ``head(*inputs) -> logits`` ((B,) or (B, 1)) on batches ``(*inputs, y)`` with binary cross-entropy;
    logs ``train_loss``, ``val_loss`` and ``val_auroc``.

    Args:
        head: the module to train.
        optim: optimiser settings.
        pos_weight: weight of the positive class in the loss (negatives / positives balances them).
    """

    def __init__(self, head: nn.Module, optim: OptimConfig, pos_weight: float = 1.0) -> None:
        super().__init__()
        self.head = head
        self.optim = optim
        self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(pos_weight)))
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _logits(self, inputs: Any) -> torch.Tensor:
        out = self.head(*inputs)
        return out.reshape(out.shape[0], -1)[:, 0]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        *xs, y = batch
        loss = self.loss_fn(self._logits(xs), y.float())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=y.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        *xs, y = batch
        logits = self._logits(xs)
        self.log("val_loss", self.loss_fn(logits, y.float()), on_step=False, on_epoch=True, batch_size=y.shape[0])
        self._val.append((logits.detach().cpu(), y.detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        from torchmetrics.functional.classification import binary_auroc

        if not self._val:
            return
        logits = torch.cat([v[0] for v in self._val])
        y = torch.cat([v[1] for v in self._val]).long()
        self._val.clear()
        if y.min() != y.max():
            self.log("val_auroc", binary_auroc(logits, y), prog_bar=True)

    def configure_optimizers(self) -> dict[str, Any]:
        return self.optim.build(self.head.parameters())


class GroupedSoftmaxHeadModule(L.LightningModule):
    """Trains ``head(*inputs) -> logits (B, Σ groups)`` on batches ``(*inputs, y)``, ``y (B, len(groups))`` holding
    one class index per group: the sum of one cross-entropy per softmax group (e.g. DR grade + OCT class); logs
    ``train_loss``, ``val_loss`` and ``val_accuracy_<k>`` per group.

    Why a sum of cross-entropies: the groups are independent exclusive label sets, each is the negative
    log-likelihood of its own softmax, and their sum is the likelihood of both under the head's factorised model.
    """

    def __init__(self, head: nn.Module, optim: OptimConfig, groups: tuple[int, ...]) -> None:
        super().__init__()
        self.head = head
        self.optim = optim
        self.groups = tuple(int(g) for g in groups)
        self.loss_fn = nn.CrossEntropyLoss()

    def _loss(self, xs: Any, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        logits = self.head(*xs)
        loss = logits.new_zeros(())
        correct = []
        for k, part in enumerate(torch.split(logits, list(self.groups), dim=1)):
            loss = loss + self.loss_fn(part, y[:, k].long())
            correct.append((part.argmax(1) == y[:, k]).float().mean())
        return loss, correct

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        *xs, y = batch
        loss, _ = self._loss(xs, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=y.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        *xs, y = batch
        loss, correct = self._loss(xs, y)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=y.shape[0])
        for k, c in enumerate(correct):
            self.log(f"val_accuracy_{k}", c, on_step=False, on_epoch=True, batch_size=y.shape[0])

    def configure_optimizers(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optim.build(self.head.parameters())


def pick_device(accelerator: str) -> str:
    """``cuda`` when the recipe's accelerator allows it and a GPU is present, else ``cpu``."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def tensor_trainer(train: Any, out: Path, name: str, max_epochs: int, patience: int) -> tuple[L.Trainer, Any]:
    """A Lightning trainer for a tensor stage: early stopping and a best checkpoint on ``val_loss``.

    Args:
        train: the recipe's ``train:`` section (accelerator, determinism, wall-clock budget).
        out: the run folder (``checkpoints/<name>``, ``logs_<name>``).
        name: the stage's name.
        max_epochs, patience: the stage's epoch cap and early-stopping patience.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    on_cpu = pick_device(train.accelerator) == "cpu"
    ckpt = ModelCheckpoint(dirpath=Path(out) / "checkpoints" / name, filename="best", monitor="val_loss", mode="min")
    trainer = L.Trainer(
        accelerator="cpu" if on_cpu else train.accelerator,
        devices=1,
        precision="32-true",
        deterministic=train.deterministic,
        max_epochs=max_epochs,
        max_time={"minutes": train.max_time_minutes} if train.max_time_minutes else None,
        callbacks=[EarlyStopping(monitor="val_loss", mode="min", patience=patience), ckpt],
        logger=CSVLogger(save_dir=str(out), name=f"logs_{name}"),
        default_root_dir=str(out),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    return trainer, ckpt


def tensor_loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool, seed: int) -> Any:
    """A DataLoader over aligned tensors (seeded shuffling; the last partial batch dropped when shuffling)."""
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(seed)
    n = tensors[0].shape[0]
    return DataLoader(
        TensorDataset(*tensors),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=gen,
        drop_last=shuffle and n > batch_size,
    )


def restore_best(module: L.LightningModule, ckpt: Any) -> dict[str, Any]:
    """Load the best checkpoint's weights into ``module``; returns its epoch and validation loss."""
    info: dict[str, Any] = {"best_val_loss": None, "best_epoch": None, "checkpoint": ckpt.best_model_path or None}
    if ckpt.best_model_path:
        state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        info["best_epoch"] = state.get("epoch")
        info["best_val_loss"] = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
    return info
