"""Bilateral fundus fusion net (the EYE HEART CONNECTION design): both eyes + age → ODIR condition logits.

Why one shared encoder: the left and right fundus are the same kind of image, so one timm encoder sees both
(half the weights, twice the data per weight); a small age MLP adds the strongest non-image risk factor; a
3-layer head fuses ``[left, right, age]`` features into ``num_classes`` logits (8 ODIR labels).

The surface is the uniform one explainers rely on (timm style): ``forward_features`` (one eye's feature map),
``encode`` (pooled), ``forward_head``, ``get_classifier`` and ``target_layer`` (dotted path of the encoder module
whose output is the final feature map, found by probing the encoder, so no architecture is special-cased).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vitalens.nets._layers import get_act
from vitalens.nets._registry import register_net
from vitalens.nets.pretrained import LITE0_BACKBONE, create_backbone

__all__ = ["BilateralFusionNet", "find_feature_map_layer", "odir_bilateral", "odir_lite0", "odir_b4", "odir_test"]

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


class BilateralFusionNet(nn.Module):
    """One shared timm encoder for both eyes, an age MLP, and a 3-layer fusion head.

    Args:
        backbone: timm model name of the encoder (``efficientnet_lite0``, ``efficientnet_b4``, ``resnet18``...).
        pretrained: encoder weights: ``False`` random, ``True``/``"lite0"`` offline ImageNet Lite0 (Lite0 only),
            ``"hub"`` timm download (see :mod:`vitalens.nets.pretrained`).
        num_classes: logits out (8 ODIR labels N, D, G, C, A, H, M, O).
        in_chans: image channels.
        age_dim: width of the age embedding (2-layer MLP from the 1 normalised age value).
        head_hidden: widths of the two hidden layers of the fusion head.
        drop_rate: dropout after each of the two hidden layers of the head.
        act: activation of the age MLP and head (name or callable, :func:`vitalens.nets._layers.get_act`).
        backbone_kwargs: extra timm arguments for the encoder (``drop_path_rate``...).

    Shapes: ``left``/``right`` (B, in_chans, H, W) float, normalised as the card says; ``age`` (B,) or (B, 1)
    normalised years; logits (B, num_classes).

    Example:
        >>> net = BilateralFusionNet("test_efficientnet", head_hidden=(32, 16), age_dim=8)
        >>> net(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.zeros(2)).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        backbone: str = LITE0_BACKBONE,
        pretrained: bool | str = False,
        num_classes: int = 8,
        in_chans: int = 3,
        age_dim: int = 32,
        head_hidden: Sequence[int] = (512, 128),
        drop_rate: float = 0.3,
        act: str | Callable[..., nn.Module] = "relu",
        backbone_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(head_hidden) != 2:
            raise ValueError(f"head_hidden needs 2 widths (3-layer head), got {tuple(head_hidden)}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.encoder = create_backbone(
            backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans, **(backbone_kwargs or {})
        )
        self.num_features = int(self.encoder.num_features)
        self.age_mlp = nn.Sequential(
            nn.Linear(1, age_dim), get_act(act, inplace=True), nn.Linear(age_dim, age_dim), get_act(act, inplace=True)
        )
        h1, h2 = (int(h) for h in head_hidden)
        self.fusion = nn.Sequential(
            nn.Linear(2 * self.num_features + age_dim, h1),
            get_act(act, inplace=True),
            nn.Dropout(drop_rate),
            nn.Linear(h1, h2),
            get_act(act, inplace=True),
            nn.Dropout(drop_rate),
        )
        self.head_hidden = (h1, h2)
        self.classifier = nn.Linear(h2, num_classes)
        self._target_layer: str | None = None

    # -- the uniform surface ------------------------------------------------------------------------------
    @property
    def target_layer(self) -> str:
        """Dotted path (inside this net) of the module whose output is one eye's final feature map."""
        if self._target_layer is None:
            self._target_layer = "encoder." + find_feature_map_layer(self.encoder, self.in_chans)
        return self._target_layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """One eye (B, in_chans, H, W) → encoder feature map (B, C, h, w)."""
        return self.encoder.forward_features(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """One eye (B, in_chans, H, W) → pooled features (B, num_features)."""
        return self.encoder.forward_head(self.encoder.forward_features(x), pre_logits=True)

    def _pooled(self, feat: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_head(feat, pre_logits=True) if feat.ndim > 2 else feat

    def forward_head(
        self, left_feat: torch.Tensor, right_feat: torch.Tensor, age: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor:
        """Fuse both eyes' features and age into logits (B, num_classes), or (B, head_hidden[1]) if ``pre_logits``.

        ``left_feat``/``right_feat`` are pooled (B, F) or feature maps (B, C, h, w) (pooled here).
        """
        age = age.reshape(-1, 1).to(dtype=left_feat.dtype)
        fused = torch.cat([self._pooled(left_feat), self._pooled(right_feat), self.age_mlp(age)], dim=1)
        hidden = self.fusion(fused)
        return hidden if pre_logits else self.classifier(hidden)

    def forward(self, left: torch.Tensor, right: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """Left eye, right eye (B, in_chans, H, W) and normalised age (B,) or (B, 1) → logits (B, num_classes)."""
        if left.shape[0] != right.shape[0]:
            raise ValueError(f"left has batch {left.shape[0]}, right has {right.shape[0]}: they must match")
        both = self.encode(torch.cat([left, right], dim=0)) if left.shape[1:] == right.shape[1:] else None
        if both is None:
            left_feat, right_feat = self.encode(left), self.encode(right)
        else:
            left_feat, right_feat = both.split(left.shape[0], dim=0)
        return self.forward_head(left_feat, right_feat, age)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer with ``num_classes`` outputs (the encoder, age MLP and hidden layers are kept)."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden[1], num_classes)

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
        """Stop (or restart) gradient updates of the shared encoder, for gradual unfreezing.

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


def _create(variant: dict[str, Any], pretrained: bool | str, **kwargs: Any) -> BilateralFusionNet:
    return BilateralFusionNet(pretrained=pretrained, **{**variant, **kwargs})


@register_net("odir_bilateral")
def odir_bilateral(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """The generic bilateral fusion net; every :class:`BilateralFusionNet` argument may be given."""
    return _create({}, pretrained, **kwargs)


@register_net("odir_lite0")
def odir_lite0(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """EfficientNet-Lite0 encoder; ``pretrained=True``/"lite0" loads the offline ImageNet weights."""
    return _create({"backbone": LITE0_BACKBONE}, pretrained, **kwargs)


@register_net("odir_b4")
def odir_b4(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """EfficientNet-B4 encoder, the seed design (random init offline; ``pretrained="hub"`` where allowed)."""
    return _create({"backbone": "efficientnet_b4"}, pretrained, **kwargs)


@register_net("odir_test")
def odir_test(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """A tiny net for tests and smoke runs (timm ``test_efficientnet``): milliseconds on CPU."""
    return _create({"backbone": "test_efficientnet", "age_dim": 8, "head_hidden": (32, 16)}, pretrained, **kwargs)
