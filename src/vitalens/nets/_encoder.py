"""What every net built on one timm encoder shares: the Grad-CAM target layer found by probing, the encoder's
stages from input to output, and freezing/unfreezing them for gradual fine-tuning.

Why a mixin: the bilateral fundus net and the single-image classifier (and any later net on a timm encoder) must
expose the same surface to the explainers and the training callbacks without copying the code. A class using it
sets ``self.encoder`` (a timm model), ``self.in_chans`` and ``self._target_layer = None``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

__all__ = ["TimmEncoderMixin", "find_feature_map_layer"]

logger = logging.getLogger(__name__)


def find_feature_map_layer(encoder: nn.Module, in_chans: int = 3, size: int = 64) -> str:
    """Name of the last top-level child of a timm ``encoder`` whose output *is* ``forward_features``'s output.

    That module's activations are the final spatial feature map (efficientnet ``bn2``: conv_head + BN + act,
    resnet ``layer4``, convnext ``norm_pre``), the classic Grad-CAM target. Found by one probing forward pass
    (eval mode, no grad, mode restored), so any timm backbone works without a table of names.

    Args:
        encoder: a timm model.
        in_chans: channels of the probe input.
        size: side of the probe input, pixels (the model's own size where it needs a fixed one).
    """
    cfg = getattr(encoder, "pretrained_cfg", {}) or {}
    if cfg.get("fixed_input_size") and cfg.get("input_size"):
        size = int(cfg["input_size"][-1])
    outputs: dict[str, Any] = {}
    handles = [
        child.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name, child in encoder.named_children()
    ]
    was_training = encoder.training
    try:
        encoder.eval()
        with torch.no_grad():
            param = next(encoder.parameters(), None)
            probe = torch.zeros(1, in_chans, size, size)
            if param is not None:
                probe = probe.to(device=param.device, dtype=param.dtype)
            features = encoder.forward_features(probe)
    finally:
        encoder.train(was_training)
        for handle in handles:
            handle.remove()
    matches = [
        name
        for name, out in outputs.items()
        if isinstance(out, torch.Tensor) and out.shape == features.shape and torch.equal(out, features)
    ]
    if not matches:
        raise RuntimeError(f"no top-level module of {type(encoder).__name__} outputs its feature map")
    return matches[-1]


class TimmEncoderMixin:
    """``target_layer``, ``encoder_stages`` and ``freeze_encoder`` for a net whose ``encoder`` is a timm model."""

    encoder: nn.Module
    in_chans: int
    _target_layer: str | None

    @property
    def target_layer(self) -> str:
        """Dotted path (inside this net) of the module whose output is the encoder's final feature map."""
        if self._target_layer is None:
            self._target_layer = "encoder." + find_feature_map_layer(self.encoder, self.in_chans)
        return self._target_layer

    def encoder_stages(self) -> list[nn.Module]:
        """The encoder's modules from input to output, top-level containers expanded one level.

        For timm EfficientNets this is ``[conv_stem, bn1, blocks.0, …, blocks.6, conv_head, bn2]``; for ResNets
        ``[conv1, bn1, act1, maxpool, layer1, …, layer4]``. Used to unfreeze only the last stages.
        """
        stages: list[nn.Module] = []
        for child in self.encoder.children():
            if isinstance(child, nn.Sequential | nn.ModuleList):
                stages.extend(child.children())
            elif any(True for _ in child.parameters()):
                stages.append(child)
        return stages

    def freeze_encoder(self, frozen: bool = True, *, trainable_tail: int | None = None) -> None:
        """Stop (or restart) gradient updates of the encoder, for gradual unfreezing.

        Args:
            frozen: True freezes the encoder, False makes it trainable.
            trainable_tail: with ``frozen=False``, unfreeze only the last this-many :meth:`encoder_stages`
                (the rest stay frozen). Backpropagation then stops at the first trainable stage, which makes
                fine-tuning several times cheaper on a CPU and regularises small datasets.

        Only ``requires_grad`` changes; BatchNorm statistics still follow ``train()``/``eval()``.
        """
        for param in self.encoder.parameters():
            param.requires_grad_(not frozen if trainable_tail is None else False)
        if not frozen and trainable_tail is not None:
            stages = self.encoder_stages()
            for stage in stages[max(0, len(stages) - int(trainable_tail)) :]:
                for param in stage.parameters():
                    param.requires_grad_(True)
        logger.debug("encoder %s", "frozen" if frozen else f"trainable (tail={trainable_tail})")
