"""Render a heat map over the image it explains, as PNG bytes for the web app, the API and the PDF report.

Why one renderer: the clinician sees the same overlay on screen and in the signed report; the map is resized to
the image here, so callers pass the map in any resolution of the same field of view.

Why the overlay is capped at :data:`OVERLAY_MAX_SIDE` px and encoded with a fast PNG level: an overlay is for
looking at, and the maps it shows are coarse (a Grad-CAM map of a 256 px input has 8 × 8 cells; a vessel map is
computed at about 540 px). A full-resolution fundus photograph (2592 × 1728) took 1.65 s to blend and encode at
PNG level 6, a dozen times the explanation itself; at 1024 px and level 1 it takes a few tens of milliseconds and
shows the same thing. The web page scales the overlay to the photograph it is stacked on.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

import numpy as np

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = ["OVERLAY_MAX_SIDE", "PNG_COMPRESS_LEVEL", "colorize", "heatmap_png", "overlay_png", "png_bytes"]

logger = logging.getLogger(__name__)

#: Longest side of a rendered overlay, px; larger images are shown downscaled (aspect kept).
OVERLAY_MAX_SIDE = 1024
#: zlib level of the rendered PNGs: 1 encodes about 4× faster than the default 6 for ~20 % more bytes.
PNG_COMPRESS_LEVEL = 1


def png_bytes(array: np.ndarray) -> bytes:
    """An (H, W), (H, W, 3) or (H, W, 4) uint8 array as PNG bytes at :data:`PNG_COMPRESS_LEVEL`."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"image dtype is {image.dtype}; expected uint8", field="image")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise InputError(f"image shape is {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)", field="image")


def _capped_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """``(height, width)`` scaled (aspect kept) so the longest side is at most ``max_side``; unchanged when smaller."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _capped(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """``rgb`` downscaled (area-preserving) so its longest side is at most ``max_side``; unchanged when smaller."""
    from PIL import Image

    height, width = _capped_size(rgb.shape[0], rgb.shape[1], max_side)
    if (height, width) == rgb.shape[:2]:
        return rgb
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.Resampling.BOX))


def _resized_heat(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise InputError(f"heat map shape is {heat.shape}; expected (h, w)", field="heat")
    heat = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    if heat.shape != (height, width):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((width, height), Image.BILINEAR))
    return np.clip(heat, 0.0, 1.0)


@lru_cache(maxsize=16)
def _lookup_table(cmap: str) -> np.ndarray:
    """The colormap's ``N`` colours as uint8 RGB rows (the table matplotlib itself indexes for float input)."""
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise unknown_name_error("colormap", cmap, list(matplotlib.colormaps))
    colormap = matplotlib.colormaps[cmap]
    rgba = colormap(np.arange(colormap.N))
    table = (rgba[:, :3] * 255.0 + 0.5).astype(np.uint8)
    table.setflags(write=False)
    return table


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(h, w) map in [0, 1] → (h, w, 3) uint8 colours of matplotlib colormap ``cmap``.

    Indexes the colormap's table as matplotlib does for floats (``floor(x · N)``, 1.0 into the last colour), so
    the colours are exactly matplotlib's, without its per-call float RGBA arrays."""
    table = _lookup_table(cmap)
    n = table.shape[0]
    x = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    index = np.minimum((x * n).astype(np.intp), n - 1)
    return table[index]


def overlay_png(
    image_rgb_uint8: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.45,
    cmap: str = "jet",
    *,
    max_side: int | None = OVERLAY_MAX_SIDE,
) -> bytes:
    """Blend a coloured heat map over an image and encode the result as PNG.

    Args:
        image_rgb_uint8: (H, W, 3) uint8 RGB (grayscale (H, W) and RGBA are accepted too).
        heat: (h, w) float map in [0, 1] over the same field of view; resized (bilinear) to the output size.
        alpha: weight of the heat colours, 0 (image only) – 1 (heat only).
        cmap: matplotlib colormap name.
        max_side: longest side of the output, px (:data:`OVERLAY_MAX_SIDE`); ``None`` keeps the image's size.

    Returns:
        PNG bytes of an RGB image of the image's size, or downscaled (aspect kept) to ``max_side``.

    Example:
        >>> png = overlay_png(image, gradcam_2d(net, x, target_index=2))
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha is {alpha}; expected a value in [0, 1]", field="alpha")
    if max_side is not None and max_side < 1:
        raise InputError(f"max_side is {max_side}; expected at least 1 px", field="max_side")
    rgb = _capped(_as_rgb(image_rgb_uint8), max_side)
    colours = colorize(_resized_heat(heat, rgb.shape[0], rgb.shape[1]), cmap).astype(np.float32)
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours
    return png_bytes(np.clip(blended + 0.5, 0, 255).astype(np.uint8))


def heatmap_png(heat: np.ndarray, cmap: str = "jet", *, max_side: int | None = OVERLAY_MAX_SIDE) -> bytes:
    """An image map drawn alone, colour-coded in its own pixels (the middle panel of original | map | overlay);
    downscaled like :func:`overlay_png` when its longest side exceeds ``max_side``."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise InputError(f"heat map shape is {heat.shape}; expected (h, w)", field="heat")
    height, width = _capped_size(heat.shape[0], heat.shape[1], max_side)
    if (height, width) != heat.shape:
        heat = _resized_heat(heat, height, width)
    return png_bytes(colorize(heat, cmap))
