"""Fast classical measurements of an image's quality: size, colour, exposure, sharpness, field of view.

Why at a fixed working size: the same photograph arrives at 256 px (ODIR's sample), 565 px (DRIVE) or 3,000 px
(a modern camera); sharpness and exposure measured at the native size would not compare. Every measure here is
taken after resizing the longer side to :data:`WORK_SIDE` pixels (never upsampling by more than 4×), so one
threshold in a gate card means the same thing for every upload.

All functions are numpy/scipy only (no torch); images are uint8 RGB ``(H, W, 3)`` (greyscale uploads arrive as
three equal channels).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from vitalens.errors import InputError

__all__ = ["WORK_SIDE", "ImageMeasures", "measure_image", "to_work_size"]

logger = logging.getLogger(__name__)

#: Longer side, pixels, at which every measure is taken.
WORK_SIDE = 256


def to_work_size(image: np.ndarray) -> np.ndarray:
    """``image`` resampled (area / bicubic) so its longer side is :data:`WORK_SIDE` px, uint8 RGB."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"expected a uint8 RGB image (H, W, 3), got {array.shape} {array.dtype}", field="image")
    h, w = array.shape[:2]
    scale = WORK_SIDE / max(h, w)
    if abs(scale - 1.0) < 1e-6:
        return array
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(array).resize(size, method))


@dataclass(frozen=True)
class ImageMeasures:
    """The classical measures of one image (at the working size unless the name says native).

    Attributes:
        min_side_native_px: shorter side of the upload, pixels.
        colourfulness: mean absolute channel difference ``(|R−G| + |G−B| + |R−B|) / 3`` over the bright region,
            0–255 (0 for a greyscale image).
        red_dominance: mean ``(R − B)`` over the bright region, 0–255 (fundus photographs are red-orange).
        luminance: mean luma (ITU-R 601) over the bright region, 0–255.
        dark_fraction: share of the bright region's pixels with luma < 20.
        clipped_fraction: share of the bright region's pixels with any channel ≥ 250.
        sharpness: standard deviation of the Laplacian of the luma over the eroded bright region, divided by the
            region's luma standard deviation (contrast-normalised, so a dark but sharp image is not "blurred").
        bright_fraction: share of the image inside the bright region (a fundus camera's circular aperture).
        bright_circularity: ``4π·area / perimeter²`` of the bright region (1 for a disc).
    """

    min_side_native_px: int
    colourfulness: float
    red_dominance: float
    luminance: float
    dark_fraction: float
    clipped_fraction: float
    sharpness: float
    bright_fraction: float
    bright_circularity: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _bright_region(luma: np.ndarray) -> np.ndarray:
    """The largest connected region brighter than 8 % of the 99th luma percentile, holes filled."""
    level = max(6.0, 0.08 * float(np.percentile(luma, 99)))
    mask = ndimage.binary_opening(luma > level, iterations=1)
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def measure_image(image: np.ndarray) -> ImageMeasures:
    """All classical measures of ``image`` (uint8 RGB)."""
    native = np.asarray(image)
    work = to_work_size(native).astype(np.float32)
    r, g, b = work[..., 0], work[..., 1], work[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    region = _bright_region(luma)
    if region.sum() < 16:
        region = np.ones_like(region)
    sel = region
    colourful = (np.abs(r - g) + np.abs(g - b) + np.abs(r - b))[sel].mean() / 3.0
    inner = ndimage.binary_erosion(region, iterations=3)
    if inner.sum() < 16:
        inner = region
    lap = ndimage.laplace(ndimage.gaussian_filter(luma, 0.5))
    contrast = float(luma[inner].std()) or 1.0
    area = float(region.sum())
    perimeter = float((region & ~ndimage.binary_erosion(region)).sum()) or 1.0
    return ImageMeasures(
        min_side_native_px=int(min(native.shape[:2])),
        colourfulness=float(colourful),
        red_dominance=float((r - b)[sel].mean()),
        luminance=float(luma[sel].mean()),
        dark_fraction=float((luma[sel] < 20).mean()),
        clipped_fraction=float((work[sel] >= 250).any(axis=-1).mean()),
        sharpness=float(lap[inner].std() / contrast),
        bright_fraction=float(area / region.size),
        bright_circularity=float(min(1.0, 4 * np.pi * area / perimeter**2)),
    )
