"""Training callbacks shared by every task: gradual unfreezing of a pretrained encoder.

Why: with a pretrained encoder and a freshly initialised head, the first epochs' large head gradients would wreck
the encoder's features; training the head alone for N epochs, then everything, is the standard remedy
(Howard & Ruder, 2018, ULMFiT "gradual unfreezing").
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

__all__ = ["GradualUnfreezing", "set_encoder_frozen"]

logger = logging.getLogger(__name__)


def set_encoder_frozen(net: Any, frozen: bool, *, trainable_tail: int | None = None) -> bool:
    """Freeze or unfreeze ``net``'s encoder through ``net.freeze_encoder(bool)``, else ``net.encoder``.

    ``trainable_tail`` (with ``frozen=False``) unfreezes only the encoder's last stages where the net supports it.

    Returns:
        True when the net has an encoder to (un)freeze.
    """
    if hasattr(net, "freeze_encoder"):
        if trainable_tail is not None and not frozen:
            net.freeze_encoder(frozen, trainable_tail=trainable_tail)
        else:
            net.freeze_encoder(frozen)
        return True
    encoder = getattr(net, "encoder", None)
    if encoder is None:
        return False
    for p in encoder.parameters():
        p.requires_grad_(not frozen)
    return True


class GradualUnfreezing(L.Callback):
    """Keep the encoder frozen for the first ``unfreeze_after`` epochs (0: never frozen), then train all of it.

    The state is derived from the epoch number on every epoch start, so resuming from a checkpoint lands in the
    right phase.

    Args:
        unfreeze_after: number of epochs with the encoder frozen.
        unfreeze_stages: after that, unfreeze only the encoder's last this-many stages (None: all of it).
        freeze_bn: keep the BatchNorm layers of frozen encoder parts in eval mode (their running statistics stay
            the starting weights'). With a few hundred images and batches of 16, batch statistics of frozen layers
            differ between training and evaluation, and the head learns on features it will not see at inference.
    """

    def __init__(self, unfreeze_after: int = 5, unfreeze_stages: int | None = None, freeze_bn: bool = False) -> None:
        super().__init__()
        if unfreeze_after < 0:
            raise ValueError(f"unfreeze_after must be ≥ 0 epochs, got {unfreeze_after}")
        self.unfreeze_after = int(unfreeze_after)
        self.unfreeze_stages = unfreeze_stages
        self.freeze_bn = bool(freeze_bn)
        self.frozen: bool | None = None

    @staticmethod
    def frozen_batchnorm_eval(net: Any) -> int:
        """Put every BatchNorm of ``net.encoder`` whose parameters are all frozen in eval mode; returns how many."""
        from torch import nn

        encoder = getattr(net, "encoder", None)
        if encoder is None:
            return 0
        n = 0
        for module in encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                params = list(module.parameters())
                if params and not any(p.requires_grad for p in params):
                    module.eval()
                    n += 1
        return n

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = trainer.current_epoch < self.unfreeze_after
        if frozen != self.frozen:
            self._switch(frozen, pl_module, trainer.current_epoch)
        if self.freeze_bn:  # Lightning puts the module in train mode before every training epoch
            self.frozen_batchnorm_eval(pl_module.net)

    def _switch(self, frozen: bool, pl_module: L.LightningModule, epoch: int) -> None:
        if set_encoder_frozen(pl_module.net, frozen, trainable_tail=None if frozen else self.unfreeze_stages):
            logger.info("epoch %d: encoder %s", epoch, "frozen" if frozen else "unfrozen")
        elif frozen:
            logger.warning("net %s has no encoder to freeze; training all layers", type(pl_module.net).__name__)
        self.frozen = frozen
