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

__all__ = [
    "WORK_SIDE",
    "FINE_SIGMA",
    "MID_SIGMA",
    "ImageMeasures",
    "measure_image",
    "to_work_size",
    "field_of_view",
    "fine_detail",
]

logger = logging.getLogger(__name__)

#: Longer side, pixels, at which every measure is taken.
WORK_SIDE = 256
#: Gaussian scales (px at :data:`WORK_SIDE`) of :func:`fine_detail`: the finest band is detail under
#: ``FINE_SIGMA`` (capillaries, vessel edges, the disc margin), the mid band lies between it and ``MID_SIGMA``
#: (the main vessels, a 256-px fundus's arcades being 3–8 px wide).
FINE_SIGMA, MID_SIGMA = 1.0, 4.0
#: Side of the corner patches read for the surround's level, as a share of the shorter side; their luma spread
#: under which a corner counts as flat (a camera's mask, not image content), and by how much the centre must be
#: brighter than that surround for it to be treated as a lifted black level.
_CORNER_SHARE, _CORNER_FLAT_STD, _CENTRE_OVER_SURROUND = 0.03, 3.0, 30.0


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
        fine_detail: RMS of the luma's finest band over the RMS of its mid (vessel-sized) band inside the field of
            view (:func:`fine_detail`); falls when the image is out of focus, not when it is merely hazy or dim.
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
    fine_detail: float
    bright_fraction: float
    bright_circularity: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _surround_level(luma: np.ndarray) -> float | None:
    """The luma of a flat surround (the median of the flat corner patches), or ``None`` when under two are flat."""
    h, w = luma.shape
    k = max(2, round(_CORNER_SHARE * min(h, w)))
    corners = (luma[:k, :k], luma[:k, -k:], luma[-k:, :k], luma[-k:, -k:])
    flat = [float(np.median(c)) for c in corners if float(c.std()) < _CORNER_FLAT_STD]
    return float(np.median(flat)) if len(flat) >= 2 else None


def field_of_view(luma: np.ndarray) -> np.ndarray:
    """The field of view: the largest connected region brighter than the surround, holes filled.

    "Brighter" is above 8 % of the 99th luma percentile (at least 6) — a fundus camera's black mask. Where the
    corners are a flat *non-black* surround and the image's centre is clearly (30 luma) brighter than it — a
    brightened or washed-out photograph whose black level was lifted — the level is that surround plus 8 % of
    the range above it, so the surround is not counted as field of view (it would dilute every measure taken
    inside it: a burnt-out fundus on a grey surround would read as moderately bright). A surround as bright as
    the centre (a preprocessed image on mid-grey) keeps the first rule.
    """
    p99 = float(np.percentile(luma, 99))
    level = max(6.0, 0.08 * p99)
    surround = _surround_level(luma)
    if surround is not None and surround + 6.0 > level:
        h, w = luma.shape
        centre = float(np.median(luma[h // 4 : h - h // 4, w // 4 : w - w // 4]))
        if centre > surround + _CENTRE_OVER_SURROUND:
            level = surround + max(6.0, 0.08 * (p99 - surround))
    mask = ndimage.binary_opening(luma > level, iterations=1)
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return np.asarray(ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes))), dtype=bool)


def _masked_gaussian(x: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``x`` inside ``weight`` only (normalised convolution: the outside adds nothing)."""
    num = np.asarray(ndimage.gaussian_filter(x * weight, sigma), dtype=np.float64)
    den = np.asarray(ndimage.gaussian_filter(weight, sigma), dtype=np.float64)
    return num / np.maximum(den, 1e-6)


def fine_detail(luma: np.ndarray, region: np.ndarray | None = None) -> float:
    """RMS of the finest band of ``luma`` over the RMS of its mid band, inside ``region`` (default: everywhere).

    Why a ratio of bands: defocus removes the finest detail first while the vessel-sized structure survives,
    so the ratio falls; a hazy (cataract) or dim photograph loses contrast at every scale alike and keeps its
    ratio — sharpness divided by the global contrast (:attr:`ImageMeasures.sharpness`) would call it blurred.
    Bands: ``luma − G(FINE_SIGMA)`` and ``G(FINE_SIGMA) − G(MID_SIGMA)``, the Gaussians taken inside the region
    only (normalised convolution), so the rim of a camera's mask adds no edge; the RMS is over the region eroded
    by 3 px. 0.0 where there is no mid-band structure at all (a flat image has no detail to judge).
    For a full-frame cosine of angular frequency ω it is ``(1 − H₁(ω)) / (H₁(ω) − H₄(ω))``, ``H_σ`` the discrete
    Gaussian's transfer function.
    """
    x = np.asarray(luma, dtype=np.float64)
    weight = np.ones_like(x) if region is None else np.asarray(region, dtype=bool).astype(np.float64)
    inner = ndimage.binary_erosion(weight > 0, iterations=3, border_value=1)
    if inner.sum() < 16:
        inner = weight > 0
    if inner.sum() == 0:
        return 0.0
    g_fine = _masked_gaussian(x, weight, FINE_SIGMA)
    g_mid = _masked_gaussian(x, weight, MID_SIGMA)
    fine = float(np.mean((x - g_fine)[inner] ** 2))
    mid = float(np.mean((g_fine - g_mid)[inner] ** 2))
    if mid <= 1e-12:
        return 0.0
    return float(np.sqrt(fine / mid))


def measure_image(image: np.ndarray) -> ImageMeasures:
    """All classical measures of ``image`` (uint8 RGB)."""
    native = np.asarray(image)
    work = to_work_size(native).astype(np.float32)
    r, g, b = work[..., 0], work[..., 1], work[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    region = field_of_view(luma)
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
        fine_detail=fine_detail(luma, region),
        bright_fraction=float(area / region.size),
        bright_circularity=float(min(1.0, 4 * np.pi * area / perimeter**2)),
    )
