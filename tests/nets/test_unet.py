"""The U-Net family: shapes for any input size, the uniform net surface, variants from the registry."""

from __future__ import annotations

import pytest
import torch

from vitalens.errors import InputError
from vitalens.nets import create_net, list_nets


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (20, 64)])
def test_output_matches_input_size(size: tuple[int, int]) -> None:
    net = create_net("vessel_unet_test").eval()
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        y = net(x)
        feats = net.forward_features(x)
    assert y.shape == (2, 1, *size)
    assert feats.shape == (2, net.num_features, *size)
    assert torch.isfinite(y).all()


def test_uniform_surface() -> None:
    net = create_net("vessel_unet_test")
    assert net.get_classifier() is net.head
    assert dict(net.named_modules())[net.target_layer] is net.dec[-1]
    x = torch.randn(1, 1, 16, 16)
    assert torch.equal(net.forward_head(net.forward_features(x), pre_logits=True), net.forward_features(x))


def test_variants_registered() -> None:
    assert {"unet", "vessel_unet_small", "vessel_unet_lite", "vessel_unet_test"} <= set(list_nets("*unet*"))
    small = create_net("vessel_unet_small")
    assert small.widths == (16, 32, 64, 128)
    assert 0.4e6 < sum(p.numel() for p in small.parameters()) < 0.6e6


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="widths"):
        create_net("unet", widths=(8,))
    with pytest.raises(InputError, match="pretrained"):
        create_net("vessel_unet_small", pretrained="hub")
