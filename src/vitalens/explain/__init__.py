"""Explanations in input coordinates: Grad-CAM 2D/1D, gradient × input, overlays, and the randomisation sanity check.

Every explainer returns a float32 map in [0, 1] with the input's spatial size; :func:`overlay_png` renders it.
Heavy imports (torch, pytorch-grad-cam, captum) happen inside the functions that need them.
"""

from __future__ import annotations

from vitalens.explain.gradcam import (
    bilateral_eye_model,
    gradcam_1d,
    gradcam_2d,
    gradcam_2d_many,
    gradcam_bilateral,
    gradcam_bilateral_many,
    resolve_layer,
)
from vitalens.explain.overlay import colorize, overlay_png
from vitalens.explain.saliency import saliency_2d
from vitalens.explain.sanity import (
    SanityStep,
    cascading_randomization,
    model_randomization_check,
    randomization_groups,
    randomize_groups_,
    rank_correlation,
    steps_as_dicts,
)

__all__ = [
    "SanityStep",
    "bilateral_eye_model",
    "cascading_randomization",
    "colorize",
    "gradcam_1d",
    "gradcam_2d",
    "gradcam_2d_many",
    "gradcam_bilateral",
    "gradcam_bilateral_many",
    "model_randomization_check",
    "overlay_png",
    "randomization_groups",
    "randomize_groups_",
    "rank_correlation",
    "resolve_layer",
    "saliency_2d",
    "steps_as_dicts",
]
