"""The classical, always-available vessel map: multi-scale Hessian vesselness of the enhanced green channel.

Why keep a classical filter beside the net: it needs no weights (the analyzer still measures vessels when no
trained artifact is installed), and it is the baseline the bench measures the net against in the same run.
Both filters score each pixel by the eigenvalues of the Hessian at several Gaussian scales — a dark tube has one
large positive eigenvalue across it and a small one along it: Frangi et al. (1998, MICCAI) combine them into a
"vesselness", Sato et al. (1998, Med Image Anal 2:143) into a "tubeness" that keeps more of the thin vessels (on
DRIVE's training images Sato reaches a pixel AUC of ≈ 0.91 against Frangi's ≈ 0.85; ``bench/vessels.py``
measures both on the test images). Scales σ = 1–4 px cover DRIVE's vessel widths at the reference field-of-view
width of 540 px.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vitalens._naming import unknown_name_error

__all__ = ["CLASSICAL_METHODS", "classical_vesselness"]

logger = logging.getLogger(__name__)

#: The classical filters available, by name.
CLASSICAL_METHODS = ("sato", "frangi")


def classical_vesselness(
    channel: np.ndarray,
    fov: np.ndarray,
    *,
    method: str = "sato",
    sigmas: Sequence[float] = (1.0, 1.5, 2.0, 3.0, 4.0),
    border_px: int = 6,
) -> np.ndarray:
    """Vessel score in [0, 1) of a :func:`~vitalens.vessels.preprocess.vessel_channel` image, float32 ``(H, W)``.

    The raw response ``r`` is mapped to ``1 − exp(−r / q)`` with ``q`` its 99.5th percentile inside the field of
    view: monotone (the ranking, hence the AUC, is the filter's own), without ties from clipping, and on one scale
    for every photograph. A ``border_px`` rim of the field of view is zeroed, since the edge of the camera's
    aperture is itself a dark ridge.

    Args:
        channel: z-scored CLAHE green channel (vessels dark).
        fov: bool field-of-view mask of the same shape.
        method: ``sato`` or ``frangi``.
        sigmas: Gaussian scales of the Hessian, pixels.
        border_px: rim of the field of view ignored, pixels.

    Raises:
        UnknownNameError: ``method`` is not one of :data:`CLASSICAL_METHODS`.
    """
    from skimage.filters import frangi, sato

    if method not in CLASSICAL_METHODS:
        raise unknown_name_error("classical vessel filter", method, CLASSICAL_METHODS)
    mask = np.asarray(fov, dtype=bool)
    image = np.asarray(channel, dtype=np.float64)
    if method == "frangi":
        response = frangi(image, sigmas=tuple(sigmas), black_ridges=True)
    else:
        response = sato(image, sigmas=tuple(sigmas), black_ridges=True)
    inner = ndimage.binary_erosion(mask, iterations=border_px) if border_px > 0 else mask
    response = np.where(inner, response, 0.0)
    scale = float(np.percentile(response[inner], 99.5)) if inner.any() else 0.0
    if scale <= 0:
        return np.zeros(mask.shape, dtype=np.float32)
    return (1.0 - np.exp(-response / scale)).astype(np.float32)
