"""The PTB-XL benchmark's other strong nets (``xresnet1d101``, ``inception1d``) and a sliding-window wrapper.

Why: Strodthoff et al. (2021, IEEE JBHI 25:1519) report their best PTB-XL results with ``xresnet1d101`` and
``inception1d`` trained on random 2.5 s crops, a record being scored by aggregating the predictions of sliding
windows over its 10 s. :class:`SlidingWindow1d` makes that protocol a property of the net: a crop no longer than
the window goes through the inner net as is (training), a longer signal is cut into windows (``stride`` apart, the
last one flush with the end) whose logits are averaged (or max-pooled), so the analyzer, the training engine's
validation and the ONNX export all see one ``(B, 12, L) → (B, K)`` net.

The two nets follow the benchmark's descriptions (fastai's xresnet with 1D convolutions, kernel 5, bottleneck
blocks 3-4-23-3; InceptionTime-style inception blocks with kernels 39/19/9, 32 filters, bottleneck 32, depth 6,
a residual every 3 blocks), not its code. All expose ``forward_features``, ``forward_head``, ``get_classifier``
and ``target_layer``; the window wrapper exposes no ``target_layer`` (a Grad-CAM map per window is not one map of
the record; gradient attributions through it are exact).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.nets._registry import create_net, register_net

__all__ = ["XResNet1d", "Inception1d", "SlidingWindow1d", "window_starts"]

logger = logging.getLogger(__name__)


def _no_pretrained(pretrained: bool | str) -> None:
    if pretrained:
        raise InputError("no pretrained weights exist for the 1D ECG nets; use pretrained=False", field="pretrained")


def _conv(ni: int, nf: int, ks: int = 5, stride: int = 1, act: bool = True, zero_bn: bool = False) -> nn.Sequential:
    bn = nn.BatchNorm1d(nf)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    layers: list[nn.Module] = [nn.Conv1d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False), bn]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _XBottleneck(nn.Module):
    """fastai's xresnet bottleneck (1×1 → k → 1×1, last BN zero-initialised), average-pool shortcut."""

    def __init__(self, ni: int, nh: int, stride: int, expansion: int = 4, ks: int = 5) -> None:
        super().__init__()
        nf = nh * expansion
        self.convs = nn.Sequential(
            _conv(ni, nh, 1), _conv(nh, nh, ks, stride=stride), _conv(nh, nf, 1, act=False, zero_bn=True)
        )
        idpath: list[nn.Module] = []
        if stride != 1:
            idpath.append(nn.AvgPool1d(2, stride=2, ceil_mode=True))
        if ni != nf:
            idpath.append(_conv(ni, nf, 1, act=False))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.idpath(x))


class _ConcatPoolHead(nn.Module):
    """Average ‖ max pooling → BN → dropout → linear → ReLU → BN → dropout → linear (fastai's head, as the
    benchmark uses)."""

    def __init__(self, nf: int, num_classes: int, hidden: int = 128, drop: float = 0.5) -> None:
        super().__init__()
        self.pre_logits = nn.Sequential(
            nn.BatchNorm1d(2 * nf),
            nn.Dropout(drop / 2),
            nn.Linear(2 * nf, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(drop),
        )
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.pre_logits(torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1))
        return pooled if pre_logits else self.fc(pooled)


class _Surface(nn.Module):
    """The uniform net surface on top of ``features`` and ``head``."""

    features: nn.Module
    head: _ConcatPoolHead
    in_chans: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_chans:
            raise InputError(
                f"{type(self).__name__} expects (batch, {self.in_chans}, samples), got {tuple(x.shape)}", field="ecg"
            )
        return self.forward_head(self.forward_features(x))


class XResNet1d(_Surface):
    """fastai-style xresnet for 1D signals (stem of three convolutions, bottleneck stages, concat-pool head).

    Args:
        layers: blocks per stage (``(3, 4, 23, 3)`` = xresnet1d101).
        widths: bottleneck widths per stage (outputs are 4× these).
        ks: kernel size of the middle convolution of each block and of the stem.
    """

    def __init__(
        self,
        in_chans: int = 12,
        num_classes: int = 5,
        *,
        layers: Sequence[int] = (3, 4, 23, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: Sequence[int] = (32, 32, 64),
        ks: int = 5,
        expansion: int = 4,
        drop: float = 0.5,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths):
            raise InputError(f"layers and widths differ in length ({len(layers)}, {len(widths)})", field="layers")
        self.in_chans, self.num_classes = in_chans, num_classes
        chans = [in_chans, *stem]
        stem_layers: list[nn.Module] = [
            _conv(chans[i], chans[i + 1], ks, stride=2 if i == 0 else 1) for i in range(len(stem))
        ]
        stem_layers.append(nn.MaxPool1d(3, stride=2, padding=1))
        blocks: list[nn.Module] = [nn.Sequential(*stem_layers)]
        ni = stem[-1]
        for i, (n, nh) in enumerate(zip(layers, widths, strict=True)):
            stage = []
            for b in range(n):
                stage.append(_XBottleneck(ni, nh, stride=2 if (b == 0 and i > 0) else 1, expansion=expansion, ks=ks))
                ni = nh * expansion
            blocks.append(nn.Sequential(*stage))
        self.features = nn.Sequential(*blocks)
        self.num_features = ni
        self.head = _ConcatPoolHead(ni, num_classes, drop=drop)
        self.target_layer = f"features.{len(blocks) - 1}"


class _InceptionBlock(nn.Module):
    def __init__(self, ni: int, nf: int, kernels: Sequence[int], bottleneck: int) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(ni, bottleneck, 1, bias=False) if bottleneck and ni > 1 else nn.Identity()
        mid = bottleneck if bottleneck and ni > 1 else ni
        self.convs = nn.ModuleList(nn.Conv1d(mid, nf, k, padding=k // 2, bias=False) for k in kernels)
        self.pool = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(ni, nf, 1, bias=False))
        self.bn_act = nn.Sequential(nn.BatchNorm1d(nf * (len(kernels) + 1)), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bottleneck(x)
        return self.bn_act(torch.cat([c(b) for c in self.convs] + [self.pool(x)], dim=1))


class _InceptionStack(nn.Module):
    """``depth`` inception blocks with a residual (1×1 conv + BN) every ``residual_every`` blocks."""

    def __init__(
        self, ni: int, nf: int, depth: int, kernels: Sequence[int], bottleneck: int, residual_every: int
    ) -> None:
        super().__init__()
        out = nf * (len(kernels) + 1)
        self.blocks = nn.ModuleList(
            _InceptionBlock(ni if d == 0 else out, nf, kernels, bottleneck) for d in range(depth)
        )
        self.residual_every = residual_every
        self.shortcuts = nn.ModuleList(
            nn.Sequential(nn.Conv1d(ni if r == 0 else out, out, 1, bias=False), nn.BatchNorm1d(out))
            for r in range(depth // residual_every)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if (d + 1) % self.residual_every == 0:
                x = self.act(x + self.shortcuts[d // self.residual_every](res))
                res = x
        return x


class Inception1d(_Surface):
    """The benchmark's ``inception1d`` (InceptionTime-style, Fawaz et al. 2020), concat-pool head.

    Args:
        nf: filters per branch (the block outputs ``nf × (len(kernels) + 1)`` channels).
        depth: inception blocks; a residual every ``residual_every``.
        kernels: branch kernel sizes (the benchmark's kernel size 40 → 39, 19, 9 made odd).
        bottleneck: channels of the 1×1 bottleneck before the branches.
    """

    def __init__(
        self,
        in_chans: int = 12,
        num_classes: int = 5,
        *,
        nf: int = 32,
        depth: int = 6,
        kernels: Sequence[int] = (39, 19, 9),
        bottleneck: int = 32,
        residual_every: int = 3,
        drop: float = 0.5,
    ) -> None:
        super().__init__()
        if depth % residual_every:
            raise InputError(f"depth {depth} is not a multiple of residual_every {residual_every}", field="depth")
        self.in_chans, self.num_classes = in_chans, num_classes
        self.features = _InceptionStack(in_chans, nf, depth, kernels, bottleneck, residual_every)
        self.num_features = nf * (len(kernels) + 1)
        self.head = _ConcatPoolHead(self.num_features, num_classes, drop=drop)
        self.target_layer = "features"


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start samples of the sliding windows over ``length`` samples: every ``stride``, the last flush with the end.

    Example:
        >>> window_starts(1000, 250, 125)
        [0, 125, 250, 375, 500, 625, 750]
        >>> window_starts(1010, 250, 125)
        [0, 125, 250, 375, 500, 625, 750, 760]
    """
    if window <= 0 or stride <= 0:
        raise InputError(f"window ({window}) and stride ({stride}) must be positive", field="window")
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


class SlidingWindow1d(nn.Module):
    """Score a signal by aggregating the inner net's logits over sliding windows (train the inner net on crops).

    Args:
        inner: any ``(B, C, L) → (B, K)`` net.
        window: window length in samples (250 = 2.5 s at 100 Hz).
        stride: samples between window starts.
        aggregate: ``"mean"`` or ``"max"`` of the window logits.
    """

    def __init__(self, inner: nn.Module, window: int, stride: int, aggregate: str = "mean") -> None:
        super().__init__()
        if aggregate not in ("mean", "max"):
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("window aggregate", aggregate, ["mean", "max"])
        window_starts(window, window, stride)  # validates window and stride
        self.inner, self.window, self.stride, self.aggregate = inner, int(window), int(stride), aggregate
        self.in_chans = getattr(inner, "in_chans", 12)
        self.num_classes = getattr(inner, "num_classes", None)

    def get_classifier(self) -> nn.Module:
        return self.inner.get_classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise InputError(f"expected (batch, leads, samples), got {tuple(x.shape)}", field="ecg")
        if x.shape[-1] <= self.window:
            return self.inner(x)
        starts = window_starts(int(x.shape[-1]), self.window, self.stride)
        windows = torch.stack([x[..., s : s + self.window] for s in starts], dim=1)  # (B, W, C, window)
        b, w = windows.shape[:2]
        logits = self.inner(windows.reshape(b * w, *windows.shape[2:])).reshape(b, w, -1)
        return logits.mean(dim=1) if self.aggregate == "mean" else logits.amax(dim=1)


@register_net("xresnet1d101")
def xresnet1d101(pretrained: bool | str = False, **kwargs: Any) -> XResNet1d:
    """xresnet1d101 of the PTB-XL benchmark (bottleneck stages 3-4-23-3, kernel 5: 33.6 M parameters, 134 MB in
    float32, beyond the 25 MB of a bundled model and a CPU training budget)."""
    _no_pretrained(pretrained)
    return XResNet1d(**kwargs)


@register_net("xresnet1d_test")
def xresnet1d_test(pretrained: bool | str = False, **kwargs: Any) -> XResNet1d:
    """A tiny xresnet1d for tests."""
    _no_pretrained(pretrained)
    return XResNet1d(**{"layers": (1, 1), "widths": (8, 16), "stem": (8, 8, 8), **kwargs})


@register_net("inception1d")
def inception1d(pretrained: bool | str = False, **kwargs: Any) -> Inception1d:
    """inception1d of the PTB-XL benchmark (depth 6, 32 filters per branch, kernels 39/19/9)."""
    _no_pretrained(pretrained)
    return Inception1d(**kwargs)


@register_net("inception1d_test")
def inception1d_test(pretrained: bool | str = False, **kwargs: Any) -> Inception1d:
    """A tiny inception1d for tests."""
    _no_pretrained(pretrained)
    return Inception1d(**{"nf": 4, "depth": 3, "bottleneck": 4, "kernels": (9, 5), **kwargs})


@register_net("ecg_windowed")
def ecg_windowed(
    pretrained: bool | str = False,
    *,
    base: str = "ecg_se_resnet1d_small",
    window: int = 250,
    stride: int = 125,
    aggregate: str = "mean",
    **kwargs: Any,
) -> SlidingWindow1d:
    """Any registered 1D net ``base`` (built with ``kwargs``) scored over sliding windows (2.5 s / 1.25 s at 100 Hz)."""
    if base == "ecg_windowed":
        raise InputError("ecg_windowed cannot wrap itself", field="base")
    return SlidingWindow1d(create_net(base, pretrained=pretrained, **kwargs), window, stride, aggregate)
