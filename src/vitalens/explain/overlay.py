"""Render a heat map over the image it explains, as PNG bytes for the web app, the API and the PDF report.

Why one renderer: the clinician sees the same overlay on screen and in the signed report; the map is resized to
the image here, so callers pass the map in any resolution of the same field of view.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = ["colorize", "heatmap_png", "overlay_png"]

logger = logging.getLogger(__name__)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"image dtype is {image.dtype}; expected uint8", field="image")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise InputError(f"image shape is {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)", field="image")


def _resized_heat(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise InputError(f"heat map shape is {heat.shape}; expected (h, w)", field="heat")
    heat = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    if heat.shape != (height, width):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((width, height), Image.BILINEAR))
    return np.clip(heat, 0.0, 1.0)


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(h, w) map in [0, 1] → (h, w, 3) uint8 colours of matplotlib colormap ``cmap``."""
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise unknown_name_error("colormap", cmap, list(matplotlib.colormaps))
    rgba = matplotlib.colormaps[cmap](np.clip(np.nan_to_num(heat), 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay_png(image_rgb_uint8: np.ndarray, heat: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> bytes:
    """Blend a coloured heat map over an image and encode the result as PNG.

    Args:
        image_rgb_uint8: (H, W, 3) uint8 RGB (grayscale (H, W) and RGBA are accepted too).
        heat: (h, w) float map in [0, 1] over the same field of view; resized (bilinear) to H × W.
        alpha: weight of the heat colours, 0 (image only) – 1 (heat only).
        cmap: matplotlib colormap name.

    Returns:
        PNG bytes of an H × W RGB image.

    Example:
        >>> png = overlay_png(image, gradcam_2d(net, x, target_index=2))
    """
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha is {alpha}; expected a value in [0, 1]", field="alpha")
    rgb = _as_rgb(image_rgb_uint8)
    colours = colorize(_resized_heat(heat, rgb.shape[0], rgb.shape[1]), cmap).astype(np.float32)
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours
    out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(out, mode="RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def heatmap_png(heat: np.ndarray, cmap: str = "jet") -> bytes:
    """An image map drawn alone, colour-coded in its own pixels (the middle panel of original | map | overlay)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(colorize(np.asarray(heat, dtype=np.float32), cmap)).save(buf, format="PNG")
    return buf.getvalue()
