"""Retinal vessel image analysis: field of view, scale, enhanced green channel, classical filter, net inference,
optic disc, skeleton graph, artery/vein separation and calibre sampling.

Why its own package: these steps are shared by the ``fundus.vessels`` analyzer, its training task and the DRIVE
bench; they are numpy/scikit-image code (torch only inside :mod:`vitalens.vessels.segment`), while the biomarker
arithmetic on their outputs is pure and lives in :mod:`vitalens.risk.vessels`.
"""

from __future__ import annotations

import logging

from vitalens.vessels.preprocess import (
    DRIVE_FOV_DIAMETER_PX,
    ScaledFundus,
    fov_diameter_px,
    fov_mask,
    rescale_to_fov,
    vessel_channel,
)

__all__ = [
    "DRIVE_FOV_DIAMETER_PX",
    "ScaledFundus",
    "fov_diameter_px",
    "fov_mask",
    "rescale_to_fov",
    "vessel_channel",
]

logger = logging.getLogger(__name__)
