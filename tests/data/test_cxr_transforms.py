"""Radiograph transforms: grayscale conversion, the centre crop and its inverse for heat maps, CLAHE, augmentation
without flips, and seeded synthetic opacities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitalens.data.cxr_transforms import ClaheEnhance, CxrAugment, CxrPreprocess, SyntheticOpacity, to_grayscale
from vitalens.errors import InputError


def test_to_grayscale_exact_luma() -> None:
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 0, 255)
    assert to_grayscale(rgb).tolist() == [[76, 29]]  # round(0.299·255), round(0.114·255)
    assert to_grayscale(np.full((3, 3, 1), 9, np.uint8)).shape == (3, 3)
    with pytest.raises(InputError, match="uint8"):
        to_grayscale(np.zeros((4, 4), np.float32))


def test_centre_crop_and_geometry_exact() -> None:
    pre = CxrPreprocess(4, (0.5,) * 3, (0.5,) * 3, interpolation="nearest")
    image = np.zeros((6, 4), np.uint8)
    image[1:5] = 200  # rows 1..4 are the centre square of a 6 × 4 portrait
    assert pre.crop_box(image.shape) == (1, 0, 4, 4)
    square = pre.square(image)
    assert square.shape == (4, 4, 3) and (square == 200).all()
    x = pre(image)
    assert x.shape == (3, 4, 4) and torch.allclose(x, torch.full_like(x, (200 / 255 - 0.5) / 0.5))
    heat = pre.geometry(image).to_input(np.ones((4, 4), np.float32))
    assert heat.shape == (6, 4)
    assert heat[1:5].min() == pytest.approx(1.0) and heat[0].max() == 0.0 and heat[5].max() == 0.0


def test_clahe_raises_local_contrast() -> None:
    rng = np.random.default_rng(0)
    flat = (100 + rng.integers(0, 8, (64, 64))).astype(np.uint8)
    out = ClaheEnhance()(flat)
    assert out.shape == flat.shape and out.dtype == np.uint8 and out.std() > flat.std()
    with pytest.raises(InputError):
        ClaheEnhance(clip_limit=0)


def test_augment_is_seeded_and_never_mirrors() -> None:
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:, :, :8] = 255  # a bright band on the left
    a = CxrAugment(seed=3)(image)
    b = CxrAugment(seed=3)(image)
    assert torch.equal(a, b)
    for seed in range(10):
        out = CxrAugment(seed=seed)(image).float()
        assert out[:, :, :12].mean() > out[:, :, -12:].mean()  # the band stays on the left


def test_synthetic_opacity_adds_density_reproducibly() -> None:
    gray = np.full((64, 64), 60, np.uint8)
    a = SyntheticOpacity(seed=1)(gray)
    assert np.array_equal(a, SyntheticOpacity(seed=1)(gray))
    assert a.dtype == np.uint8 and (a >= gray).all() and a.mean() > gray.mean() + 1
