"""overlay_png: decodes to the image's size, heat resized, colours blended by alpha."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vitalens.errors import InputError, UnknownNameError
from vitalens.explain import colorize, overlay_png


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_png_has_the_image_size_with_a_smaller_heat_map() -> None:
    image = np.full((60, 90, 3), 100, dtype=np.uint8)
    heat = np.zeros((6, 9), dtype=np.float32)
    heat[:, :3] = 1.0
    out = _decode(overlay_png(image, heat))
    assert out.shape == (60, 90, 3)
    # jet: 0 → dark blue, 1 → dark red; left third hot, right two thirds cold
    assert out[30, 5, 0] > out[30, 5, 2]
    assert out[30, 80, 2] > out[30, 80, 0]


def test_alpha_extremes() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    heat = rng.random((16, 12)).astype(np.float32)
    np.testing.assert_array_equal(_decode(overlay_png(image, heat, alpha=0.0)), image)
    np.testing.assert_array_equal(_decode(overlay_png(image, heat, alpha=1.0, cmap="gray")), colorize(heat, "gray"))
    half = _decode(overlay_png(image, np.zeros((16, 12)), alpha=0.5, cmap="gray"))
    np.testing.assert_allclose(half, image.astype(float) / 2, atol=1.0)  # gray(0) is black


def test_grayscale_image_nan_heat_and_errors() -> None:
    out = _decode(overlay_png(np.zeros((10, 10), dtype=np.uint8), np.full((5, 5), np.nan)))
    assert out.shape == (10, 10, 3)
    with pytest.raises(InputError, match="dtype is float64; expected uint8"):
        overlay_png(np.zeros((10, 10, 3)), np.zeros((5, 5)))
    with pytest.raises(InputError, match="alpha is 1.5"):
        overlay_png(np.zeros((10, 10, 3), dtype=np.uint8), np.zeros((5, 5)), alpha=1.5)
    with pytest.raises(InputError, match=r"heat map shape is \(2, 5, 5\)"):
        overlay_png(np.zeros((10, 10, 3), dtype=np.uint8), np.zeros((2, 5, 5)))
    with pytest.raises(UnknownNameError, match="Did you mean 'jet'"):
        overlay_png(np.zeros((10, 10, 3), dtype=np.uint8), np.zeros((5, 5)), cmap="jett")


def test_colours_are_exactly_matplotlibs() -> None:
    import matplotlib

    x = np.concatenate([np.linspace(0.0, 1.0, 4097, dtype=np.float32), np.array([1 / 256, 255 / 256, np.nan])])
    for cmap in ("jet", "gray", "YlOrRd"):
        expected = (matplotlib.colormaps[cmap](np.nan_to_num(x))[..., :3] * 255.0 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(colorize(x, cmap), expected)


def test_large_images_are_shown_downscaled_with_their_aspect() -> None:
    from vitalens.explain.overlay import OVERLAY_MAX_SIDE, heatmap_png

    image = np.zeros((1000, 2 * OVERLAY_MAX_SIDE, 3), dtype=np.uint8)
    image[:, OVERLAY_MAX_SIDE:] = 200  # right half bright
    heat = np.zeros((10, 20), dtype=np.float32)
    out = _decode(overlay_png(image, heat, alpha=0.0))
    assert out.shape == (500, OVERLAY_MAX_SIDE, 3)
    assert out[250, 10, 0] == 0 and out[250, OVERLAY_MAX_SIDE - 10, 0] == 200
    assert _decode(overlay_png(image, heat, max_side=None)).shape == (1000, 2 * OVERLAY_MAX_SIDE, 3)
    assert _decode(overlay_png(image[:300, :400], heat)).shape == (300, 400, 3)  # smaller: untouched
    assert _decode(heatmap_png(np.zeros((1000, 2 * OVERLAY_MAX_SIDE)))).shape == (500, OVERLAY_MAX_SIDE, 3)
    with pytest.raises(InputError, match="max_side is 0"):
        overlay_png(image, heat, max_side=0)
