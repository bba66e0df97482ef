"""1D attributions: shapes, [0, 1] range, and sample alignment on linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vitalens.errors import InputError, UnknownNameError
from vitalens.explain.attribution1d import METHODS, attribute_1d, downsample, normalize01
from vitalens.nets import create_net

LEADS, N = 12, 200


def _linear(weight: torch.Tensor) -> nn.Module:
    lin = nn.Linear(LEADS * N, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight.reshape(2, -1))
    return nn.Sequential(nn.Flatten(), lin)


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient"])
def test_spike_in_input_gets_top_attribution(method: str) -> None:
    model = _linear(torch.ones(2, LEADS, N))
    x = torch.zeros(LEADS, N)
    x[3, 137] = 5.0
    a = attribute_1d(model, x, 1, method=method)
    assert a.per_lead.shape == (LEADS, N) and a.pooled.shape == (N,)
    assert np.unravel_index(a.per_lead.argmax(), a.per_lead.shape) == (3, 137)
    assert int(a.pooled.argmax()) == 137 and a.pooled.max() == 1.0 and a.pooled.min() == 0.0


def test_saliency_follows_the_weight_spike() -> None:
    w = torch.ones(2, LEADS, N) * 0.01
    w[0, 7, 42] = 3.0
    a = attribute_1d(_linear(w), torch.randn(LEADS, N), 0, method="saliency")
    assert np.unravel_index(a.per_lead.argmax(), a.per_lead.shape) == (7, 42)
    assert a.method == "saliency" and a.target_index == 0


@pytest.mark.parametrize("method", METHODS)
def test_conv_net_ranges(method: str) -> None:
    torch.manual_seed(0)
    net = create_net("ecg_se_resnet1d_test").eval()
    a = attribute_1d(net, np.random.default_rng(0).normal(size=(12, 1000)).astype(np.float32), 2, method=method)
    assert a.per_lead.shape == (12, 1000) and a.pooled.shape == (1000,)
    for arr in (a.per_lead, a.pooled):
        assert arr.dtype == np.float32 and arr.min() >= 0.0 and arr.max() <= 1.0 and np.isfinite(arr).all()
    assert not net.training


def test_errors_and_helpers() -> None:
    net = create_net("ecg_se_resnet1d_test")
    with pytest.raises(UnknownNameError, match="saliency"):
        attribute_1d(net, torch.zeros(12, 100), 0, method="salency")
    with pytest.raises(InputError, match="leads, samples"):
        attribute_1d(net, torch.zeros(1, 12, 100), 0)
    assert normalize01(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalize01(np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert downsample(np.array([[0.0, 1.0, 0.2, 0.3]]), 2).tolist() == [[1.0, 0.3]]
