"""Lightning modules of the staged anomaly training: the feature VAE and the latent scorer, on feature tensors.

Why their own modules (not the engine's ``ClassifierModule``): the VAE has no labels at all (it reconstructs normal
features; its validation signal is the loss on held-out *normals*), and the scorer trains on latents, not images.
Both run on precomputed tensors, so an epoch is milliseconds and the design's long schedules with early stopping
cost little. Optimiser and schedule are the design's: AdamW (lr 1e-4) with ReduceLROnPlateau on the validation loss.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch import nn

from vitalens.nets.feature_vae import FeatureVAE
from vitalens.nets.latent_scorer import LatentTransformerScorer

__all__ = ["VaeModule", "ScorerModule", "OptimConfig"]

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


class VaeModule(L.LightningModule):
    """Trains a :class:`FeatureVAE` on batches ``(x,)`` of projected normal features; logs ``val_loss``."""

    def __init__(self, vae: FeatureVAE, optim: OptimConfig) -> None:
        super().__init__()
        self.vae = vae
        self.optim = optim

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        (x,) = batch
        loss, rec, kl = self.vae.loss(x)
        bs = x.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=bs, prog_bar=stage == "val")
        self.log(f"{stage}_recon", rec, on_step=False, on_epoch=True, batch_size=bs)
        self.log(f"{stage}_kl", kl, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        return self.optim.build(self.vae.parameters())


class ScorerModule(L.LightningModule):
    """Trains a :class:`LatentTransformerScorer` on batches ``(z, y)`` with binary cross-entropy; logs
    ``val_loss`` and ``val_auroc``.

    Args:
        scorer: the scorer.
        optim: optimiser settings.
        pos_weight: weight of the positive class in the loss (negatives / positives balances them).
    """

    def __init__(self, scorer: LatentTransformerScorer, optim: OptimConfig, pos_weight: float = 1.0) -> None:
        super().__init__()
        self.scorer = scorer
        self.optim = optim
        self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(pos_weight)))
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        z, y = batch
        loss = self.loss_fn(self.scorer(z), y.float())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=z.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        z, y = batch
        logits = self.scorer(z)
        self.log("val_loss", self.loss_fn(logits, y.float()), on_step=False, on_epoch=True, batch_size=z.shape[0])
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
        return self.optim.build(self.scorer.parameters())
