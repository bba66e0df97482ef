"""xresnet1d / inception1d shapes and surface; the sliding-window net scores exactly the mean (or max) of windows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vitalens.errors import InputError, UnknownNameError
from vitalens.nets import create_net
from vitalens.nets.ecg_benchmark import SlidingWindow1d, window_starts


@pytest.mark.parametrize("name", ["xresnet1d_test", "inception1d_test"])
@pytest.mark.parametrize("length", [250, 1000, 333])
def test_benchmark_nets_any_length(name: str, length: int) -> None:
    torch.manual_seed(0)
    net = create_net(name, num_classes=5).eval()
    x = torch.randn(2, 12, length)
    assert net(x).shape == (2, 5)
    feat = net.forward_features(x)
    assert feat.ndim == 3 and feat.shape[:2] == (2, net.num_features)
    assert isinstance(net.get_submodule(net.target_layer), nn.Module)
    assert net.get_classifier().out_features == 5
    with pytest.raises(InputError, match="expects"):
        net(torch.randn(2, 8, length))
    with pytest.raises(InputError, match="pretrained"):
        create_net(name, pretrained=True)


def test_window_starts_edges() -> None:
    assert window_starts(1000, 250, 125) == [0, 125, 250, 375, 500, 625, 750]
    assert window_starts(1010, 250, 125) == [0, 125, 250, 375, 500, 625, 750, 760]  # last flush with the end
    assert window_starts(250, 250, 125) == [0] and window_starts(100, 250, 125) == [0]
    assert window_starts(251, 250, 300) == [0, 1]
    with pytest.raises(InputError, match="positive"):
        window_starts(1000, 250, 0)


class _Sum(nn.Module):
    """Logits = (sum of the signal, its max): window aggregates are computable by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.sum(dim=(1, 2)), x.amax(dim=(1, 2))], dim=1)


def test_sliding_window_mean_and_max_are_exact() -> None:
    x = torch.arange(2 * 1 * 10, dtype=torch.float32).reshape(2, 1, 10)
    mean = SlidingWindow1d(_Sum(), window=4, stride=3, aggregate="mean")(x)  # windows at 0, 3, 6
    sums = torch.stack([x[..., s : s + 4].sum(dim=(1, 2)) for s in (0, 3, 6)], dim=1)
    torch.testing.assert_close(mean[:, 0], sums.mean(dim=1))
    torch.testing.assert_close(mean[:, 1], torch.tensor([(3 + 6 + 9) / 3, (13 + 16 + 19) / 3]))
    top = SlidingWindow1d(_Sum(), window=4, stride=3, aggregate="max")(x)
    torch.testing.assert_close(top[:, 0], sums.amax(dim=1))
    short = torch.randn(2, 1, 4)
    torch.testing.assert_close(SlidingWindow1d(_Sum(), 4, 3)(short), _Sum()(short))  # a crop goes through as is
    with pytest.raises(UnknownNameError):
        SlidingWindow1d(_Sum(), 4, 3, aggregate="median")


def test_ecg_windowed_builds_the_named_base() -> None:
    net = create_net("ecg_windowed", base="ecg_se_resnet1d_test", num_classes=5, window=250, stride=125).eval()
    assert net.window == 250 and net.get_classifier().out_features == 5
    x = torch.randn(1, 12, 1000)
    expected = torch.stack([net.inner(x[..., s : s + 250]) for s in window_starts(1000, 250, 125)]).mean(dim=0)
    torch.testing.assert_close(net(x), expected)
    assert not hasattr(net, "target_layer")  # one Grad-CAM map per window is not a map of the record
    with pytest.raises(InputError, match="itself"):
        create_net("ecg_windowed", base="ecg_windowed")
