"""Grad-CAM 2D/1D and gradient × input: maps in input coordinates, in [0, 1], no NaN, target-dependent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.explain import gradcam_1d, gradcam_2d, gradcam_bilateral, rank_correlation, resolve_layer, saliency_2d
from vitalens.nets import create_net


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return create_net("odir_test").eval()


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.rand(1, 3, 96, 80, generator=g), torch.rand(1, 3, 96, 80, generator=g), torch.zeros(1, 1)


def _is_map(heat: np.ndarray, shape: tuple[int, ...]) -> None:
    assert heat.shape == shape
    assert heat.dtype == np.float32
    assert not np.isnan(heat).any()
    assert heat.min() >= 0.0 and heat.max() <= 1.0


@pytest.mark.parametrize("eye", ["left", "right"])
def test_bilateral_map_in_input_coordinates(tiny: nn.Module, pair, eye: str) -> None:
    left, right, age = pair
    heat = gradcam_bilateral(tiny, left, right, age, target_index=2, eye=eye)
    _is_map(heat, (96, 80))
    assert heat.max() == pytest.approx(1.0, abs=1e-4)  # min–max normalised, not all zero


def test_bilateral_map_changes_with_target_and_eye(tiny: nn.Module, pair) -> None:
    left, right, age = pair
    maps = {t: gradcam_bilateral(tiny, left, right, age, target_index=t, eye="left") for t in range(8)}
    assert any(not np.allclose(maps[0], maps[t], atol=1e-3) for t in range(1, 8))
    other_eye = gradcam_bilateral(tiny, left, right, age, target_index=0, eye="right")
    assert not np.allclose(maps[0], other_eye, atol=1e-3)


def test_bilateral_leaves_mode_and_works_on_a_frozen_encoder(pair) -> None:
    torch.manual_seed(0)
    net = create_net("odir_test").train()
    net.freeze_encoder(True)
    left, right, age = pair
    heat = gradcam_bilateral(net, left, right, age, target_index=1, eye="left")
    _is_map(heat, (96, 80))
    assert net.training  # mode restored
    assert heat.max() > 0


def test_bilateral_only_the_chosen_eye_matters(tiny: nn.Module, pair) -> None:
    left, right, age = pair
    a = gradcam_bilateral(tiny, left, right, age, target_index=3, eye="left")
    b = gradcam_bilateral(tiny, left, right, age, target_index=3, eye="left")
    np.testing.assert_allclose(a, b, atol=1e-6)  # deterministic
    with pytest.raises(InputError, match="eye is 'both'"):
        gradcam_bilateral(tiny, left, right, age, target_index=3, eye="both")  # type: ignore[arg-type]


def test_gradcam_2d_on_a_plain_timm_classifier() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=4).eval()
    x = torch.rand(2, 3, 64, 48)
    maps = gradcam_2d(model, x, target_index=[0, 3], target_layer="layer4")
    _is_map(maps, (2, 64, 48))
    single = gradcam_2d(model, x[0], target_index=0, target_layer=model.layer4)
    _is_map(single, (64, 48))
    np.testing.assert_allclose(single, maps[0], atol=1e-4)
    with pytest.raises(InputError, match="has no 'target_layer'"):
        gradcam_2d(model, x, target_index=0)
    with pytest.raises(InputError, match="no module 'layer9'"):
        resolve_layer(model, "layer9")
    with pytest.raises(InputError, match="2 target indices for a batch of 1"):
        gradcam_2d(model, x[:1], target_index=[0, 1], target_layer="layer4")


class _Conv1dNet(nn.Module):
    target_layer = "features.2"

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(2, 8, 7, stride=2, padding=3), nn.ReLU(), nn.Conv1d(8, 8, 5, padding=2))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)).mean(dim=-1))


def test_gradcam_1d_shape_range_and_localisation() -> None:
    torch.manual_seed(0)
    net = _Conv1dNet().eval()
    x = torch.zeros(1, 2, 200)
    x[0, :, 120:140] = 3.0  # a burst in the middle; elsewhere nothing drives the map
    heat = gradcam_1d(net, x, target_index=int(net(x).argmax()))
    _is_map(heat, (200,))
    assert heat.max() > 0
    assert np.argmax(heat) in range(100, 160)
    batch = gradcam_1d(net, torch.randn(3, 2, 200), target_index=[0, 1, 2])
    _is_map(batch, (3, 200))


def test_saliency_2d() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    x = torch.rand(1, 3, 20, 30)
    heat = saliency_2d(model, x, 1)
    _is_map(heat, (20, 30))
    assert heat.max() == pytest.approx(1.0, abs=1e-5)
    assert rank_correlation(heat, saliency_2d(model, x, 0)) < 0.999


@pytest.mark.gpu
def test_bilateral_gradcam_on_cuda(pair) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    net = create_net("odir_test").cuda().eval()
    left, right, age = (t.cuda() for t in pair)
    assert net.target_layer == "encoder.bn2"  # the probe runs on the net's device
    _is_map(gradcam_bilateral(net, left, right, age, target_index=1, eye="right"), (96, 80))


def test_gradcam_on_imagenet_lite0_points_at_the_tie() -> None:
    """Real behaviour: with the offline ImageNet weights, the 'bow tie' map peaks on Grace Hopper's tie."""
    from matplotlib import cbook
    from PIL import Image

    from vitalens.nets.pretrained import LITE0_MEAN, LITE0_STD, create_backbone

    model = create_backbone("efficientnet_lite0", pretrained="lite0").eval()
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        rgb = np.asarray(Image.open(fh).convert("RGB").resize((224, 224)))
    x = torch.from_numpy(rgb / 255.0).float().permute(2, 0, 1)
    x = (x - torch.tensor(LITE0_MEAN)[:, None, None]) / torch.tensor(LITE0_STD)[:, None, None]
    bow_tie = gradcam_2d(model, x, target_index=457, target_layer="bn2")
    _is_map(bow_tie, (224, 224))
    row, col = np.unravel_index(int(bow_tie.argmax()), bow_tie.shape)
    assert 140 <= row <= 210 and 80 <= col <= 145  # the tie, below the chin, centre-left (observed 176, 112)
    uniform = gradcam_2d(model, x, target_index=652, target_layer="bn2")
    assert rank_correlation(bow_tie, uniform) < 0.95
