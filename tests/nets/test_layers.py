"""The layer factory: names resolve to the right classes for 1D and 2D, unknown names fail helpfully."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vitalens.errors import InputError, UnknownNameError
from vitalens.nets._layers import SqueezeExcite, get_act, get_conv, get_norm, get_pool


@pytest.mark.parametrize(
    ("name", "cls"),
    [("relu", nn.ReLU), ("GELU", nn.GELU), ("swish", nn.SiLU), ("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh)],
)
def test_get_act_by_name(name: str, cls: type[nn.Module]) -> None:
    assert type(get_act(name)) is cls


def test_get_act_inplace_kept_or_dropped() -> None:
    assert get_act("relu", inplace=True).inplace is True
    assert type(get_act("gelu", inplace=True)) is nn.GELU  # GELU takes no inplace: dropped, not an error


def test_get_act_callable_instance_and_none() -> None:
    assert type(get_act(nn.ELU, alpha=0.5)) is nn.ELU
    inst = nn.Tanh()
    assert get_act(inst) is inst
    assert type(get_act(None)) is nn.Identity


def test_get_act_unknown_lists_options_and_closest() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_act("rellu")
    message = str(info.value)
    assert "Did you mean 'relu'" in message
    assert "gelu" in message and "silu" in message


@pytest.mark.parametrize(
    ("dims", "norm", "cls"),
    [
        (1, "batch", nn.BatchNorm1d),
        (2, "batch", nn.BatchNorm2d),
        (1, "instance", nn.InstanceNorm1d),
        (2, "instance", nn.InstanceNorm2d),
        (2, "group", nn.GroupNorm),
        (1, "layer", nn.GroupNorm),
        (2, "none", nn.Identity),
    ],
)
def test_get_norm(dims: int, norm: str, cls: type[nn.Module]) -> None:
    layer = get_norm(norm, 24, dims)
    assert type(layer) is cls
    shape = (2, 24, 10) if dims == 1 else (2, 24, 6, 6)
    assert layer(torch.randn(shape)).shape == shape


def test_group_norm_picks_a_divisor_and_layer_norm_one_group() -> None:
    assert get_norm("group", 24, 2).num_groups == 8
    assert get_norm("group", 64, 2).num_groups == 32
    assert get_norm("group", 24, 2, num_groups=3).num_groups == 3
    assert get_norm("layer", 24, 1).num_groups == 1


def test_get_norm_unknown_and_bad_dims() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'batch'"):
        get_norm("bacth", 8, 2)
    with pytest.raises(InputError, match="spatial_dims is 4"):
        get_norm("batch", 8, 4)


def test_get_conv_and_pool() -> None:
    assert get_conv(1) is nn.Conv1d and get_conv(2) is nn.Conv2d
    assert get_pool("max", 1) is nn.MaxPool1d
    assert get_pool("adaptive_avg", 2) is nn.AdaptiveAvgPool2d
    with pytest.raises(UnknownNameError, match="Did you mean 'avg'"):
        get_pool("avgg", 2)
    with pytest.raises(InputError, match="spatial_dims is 0"):
        get_conv(0)


@pytest.mark.parametrize(("dims", "shape"), [(1, (2, 16, 50)), (2, (2, 16, 7, 9))])
def test_squeeze_excite_keeps_shape_and_gates_channels(dims: int, shape: tuple[int, ...]) -> None:
    se = SqueezeExcite(16, reduction=4, spatial_dims=dims)
    assert se.fc1.out_channels == 4
    x = torch.rand(shape) + 0.1
    y = se(x)
    assert y.shape == x.shape
    ratio = y / x  # per channel a single gate in (0, 1), the same at every position
    flat = ratio.flatten(2)
    assert torch.allclose(flat, flat[..., :1].expand_as(flat), atol=1e-5)
    assert bool(((ratio > 0) & (ratio < 1)).all())


def test_squeeze_excite_bad_reduction() -> None:
    with pytest.raises(InputError, match="reduction is 0"):
        SqueezeExcite(8, reduction=0)
