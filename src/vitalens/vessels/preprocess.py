"""Field of view, scale and the contrast-enhanced green channel every vessel method starts from.

Why the green channel: in colour fundus photographs the vessels have their highest contrast against the
background in green (haemoglobin absorbs it; red is saturated, blue is noisy); contrast-limited adaptive histogram
equalisation (CLAHE) then evens out the illumination falloff towards the rim. Why a scale: vessel widths, the
segmentation net's receptive field and the filters' scales are in pixels of DRIVE-like photographs (field of view
≈ 540 px across at 45°); other cameras' images are resampled so their field of view has that width first.

Shapes: images are uint8 RGB ``(H, W, 3)``; masks are bool ``(H, W)``; channels are float32 ``(H, W)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vitalens.errors import InputError

__all__ = ["fov_mask", "fov_diameter_px", "vessel_channel", "ScaledFundus", "rescale_to_fov", "DRIVE_FOV_DIAMETER_PX"]

logger = logging.getLogger(__name__)

#: Median width of DRIVE's field-of-view masks, pixels (the 20 training masks span 536–543 px).
DRIVE_FOV_DIAMETER_PX = 540.0


def _check_rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"expected a uint8 RGB image (H, W, 3), got {array.shape} {array.dtype}", field="image")
    return array


def fov_mask(image: np.ndarray, *, threshold: float | None = None) -> np.ndarray:
    """The camera's field of view: the largest bright connected region of the red channel, holes filled.

    Args:
        image: uint8 RGB.
        threshold: red level (0–255) above which a pixel is inside; ``None`` takes 15 % of the 99th percentile
            of red (the border of a fundus photograph is near black, the retina is red-dominant).

    Returns:
        bool ``(H, W)``; all False when nothing is bright enough.
    """
    array = _check_rgb(image)
    red = array[..., 0].astype(np.float32)
    level = float(threshold) if threshold is not None else max(8.0, 0.15 * float(np.percentile(red, 99)))
    mask = red > level
    mask = ndimage.binary_opening(mask, iterations=2)
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(red.shape, dtype=bool)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    mask = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(mask)


def fov_diameter_px(fov: np.ndarray) -> float:
    """Width of the field of view, pixels: the widest row of the mask (photographs are often cropped top/bottom)."""
    widths = np.asarray(fov, dtype=bool).sum(axis=1)
    return float(widths.max()) if widths.size else 0.0


@dataclass(frozen=True)
class ScaledFundus:
    """A photograph resampled to the reference field-of-view width, with its mask and the factor used.

    ``factor`` is new pixels per original pixel: a length of ``L`` px here is ``L / factor`` px in the upload.
    """

    image: np.ndarray
    fov: np.ndarray
    factor: float


def rescale_to_fov(image: np.ndarray, target_diameter_px: float = DRIVE_FOV_DIAMETER_PX) -> ScaledFundus:
    """Resample ``image`` so its field of view is ``target_diameter_px`` wide (bicubic), and its mask with it.

    Raises:
        InputError: no field of view can be found (an all-dark image).
    """
    from PIL import Image

    array = _check_rgb(image)
    fov = fov_mask(array)
    width = fov_diameter_px(fov)
    if width < 16:
        raise InputError("no field of view found: the image is (nearly) black", field="image")
    factor = float(target_diameter_px) / width
    if abs(factor - 1.0) < 0.02:
        return ScaledFundus(image=array, fov=fov, factor=1.0)
    h, w = array.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    resized = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BICUBIC))
    mask = np.asarray(Image.fromarray(fov.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127
    return ScaledFundus(image=resized, fov=mask, factor=factor)


def vessel_channel(image: np.ndarray, fov: np.ndarray | None = None, *, clip_limit: float = 0.01) -> np.ndarray:
    """The green channel with CLAHE, z-scored inside the field of view (0 outside), float32 ``(H, W)``.

    Outside the field of view the channel is first filled with the mean inside, so the rim does not look like a
    dark vessel to CLAHE, the filters or the net.

    Args:
        image: uint8 RGB.
        fov: field-of-view mask; estimated with :func:`fov_mask` when ``None``.
        clip_limit: CLAHE clip limit (scikit-image's 0–1 scale).
    """
    from skimage.exposure import equalize_adapthist

    array = _check_rgb(image)
    mask = fov_mask(array) if fov is None else np.asarray(fov, dtype=bool)
    if mask.shape != array.shape[:2]:
        raise InputError(f"fov mask is {mask.shape}, image is {array.shape[:2]}", field="fov")
    green = array[..., 1].astype(np.float32) / 255.0
    inside = green[mask] if mask.any() else green.ravel()
    filled = np.where(mask, green, float(inside.mean()))
    kernel = max(8, min(array.shape[:2]) // 8)
    enhanced = equalize_adapthist(filled, kernel_size=kernel, clip_limit=clip_limit).astype(np.float32)
    vals = enhanced[mask] if mask.any() else enhanced.ravel()
    z = (enhanced - float(vals.mean())) / (float(vals.std()) or 1.0)
    return np.where(mask, z, 0.0).astype(np.float32)
