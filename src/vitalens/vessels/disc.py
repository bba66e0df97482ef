"""Optic-disc localisation: the brightest disc-sized blob where the large vessels converge.

Why two cues: brightness alone is fooled by exudates, reflexes and bright rims; vessel convergence alone by a
dense vessel crossing. The disc is both — the brightest region of the photograph *and* where the thickest
vessels meet — so the score adds the two z-scored maps, each smoothed at the scale of the disc, and takes the
maximum inside the field of view (away from its rim).

Scale: the disc diameter is taken as a fixed share of the field-of-view width, :data:`DISC_FOV_RATIO` (≈ 1/7:
a disc of ≈ 1.8 mm in a 45° field of ≈ 12.4 mm; DRIVE's discs measure ≈ 75–80 px across in its 540 px field).
The same ratio sets the micrometre scale of calibre measurements (:func:`um_per_px`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["OpticDisc", "locate_optic_disc", "DISC_FOV_RATIO", "DISC_DIAMETER_UM", "um_per_px"]

logger = logging.getLogger(__name__)

#: Optic-disc diameter as a share of a 45° field of view's width (assumed, see module docstring).
DISC_FOV_RATIO = 0.145
#: Mean optic-disc diameter assumed for the micrometre scale, µm (Jonas et al. 1988: ≈ 1.76 × 1.92 mm).
DISC_DIAMETER_UM = 1800.0


def um_per_px(fov_width_px: float) -> float:
    """Micrometres per pixel assuming the disc diameter is ``DISC_FOV_RATIO`` of the field and 1,800 µm."""
    return DISC_DIAMETER_UM / (DISC_FOV_RATIO * float(fov_width_px))


@dataclass(frozen=True)
class OpticDisc:
    """Disc centre ``(x, y)`` and radius, pixels, with the score margin that says how clear the peak was."""

    x: float
    y: float
    radius_px: float
    confidence: float

    @property
    def diameter_px(self) -> float:
        return 2.0 * self.radius_px


def _z(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    vals = a[mask]
    return (a - vals.mean()) / (vals.std() or 1.0)


def locate_optic_disc(image: np.ndarray, fov: np.ndarray, vessel_map: np.ndarray) -> OpticDisc | None:
    """The most likely optic-disc position in ``image``.

    Args:
        image: uint8 RGB ``(H, W, 3)``.
        fov: bool field-of-view mask.
        vessel_map: vessel probability or mask ``(H, W)`` (thick vessels weigh most after smoothing).

    Returns:
        ``None`` when the field of view is empty. ``confidence`` is the peak's score minus the best score farther
        than one disc diameter away, in units of the score's spread (≥ 1 is a clear disc).
    """
    mask = np.asarray(fov, dtype=bool)
    if not mask.any():
        return None
    from vitalens.vessels.preprocess import fov_diameter_px

    width = fov_diameter_px(mask)
    radius = 0.5 * DISC_FOV_RATIO * width
    inner = ndimage.binary_erosion(mask, iterations=max(1, int(radius * 0.6)))
    if not inner.any():
        inner = mask
    lum = np.asarray(image, dtype=np.float32)[..., :2].mean(axis=2)
    lum = np.where(mask, lum, float(lum[mask].mean()))
    bright = ndimage.gaussian_filter(lum, radius / 2)
    thick = ndimage.grey_opening(np.asarray(vessel_map, dtype=np.float32), size=3)
    converge = ndimage.gaussian_filter(thick, radius)
    score = _z(bright, inner) + _z(converge, inner)
    score = np.where(inner, score, -np.inf)
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    yy, xx = np.ogrid[: score.shape[0], : score.shape[1]]
    far = np.hypot(yy - r, xx - c) > 2 * radius
    rest = score[far & inner]
    spread = float(np.std(score[inner])) or 1.0
    confidence = float((score[r, c] - rest.max()) / spread) if rest.size else float("inf")
    return OpticDisc(x=float(c), y=float(r), radius_px=float(radius), confidence=confidence)
