"""A small U-Net family for dense prediction (retinal vessel maps), generic in ``spatial_dims``.

Why a U-Net and why small: on DRIVE the U-Net of Ronneberger et al. (2015) trained on patches reaches the second
human observer's F1 (Zhuang 2018 LadderNet table: U-Net F1 0.775–0.814 depending on the recipe), and vessels are a
local, thin structure for which a few 3×3 levels suffice; a 16-32-64-128 net (~0.5 M parameters) trains on a CPU
in minutes per epoch and segments a whole 565 × 584 photograph in about a second.

The surface matches the classifier nets' so shared tooling never special-cases: ``forward_features(x)`` returns
the last decoder feature map ``(B, C0, H, W)``, ``forward_head(features)`` the per-pixel logits
``(B, num_classes, H, W)``, ``get_classifier()`` the 1×1 output convolution and ``target_layer`` the decoder's last
block. Inputs whose sides are not multiples of ``2 ** (levels - 1)`` are padded by reflection and the output is
cropped back, so any image size works, in the exported ONNX graph as well (``onnx_signature``: batch, height and
width free; while tracing, the pad and crop are computed from the traced shape instead of Python integers).

Variants (argument sets passed to one builder): ``unet`` (generic), ``vessel_unet_small`` (16-32-64-128, for a
GPU or a free CPU), ``vessel_unet_lite`` (8-16-32-64, the bundled model: a quarter of the compute, trained on a
shared 2-core CPU) and ``vessel_unet_test`` (tiny, for tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vitalens.errors import ArtifactError, InputError
from vitalens.nets._layers import get_act, get_conv, get_norm
from vitalens.nets._onnx import OnnxInput, OnnxSignature
from vitalens.nets._registry import register_net

__all__ = ["UNet", "ConvBlock", "unet", "vessel_unet_small", "vessel_unet_lite", "vessel_unet_test"]

logger = logging.getLogger(__name__)

Layer = str | Callable[..., nn.Module]


class ConvBlock(nn.Module):
    """Two 3×3 convolutions, each followed by a norm and an activation (dropout between them)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        *,
        spatial_dims: int = 2,
        act: Layer = "relu",
        norm: Layer = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv = get_conv(spatial_dims)
        drop = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)[spatial_dims - 1]
        self.body = nn.Sequential(
            conv(in_chans, out_chans, 3, padding=1, bias=False),
            get_norm(norm, out_chans, spatial_dims=spatial_dims),
            get_act(act, inplace=True),
            drop(dropout) if dropout > 0 else nn.Identity(),
            conv(out_chans, out_chans, 3, padding=1, bias=False),
            get_norm(norm, out_chans, spatial_dims=spatial_dims),
            get_act(act, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNet(nn.Module):
    """Encoder–decoder with skip connections (Ronneberger et al. 2015).

    Args:
        in_chans: input channels (1 for the pre-processed green channel of a fundus photograph).
        num_classes: output channels (1: vessel logit per pixel).
        widths: channels per level, finest first; ``len(widths)`` levels, ``len(widths) - 1`` poolings.
        spatial_dims: 2 for images (1 for signals, 3 for volumes).
        act, norm: layer names or callables (``nets._layers``).
        dropout: dropout inside each block.
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128),
        *,
        spatial_dims: int = 2,
        act: Layer = "relu",
        norm: Layer = "batch",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or min(widths) < 1:
            raise InputError(f"widths must list ≥ 2 positive channel counts, got {list(widths)}", field="widths")
        if num_classes < 1 or in_chans < 1:
            raise InputError(
                f"in_chans and num_classes must be ≥ 1, got {in_chans}, {num_classes}", field="num_classes"
            )
        self.spatial_dims = spatial_dims
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.widths = widths
        kw: dict[str, Any] = {"spatial_dims": spatial_dims, "act": act, "norm": norm, "dropout": dropout}
        self.down = nn.ModuleList()
        chans = in_chans
        for w in widths:
            self.down.append(ConvBlock(chans, w, **kw))
            chans = w
        convt = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[spatial_dims - 1]
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(convt(chans, w, kernel_size=2, stride=2))
            self.dec.append(ConvBlock(2 * w, w, **kw))
            chans = w
        self.head = get_conv(spatial_dims)(widths[0], num_classes, kernel_size=1)
        self.target_layer = f"dec.{len(self.dec) - 1}"
        self.num_features = widths[0]

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this (one factor 2 per pooling)."""
        return 2 ** (len(self.widths) - 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        sizes = list(x.shape[2:])
        pads: list[int] = []
        for s in reversed(sizes):
            extra = (-s) % self.multiple
            pads += [extra // 2, extra - extra // 2]
        if any(pads):
            mode = "reflect" if min(sizes) > max(pads) else "replicate"
            x = F.pad(x, pads, mode=mode)
        return x, pads

    def _traced_pad(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """:meth:`_pad` for a traced graph: pads computed as tensors from the input's shape, so they follow it.

        Always reflection (by 0 where a side is already a multiple): the eager path's replicate fallback only
        applies to sides shorter than the padding (under 8 px for the 4-level nets), far below any image input.
        """
        shape = torch._shape_as_tensor(x)
        sizes = [shape[2 + d] for d in range(self.spatial_dims)]
        pads: list[torch.Tensor] = []
        for s in reversed(sizes):
            extra = (self.multiple - s % self.multiple) % self.multiple
            pads += [extra // 2, extra - extra // 2]
        return F.pad(x, pads, mode="reflect"), pads, sizes  # type: ignore[arg-type]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, *spatial)`` → the last decoder map ``(B, widths[0], *spatial)`` (padding removed)."""
        if torch.jit.is_tracing():  # type: ignore[attr-defined, no-untyped-call]
            x, traced_pads, sizes = self._traced_pad(x)
            x = self._body(x)
            for d in range(self.spatial_dims):
                start = traced_pads[2 * (self.spatial_dims - 1 - d)]
                x = x.index_select(2 + d, torch.arange(sizes[d]) + start)  # type: ignore[call-overload]
            return x
        x, pads = self._pad(x)
        x = self._body(x)
        if any(pads):
            index = [slice(None), slice(None)]
            for d in range(self.spatial_dims):
                lo, hi = pads[2 * (self.spatial_dims - 1 - d)], pads[2 * (self.spatial_dims - 1 - d) + 1]
                index.append(slice(lo, x.shape[2 + d] - hi))
            x = x[tuple(index)]
        return x

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder and decoder on an input whose sides are multiples of :attr:`multiple`."""
        skips: list[torch.Tensor] = []
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self.spatial_dims - 1]
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = pool(x, 2)
        for up, dec in zip(self.up, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-pixel logits ``(B, num_classes, *spatial)``, or the features unchanged with ``pre_logits``."""
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def onnx_signature(self, card: Any) -> OnnxSignature:
        """One image ``input`` ``(B, in_chans, H, W)`` with batch, H and W free; the logits map has the same.

        The example size is the card's ``input.size``, else a square as wide as the card's reference field of view
        (``input.extra.fov_diameter_px``: the vessel model's photographs are resampled to it), else 64 px.
        """
        spec = card.input
        if spec.size is not None:
            size = tuple(int(s) for s in spec.size)
        else:
            side = int(round(float(spec.extra.get("fov_diameter_px") or 64)))
            size = (side,) * self.spatial_dims
        if len(size) != self.spatial_dims:
            raise ArtifactError(f"card {card.name} input size {list(size)} is not {self.spatial_dims}-D")
        free = tuple(range(2, 2 + self.spatial_dims))
        return OnnxSignature(inputs=(OnnxInput("input", (1, self.in_chans, *size), free),), output_dynamic=free)


def _create(pretrained: bool | str, defaults: dict[str, Any], kwargs: dict[str, Any]) -> UNet:
    if pretrained:
        raise InputError(
            f"no pretrained weights exist for the vessel U-Net (pretrained={pretrained!r}); train it with "
            "`vitalens train fundus.vessels`",
            field="pretrained",
        )
    return UNet(**{**defaults, **kwargs})


@register_net("unet")
def unet(pretrained: bool | str = False, **kwargs: Any) -> UNet:
    """Generic U-Net (16-32-64-128); every argument of :class:`UNet` applies."""
    return _create(pretrained, {}, kwargs)


@register_net("vessel_unet_small")
def vessel_unet_small(pretrained: bool | str = False, **kwargs: Any) -> UNet:
    """A larger vessel model: 1 input channel, 16-32-64-128, ~0.48 M parameters."""
    return _create(pretrained, {"in_chans": 1, "num_classes": 1, "widths": (16, 32, 64, 128)}, kwargs)


@register_net("vessel_unet_lite")
def vessel_unet_lite(pretrained: bool | str = False, **kwargs: Any) -> UNet:
    """The bundled vessel model: 1 input channel, 8-16-32-64, ~0.12 M parameters (≈ 0.2 CPU-s per 32 × 48² batch)."""
    return _create(pretrained, {"in_chans": 1, "num_classes": 1, "widths": (8, 16, 32, 64)}, kwargs)


@register_net("vessel_unet_test")
def vessel_unet_test(pretrained: bool | str = False, **kwargs: Any) -> UNet:
    """A tiny U-Net for tests (4-8 channels, two levels)."""
    return _create(pretrained, {"in_chans": 1, "num_classes": 1, "widths": (4, 8), "dropout": 0.0}, kwargs)
