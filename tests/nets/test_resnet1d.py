"""SE-ResNet1d variants: shapes, uniform surface, registry."""

from __future__ import annotations

import pytest
import torch

from vitalens.errors import InputError
from vitalens.nets import create_net, list_nets


@pytest.mark.parametrize("name", ["ecg_se_resnet1d_test", "ecg_se_resnet1d_small", "resnet1d_wang"])
def test_shapes_and_surface(name: str) -> None:
    torch.manual_seed(0)
    net = create_net(name, num_classes=5).eval()
    x = torch.randn(2, 12, 1000)
    feats = net.forward_features(x)
    assert feats.ndim == 3 and feats.shape[0] == 2
    logits = net(x)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    torch.testing.assert_close(net.forward_head(feats), logits)
    assert net.forward_head(feats, pre_logits=True).shape[1] == net.get_classifier().in_features
    assert net.get_submodule(net.target_layer) is net.stages[-1]  # its output is the feature map


def test_registered_and_errors() -> None:
    assert {"se_resnet1d", "ecg_se_resnet1d_small", "ecg_se_resnet1d_test", "resnet1d_wang"} <= set(list_nets())
    net = create_net("ecg_se_resnet1d_test")
    with pytest.raises(InputError, match="expects"):
        net(torch.randn(1, 8, 100))
    with pytest.raises(InputError, match="pretrained"):
        create_net("ecg_se_resnet1d_test", pretrained=True)
    assert create_net("ecg_se_resnet1d_test", in_chans=1, num_classes=2)(torch.randn(3, 1, 200)).shape == (3, 2)
