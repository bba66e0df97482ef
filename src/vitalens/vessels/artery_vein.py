"""Artery/vein separation of vessel segments: a per-image colour heuristic (unsupervised two-means).

Method (heuristic, not learned): arterioles carry oxygenated blood and look lighter and less saturated than the
venules beside them, often with a central light reflex. For each segment the mean red and green of its
centreline pixels are divided by the median of the surrounding background (a ring outside the vessel mask), so
illumination and pigmentation cancel; within one photograph the segments are then split into two groups by
k-means on these two contrasts, and the lighter group is called arterioles — the approach of Vázquez et al. (2013,
Comput Med Imaging Graph 37:337) in a simpler form.

How well: no artery/vein ground truth exists in ``shared/data`` (RITE / AV-DRIVE are not there), so on real
photographs it is *unmeasured*; on the synthetic DRIVE twin, whose renderer knows which pixels are arteries,
``bench/vessels.py`` reports the share of zone-B segments labelled right. CRAE, CRVE and AVR inherit its errors;
they are reported as research measurements, not for clinical decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vitalens.vessels.graph import VesselSegment

__all__ = ["segment_colour_features", "classify_arteries"]

logger = logging.getLogger(__name__)


def segment_colour_features(
    image: np.ndarray, vessels: np.ndarray, fov: np.ndarray, segments: Sequence[VesselSegment], *, ring_px: int = 6
) -> np.ndarray:
    """``(n, 2)`` red and green contrast of each segment's centreline against its local background (ratio, ~0–1)."""
    img = np.asarray(image, dtype=np.float32)
    mask = np.asarray(vessels, dtype=bool)
    background = np.asarray(fov, dtype=bool) & ~ndimage.binary_dilation(mask, iterations=2)
    feats = np.full((len(segments), 2), np.nan, dtype=np.float64)
    h, w = mask.shape
    for i, seg in enumerate(segments):
        rr, cc = seg.path_rc[:, 0], seg.path_rc[:, 1]
        r0, r1 = max(0, rr.min() - ring_px), min(h, rr.max() + ring_px + 1)
        c0, c1 = max(0, cc.min() - ring_px), min(w, cc.max() + ring_px + 1)
        near = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        near[rr - r0, cc - c0] = True
        near = ndimage.binary_dilation(near, iterations=ring_px) & background[r0:r1, c0:c1]
        if near.sum() < 5:
            continue
        bg = np.median(img[r0:r1, c0:c1][near], axis=0)
        centre = img[rr, cc].mean(axis=0)
        feats[i] = centre[:2] / np.maximum(bg[:2], 1.0)
    return feats


def classify_arteries(features: np.ndarray, widths_px: Sequence[float] | None = None, *, seed: int = 0) -> np.ndarray:
    """``True`` for segments called arterioles: the lighter of two k-means clusters of the colour contrasts.

    A thin vessel looks lighter than a thick one of the same kind (it absorbs over a shorter path and is blurred
    into its background), which would make "lighter" mean "thinner"; with ``widths_px`` the contrasts are first
    replaced by their residuals from a least-squares line on width, so the split is by colour at equal width.

    Rows with NaN features are ``False`` (the caller drops them before calibre summaries). With fewer than two
    valid rows, all are ``False``.
    """
    from sklearn.cluster import KMeans

    f = np.asarray(features, dtype=float)
    valid = ~np.isnan(f).any(axis=1)
    out = np.zeros(len(f), dtype=bool)
    if valid.sum() < 2:
        return out
    x = f[valid]
    if widths_px is not None and valid.sum() >= 4:
        w = np.asarray(widths_px, dtype=float)[valid]
        design = np.stack([np.ones_like(w), w], axis=1)
        coef, *_ = np.linalg.lstsq(design, x, rcond=None)
        x = x - design @ coef
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(z)
    lighter = int(np.argmax([x[km.labels_ == k].mean() if (km.labels_ == k).any() else -np.inf for k in (0, 1)]))
    out[np.flatnonzero(valid)] = km.labels_ == lighter
    return out
