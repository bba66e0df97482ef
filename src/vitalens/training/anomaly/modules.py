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
from vitalens.training.heads import BinaryHeadModule, OptimConfig

__all__ = ["VaeModule", "ScorerModule", "OptimConfig"]

logger = logging.getLogger(__name__)


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


class ScorerModule(BinaryHeadModule):
    """The latent scorer's module: :class:`~vitalens.training.heads.BinaryHeadModule` on batches ``(z, y)``."""

    def __init__(self, scorer: LatentTransformerScorer, optim: OptimConfig, pos_weight: float = 1.0) -> None:
        super().__init__(scorer, optim, pos_weight)

    @property
    def scorer(self) -> nn.Module:
        return self.head
