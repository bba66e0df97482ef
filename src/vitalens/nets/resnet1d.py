"""1D ResNets with squeeze-and-excitation for 12-lead ECGs (``(B, leads, samples)`` → ``(B, classes)`` logits).

Why a 1D ResNet: on PTB-XL the residual 1D CNNs (``xresnet1d101``, ``resnet1d_wang``) are among the best of the
benchmark (Strodthoff et al. 2021, IEEE JBHI 25:1519) and are small enough to train on a CPU at 100 Hz; the SE gate
lets a block weigh its channels by their global content (Hu et al. 2018). Layers come from the shared factory
(``nets._layers``), so the 1D net and the 2D image nets share norms, activations and the SE block.

The surface is the uniform one explainers rely on: ``forward_features`` → ``(B, C, L')`` feature map,
``forward_head(x, pre_logits=False)``, ``get_classifier()`` and ``target_layer`` (dotted module path of the last
stage, whose output is the feature map Grad-CAM 1D weighs).

Variants are argument sets passed to one builder: ``se_resnet1d`` (generic), ``ecg_se_resnet1d_small`` (the bundled
model), ``ecg_se_resnet1d_test`` (tiny, for tests) and ``resnet1d_wang`` (the benchmark's reference network).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.nets._layers import SqueezeExcite, get_act, get_norm
from vitalens.nets._registry import register_net

__all__ = ["ResNet1d", "BasicBlock1d", "se_resnet1d", "ecg_se_resnet1d_small", "ecg_se_resnet1d_test", "resnet1d_wang"]

logger = logging.getLogger(__name__)

Layer = str | Callable[..., nn.Module]


class BasicBlock1d(nn.Module):
    """Two (or more) convolutions with a residual connection and an optional SE gate before the addition.

    Args:
        in_chans, out_chans: channels in and out.
        stride: of the first convolution (and of the 1×1 shortcut when the shape changes).
        kernel_sizes: one odd kernel size per convolution (``(7, 7)``; ``(5, 3)`` in ``resnet1d_wang``).
        se_reduction: SE bottleneck ratio; ``0`` disables SE.
        act, norm: names or callables from ``nets._layers``.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        *,
        stride: int = 1,
        kernel_sizes: Sequence[int] = (7, 7),
        se_reduction: int = 8,
        act: Layer = "relu",
        norm: Layer = "batch",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = in_chans
        for i, k in enumerate(kernel_sizes):
            layers += [
                nn.Conv1d(chans, out_chans, k, stride=stride if i == 0 else 1, padding=k // 2, bias=False),
                get_norm(norm, out_chans, spatial_dims=1),
            ]
            if i < len(kernel_sizes) - 1:
                layers.append(get_act(act, inplace=True))
            chans = out_chans
        self.convs = nn.Sequential(*layers)
        self.se = SqueezeExcite(out_chans, se_reduction, spatial_dims=1) if se_reduction else nn.Identity()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_chans, out_chans, 1, stride=stride, bias=False),
                get_norm(norm, out_chans, spatial_dims=1),
            )
        self.act = get_act(act, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, L)`` → ``(B, out_chans, ceil(L / stride))``."""
        return self.act(self.se(self.convs(x)) + self.shortcut(x))


class ResNet1d(nn.Module):
    """A 1D ResNet: stem → stages of :class:`BasicBlock1d` → global pooling → (MLP) head.

    Args:
        in_chans: input channels (12 leads).
        num_classes: outputs (5 PTB-XL superclasses), raw logits.
        widths: channels of each stage.
        depths: blocks per stage.
        strides: stride of the first block of each stage.
        kernel_sizes: kernel sizes of the convolutions inside a block.
        stem_width, stem_kernel, stem_stride: the first convolution.
        stem_pool: max-pool (k=3, s=2) after the stem.
        se_reduction: SE ratio in every block (0: plain ResNet).
        pool: ``"avg"`` or ``"concat"`` (average ‖ max, as fastai's concat pooling).
        head_hidden: width of a hidden layer in the head (0: a single linear layer).
        drop_rate: dropout before each head linear layer.
        act, norm: layer names from ``nets._layers``.
    """

    def __init__(
        self,
        in_chans: int = 12,
        num_classes: int = 5,
        *,
        widths: Sequence[int] = (64, 128, 256),
        depths: Sequence[int] = (2, 2, 2),
        strides: Sequence[int] = (1, 2, 2),
        kernel_sizes: Sequence[int] = (7, 7),
        stem_width: int = 64,
        stem_kernel: int = 15,
        stem_stride: int = 2,
        stem_pool: bool = True,
        se_reduction: int = 8,
        pool: str = "avg",
        head_hidden: int = 0,
        drop_rate: float = 0.0,
        act: Layer = "relu",
        norm: Layer = "batch",
    ) -> None:
        super().__init__()
        if not (len(widths) == len(depths) == len(strides)):
            raise InputError(
                f"widths, depths and strides must have one entry per stage, got {len(widths)}, {len(depths)}, "
                f"{len(strides)}",
                field="widths",
            )
        if pool not in ("avg", "concat"):
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("pooling", pool, ["avg", "concat"])
        self.in_chans, self.num_classes, self.pool_type = in_chans, num_classes, pool
        stem: list[nn.Module] = [
            nn.Conv1d(in_chans, stem_width, stem_kernel, stride=stem_stride, padding=stem_kernel // 2, bias=False),
            get_norm(norm, stem_width, spatial_dims=1),
            get_act(act, inplace=True),
        ]
        if stem_pool:
            stem.append(nn.MaxPool1d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        chans = stem_width
        for width, depth, stride in zip(widths, depths, strides, strict=True):
            blocks = []
            for b in range(depth):
                blocks.append(
                    BasicBlock1d(
                        chans,
                        width,
                        stride=stride if b == 0 else 1,
                        kernel_sizes=kernel_sizes,
                        se_reduction=se_reduction,
                        act=act,
                        norm=norm,
                    )
                )
                chans = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = chans * (2 if pool == "concat" else 1)
        head: list[nn.Module] = []
        features = self.num_features
        if head_hidden:
            head += [nn.Dropout(drop_rate), nn.Linear(features, head_hidden), get_act(act, inplace=True)]
            features = head_hidden
        self.pre_logits = nn.Sequential(*head)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(features, num_classes)
        self.target_layer = f"stages.{len(stages) - 1}"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, L)`` → feature map ``(B, C, L')`` of the last stage."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map ``(B, C, L')`` → logits ``(B, num_classes)`` (or the pooled features with ``pre_logits``)."""
        pooled = x.mean(dim=-1)
        if self.pool_type == "concat":
            pooled = torch.cat([pooled, x.amax(dim=-1)], dim=1)
        pooled = self.pre_logits(pooled)
        if pre_logits:
            return pooled
        return self.fc(self.head_drop(pooled))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, L)`` z-scored signal → ``(B, num_classes)`` logits."""
        if x.ndim != 3 or x.shape[1] != self.in_chans:
            raise InputError(f"ResNet1d expects (batch, {self.in_chans}, samples), got {tuple(x.shape)}", field="ecg")
        return self.forward_head(self.forward_features(x))


def _create(pretrained: bool | str, defaults: dict[str, Any], kwargs: dict[str, Any]) -> ResNet1d:
    if pretrained:
        raise InputError("no pretrained weights exist for the 1D ECG nets; use pretrained=False", field="pretrained")
    return ResNet1d(**{**defaults, **kwargs})


@register_net("se_resnet1d")
def se_resnet1d(pretrained: bool | str = False, **kwargs: Any) -> ResNet1d:
    """Generic SE-ResNet1d (64-128-256, two blocks per stage); every argument of :class:`ResNet1d` applies."""
    return _create(pretrained, {}, kwargs)


@register_net("ecg_se_resnet1d_small")
def ecg_se_resnet1d_small(pretrained: bool | str = False, **kwargs: Any) -> ResNet1d:
    """The bundled PTB-XL model: 32-64-128, one block per stage (~0.2 M parameters), trainable on a CPU."""
    defaults = {"widths": (32, 64, 128), "depths": (1, 1, 1), "stem_width": 32, "drop_rate": 0.2}
    return _create(pretrained, defaults, kwargs)


@register_net("ecg_se_resnet1d_test")
def ecg_se_resnet1d_test(pretrained: bool | str = False, **kwargs: Any) -> ResNet1d:
    """A tiny net for tests (8-16 channels)."""
    defaults = {"widths": (8, 16), "depths": (1, 1), "strides": (1, 2), "stem_width": 8, "se_reduction": 4}
    return _create(pretrained, defaults, kwargs)


@register_net("resnet1d_wang")
def resnet1d_wang(pretrained: bool | str = False, **kwargs: Any) -> ResNet1d:
    """The PTB-XL benchmark's ``resnet1d_wang`` (Strodthoff et al. 2021, after Wang et al. 2017), from its description.

    A stem convolution (kernel 7, 128 filters, stride 1, no pooling), three basic residual blocks of 128
    filters with kernel sizes 5 and 3 (no SE), concat pooling (average ‖ max) and a head with one hidden layer
    of 128 units and dropout 0.5.
    """
    defaults = {
        "widths": (128, 128, 128),
        "depths": (1, 1, 1),
        "strides": (1, 1, 1),
        "kernel_sizes": (5, 3),
        "stem_width": 128,
        "stem_kernel": 7,
        "stem_stride": 1,
        "stem_pool": False,
        "se_reduction": 0,
        "pool": "concat",
        "head_hidden": 128,
        "drop_rate": 0.5,
    }
    return _create(pretrained, defaults, kwargs)
