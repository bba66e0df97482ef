"""One factory for layers by name (MONAI ``Conv[...]`` / timm ``get_act_layer`` style), generic in ``spatial_dims``.

Why: the 1D ECG nets and the 2D image nets share blocks; a net takes ``act="relu"`` or ``norm="batch"`` as plain
strings (so a model card can name them) and resolves them here, and a misspelt name fails listing the valid ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = ["ACTIVATIONS", "NORMS", "POOLS", "get_act", "get_norm", "get_conv", "get_pool", "SqueezeExcite"]

logger = logging.getLogger(__name__)

SPATIAL_DIMS = (1, 2, 3)

#: Activation name → class. Names are lower case; ``swish`` is an alias of ``silu``.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leakyrelu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}

#: Activations that take ``inplace=``.
_INPLACE = {"relu", "relu6", "leakyrelu", "elu", "silu", "swish", "mish", "hardswish", "hardsigmoid"}

NORMS = ("batch", "instance", "group", "layer", "none")
POOLS = ("max", "avg", "adaptivemax", "adaptiveavg")


def _check_dims(spatial_dims: int) -> int:
    if spatial_dims not in SPATIAL_DIMS:
        raise InputError(f"spatial_dims is {spatial_dims}; expected one of {SPATIAL_DIMS}", field="spatial_dims")
    return spatial_dims


def get_act(act: str | Callable[..., nn.Module] | nn.Module | None, **kwargs: Any) -> nn.Module:
    """An activation module from a name, a class/factory, or an instance (returned as is).

    Args:
        act: ``"relu"``, ``"gelu"``, ``"silu"``... (see :data:`ACTIVATIONS`), ``None`` for identity, a callable
            returning a module (e.g. ``nn.ReLU``), or a module instance.
        **kwargs: passed to the class (``inplace=True``, ``negative_slope=0.1``...); ``inplace`` is dropped for
            activations that do not take it.

    Raises:
        UnknownNameError: ``act`` is a string that names no activation (the message lists the valid ones).

    Example:
        >>> get_act("relu", inplace=True)
        ReLU(inplace=True)
    """
    if act is None:
        return nn.Identity()
    if isinstance(act, nn.Module):
        return act
    if isinstance(act, str):
        key = act.lower().replace("_", "").replace("-", "")
        if key not in ACTIVATIONS:
            raise unknown_name_error("activation", act, ACTIVATIONS)
        if key not in _INPLACE:
            kwargs.pop("inplace", None)
        return ACTIVATIONS[key](**kwargs)
    if callable(act):
        return act(**kwargs)
    raise InputError(f"act must be a name, a callable or a module, got {type(act).__name__}", field="act")


def get_norm(
    norm: str | Callable[..., nn.Module] | None, num_features: int, spatial_dims: int = 2, **kwargs: Any
) -> nn.Module:
    """A normalisation layer over ``num_features`` channels for ``spatial_dims``-D feature maps.

    Args:
        norm: ``"batch"``, ``"instance"``, ``"group"`` (``num_groups=`` kwarg, default the largest of 32, 16, 8,
            4, 2, 1 dividing ``num_features``), ``"layer"`` (GroupNorm with one group: normalises over channels and
            positions, valid for any ``spatial_dims``), ``"none"``/``None`` (identity), or a callable called as
            ``norm(num_features, **kwargs)``.
        num_features: channels C of the (B, C, *spatial) input.
        spatial_dims: 1 (signals, (B, C, L)), 2 (images, (B, C, H, W)) or 3.

    Raises:
        UnknownNameError: unknown ``norm`` name.
        InputError: unsupported ``spatial_dims``.
    """
    dims = _check_dims(spatial_dims)
    if norm is None:
        return nn.Identity()
    if not isinstance(norm, str):
        return norm(num_features, **kwargs)
    key = norm.lower()
    if key == "batch":
        return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dims - 1](num_features, **kwargs)
    if key == "instance":
        kwargs.setdefault("affine", True)
        return (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[dims - 1](num_features, **kwargs)
    if key == "group":
        groups = kwargs.pop("num_groups", None) or next(g for g in (32, 16, 8, 4, 2, 1) if num_features % g == 0)
        return nn.GroupNorm(groups, num_features, **kwargs)
    if key == "layer":
        return nn.GroupNorm(1, num_features, **kwargs)
    if key in ("none", "identity"):
        return nn.Identity()
    raise unknown_name_error("norm", norm, NORMS)


def get_conv(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d`` for ``spatial_dims`` 1 / 2 / 3."""
    return (nn.Conv1d, nn.Conv2d, nn.Conv3d)[_check_dims(spatial_dims) - 1]


def get_pool(name: str, spatial_dims: int = 2) -> type[nn.Module]:
    """A pooling class: ``"max"``, ``"avg"``, ``"adaptivemax"`` or ``"adaptiveavg"`` for ``spatial_dims``.

    Returns the class (not an instance) because the arguments differ (``kernel_size`` vs ``output_size``).

    Example:
        >>> get_pool("adaptiveavg", 1)(1)
        AdaptiveAvgPool1d(output_size=1)
    """
    dims = _check_dims(spatial_dims)
    key = name.lower().replace("_", "").replace("-", "")
    table: dict[str, tuple[type[nn.Module], ...]] = {
        "max": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
        "avg": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
        "adaptivemax": (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
        "adaptiveavg": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    }
    if key not in table:
        raise unknown_name_error("pool", name, POOLS)
    return table[key][dims - 1]


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): reweight channels by a gate computed from their global mean.

    Args:
        channels: C of the (B, C, *spatial) input; the output has the same shape.
        reduction: bottleneck ratio; the hidden width is ``max(1, channels // reduction)``.
        spatial_dims: 1 for signals, 2 for images.
        act: activation of the bottleneck (name or callable, see :func:`get_act`).
        gate: activation of the gate, ``"sigmoid"`` by default.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        spatial_dims: int = 2,
        act: str | Callable[..., nn.Module] = "relu",
        gate: str | Callable[..., nn.Module] = "sigmoid",
    ) -> None:
        super().__init__()
        if reduction < 1:
            raise InputError(f"reduction is {reduction}; expected an integer ≥ 1", field="reduction")
        conv = get_conv(spatial_dims)
        hidden = max(1, channels // reduction)
        self.pool = get_pool("adaptiveavg", spatial_dims)(1)
        self.fc1 = conv(channels, hidden, kernel_size=1)
        self.act = get_act(act, inplace=True)
        self.fc2 = conv(hidden, channels, kernel_size=1)
        self.gate = get_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → same shape, each channel scaled by a gate in (0, 1)."""
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * scale
