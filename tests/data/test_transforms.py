"""Fundus transforms: crop, square resize, exact normalisation, seeded augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitalens.data.transforms import (
    CropFundusBorder,
    FundusAugment,
    FundusPreprocess,
    ResizeSquare,
    ToNormalizedTensor,
)
from vitalens.errors import InputError, UnknownNameError


def _bordered(h: int = 40, w: int = 60) -> np.ndarray:
    """Black frame with faint JPEG-like noise (luminance 5) and a bright field at rows 5..24, cols 10..49."""
    img = np.full((h, w, 3), 5, dtype=np.uint8)
    img[5:25, 10:50] = (200, 90, 40)
    return img


def test_crop_removes_black_border_exactly() -> None:
    img = _bordered()
    out = CropFundusBorder(threshold=10)(img)
    assert out.shape == (20, 40, 3)
    assert (out == (200, 90, 40)).all()


def test_crop_threshold_is_on_luminance() -> None:
    img = np.zeros((10, 10, 3), dtype=np.uint8)
    img[2:8, 3:7] = (0, 0, 80)  # luminance 0.114 * 80 = 9.12: below a threshold of 10
    assert CropFundusBorder(threshold=10)(img).shape == (10, 10, 3)
    assert CropFundusBorder(threshold=9)(img).shape == (6, 4, 3)


def test_crop_of_an_all_black_image_is_the_image() -> None:
    img = np.zeros((8, 12, 3), dtype=np.uint8)
    assert CropFundusBorder()(img).shape == (8, 12, 3)


def test_resize_square_pads_with_black_and_keeps_aspect() -> None:
    img = np.full((20, 40, 3), 255, dtype=np.uint8)  # wide: padded 10 rows top and bottom
    out = ResizeSquare(16)(img)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[:3].max() == 0 and out[-3:].max() == 0
    assert (out[6:10] == 255).all()


def test_resize_square_unknown_interpolation_names_options() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'bilinear'"):
        ResizeSquare(8, interpolation="bilinaer")


def test_normalisation_exact_on_hand_made_image() -> None:
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[0, 0] = 0
    img[0, 1] = 255
    img[1, 0] = 51  # 0.2
    img[1, 1] = 102  # 0.4
    x = ToNormalizedTensor(mean=(0.5, 0.5, 0.2), std=(0.5, 0.25, 0.1))(img)
    assert x.shape == (3, 2, 2) and x.dtype == torch.float32
    expected = torch.tensor(
        [
            [[-1.0, 1.0], [-0.6, -0.2]],
            [[-2.0, 2.0], [-1.2, -0.4]],
            [[-2.0, 8.0], [0.0, 2.0]],
        ]
    )
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)


def test_normalisation_rejects_bad_inputs() -> None:
    with pytest.raises(InputError, match="dtype is float32, expected uint8"):
        ToNormalizedTensor()(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape is \(4, 4\), expected \(H, W, 3\)"):
        ToNormalizedTensor()(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(InputError, match="std must be > 0"):
        ToNormalizedTensor(std=(0.2, 0.0, 0.2))


def test_preprocess_shape_and_card_config() -> None:
    pre = FundusPreprocess(32, mean=(0.4, 0.3, 0.2), std=(0.2, 0.2, 0.2))
    x = pre(_bordered())
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert pre.config() == {
        "size": 32,
        "mean": [0.4, 0.3, 0.2],
        "std": [0.2, 0.2, 0.2],
        "crop_threshold": 10.0,
        "interpolation": "bilinear",
    }
    # The field of view is 20x40: after padding to 40x40 the top quarter is black → (0 − 0.4) / 0.2.
    assert x[0, 0, 16].item() == pytest.approx(-2.0, abs=1e-6)


def _random_image(size: int = 48) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen)


def test_augment_reproducible_with_set_random_state() -> None:
    img = _random_image()
    aug = FundusAugment()
    first = [aug.set_random_state(7)(img), aug(img)]
    second = [aug.set_random_state(7)(img), aug(img)]
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert first[0].shape == img.shape and first[0].dtype == torch.uint8
    assert not torch.equal(first[0], first[1])  # the stream advances between calls


def test_augment_differs_across_seeds() -> None:
    img = _random_image()
    a = FundusAugment(seed=1)(img)
    b = FundusAugment(seed=2)(img)
    assert not torch.equal(a, b)


def test_augment_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    FundusAugment(seed=3)(_random_image())
    assert torch.equal(state, torch.get_rng_state())


def test_augment_flip_only_is_an_exact_flip() -> None:
    img = _random_image(8)
    aug = FundusAugment(
        hflip_p=1.0, vflip_p=0.0, max_rotation_deg=0, brightness=0, contrast=0, saturation=0, crop_scale=(1, 1)
    )
    assert torch.equal(aug(img), img.flip(-1))


def test_augment_rejects_bad_parameters_and_inputs() -> None:
    with pytest.raises(InputError, match="hflip_p must be in"):
        FundusAugment(hflip_p=1.5)
    with pytest.raises(InputError, match="expected a \\(3, H, W\\) tensor"):
        FundusAugment()(torch.zeros(4, 4, 3, dtype=torch.uint8))


def test_geometry_maps_heat_back_onto_the_original_image() -> None:
    img = _bordered()  # field of view rows 5..24, cols 10..49 of a 40 × 60 image
    pre = FundusPreprocess(20)
    geom = pre.geometry(img)
    assert (geom.input_shape, geom.crop, geom.pad, geom.side) == ((40, 60), (5, 10, 20, 40), (10, 0), 40)
    back = geom.to_input(np.ones((20, 20), dtype=np.float32))
    assert back.shape == (40, 60) and back.dtype == np.float32
    assert (back[5:25, 10:50] == 1.0).all()
    assert back.sum() == 20 * 40  # nothing outside the crop
    with pytest.raises(InputError, match=r"heat map is \(8, 8\), expected \(20, 20\)"):
        geom.to_input(np.zeros((8, 8)))


def test_missing_card_statistics_mean_imagenet_defaults() -> None:
    pre = FundusPreprocess(8, mean=None, std=None)
    assert pre.config()["mean"] == [0.485, 0.456, 0.406] and pre.config()["std"] == [0.229, 0.224, 0.225]
