"""The registered quality gates every image and ECG analyzer names in its contract.

* ``fundus.gradable`` — a gradable colour fundus photograph (``models/quality-fundus``);
* ``oct.gradable`` — a gradable OCT B-scan (``models/quality-oct``);
* ``cxr.gradable`` — a gradable frontal chest radiograph (``models/quality-cxr``);
* ``ecg.signal_quality`` — an ECG whose leads carry signal (:mod:`vitalens.quality.ecg`).

Each returns the hook's ``QualityResult``: ``pass``, ``flag`` (analysed; the reasons are shown with the findings)
or ``refuse`` (not analysed; the reason is the error). The image gates read their limits from their gate card;
where the gate artifact is not installed, or the learned check cannot run, the verdict is a *flag* saying so — an
unchecked input is never passed silently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.domain import QualityResult
from vitalens.errors import ArtifactError
from vitalens.quality._registry import flagged, passed, refused, register_gate

__all__ = ["IMAGE_GATES", "image_gate_result", "fundus_gradable", "oct_gradable", "cxr_gradable", "ecg_signal_quality"]

logger = logging.getLogger(__name__)

#: Gate name → the modality of its artifact (``models/quality-<modality>``).
IMAGE_GATES = {"fundus.gradable": "fundus", "oct.gradable": "oct", "cxr.gradable": "cxr"}


def _rgb(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return array.astype(np.uint8, copy=False)


def _models_dir(analyzer: Any | None) -> Path | None:
    """The folder holding the calling analyzer's model: its gate artifacts sit beside it (``None``: the default)."""
    artifact = getattr(analyzer, "artifact", None)
    return Path(artifact).parent if artifact is not None else None


def image_gate_result(gate: str, value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """Run the image gate ``gate`` on one decoded image and express its verdict as the hook's result."""
    from vitalens.quality.image_gate import load_image_gate

    modality = IMAGE_GATES[gate]
    try:  # beside the calling analyzer's model (its models folder), else the configured models folder
        loaded = load_image_gate(modality, _models_dir(analyzer))
    except ArtifactError as exc:
        logger.warning("quality gate %s unavailable: %s", gate, exc)
        return flagged(slot, gate, f"image quality not checked: {exc}")
    image = _rgb(value)
    try:
        assessment = loaded.assess(image)
    except ImportError as exc:  # the encoder's package missing: classical checks only, and say so
        assessment = loaded.assess(image, learned=False)
        assessment.reasons.append(f"learned out-of-distribution check unavailable ({exc})")
        if assessment.verdict == "pass":
            assessment.verdict = "flag"
    metrics: dict[str, float | str | None] = {k: float(v) for k, v in assessment.metrics.items()}
    metrics["gate_card"] = f"{loaded.card.name} {loaded.card.version}"
    if assessment.verdict == "refuse":
        return refused(slot, gate, *assessment.reasons, **metrics)
    if assessment.verdict == "flag":
        return flagged(slot, gate, *assessment.reasons, **metrics)
    return passed(slot, gate, **metrics)


@register_gate("fundus.gradable")
def fundus_gradable(value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """A gradable colour fundus photograph: colour, exposure, sharpness, field of view, and like genuine fundi."""
    return image_gate_result("fundus.gradable", value, slot=slot, analyzer=analyzer)


@register_gate("oct.gradable")
def oct_gradable(value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """A gradable OCT B-scan: exposure, sharpness, and like genuine B-scans."""
    return image_gate_result("oct.gradable", value, slot=slot, analyzer=analyzer)


@register_gate("cxr.gradable")
def cxr_gradable(value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """A gradable chest radiograph: exposure, sharpness, and like genuine radiographs."""
    return image_gate_result("cxr.gradable", value, slot=slot, analyzer=analyzer)


@register_gate("ecg.signal_quality")
def ecg_signal_quality(value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """Leads that carry signal: not flat, clipped, implausible or swamped by noise; at least 5 s long."""
    from vitalens.quality.ecg import assess_ecg

    a = assess_ecg(np.asarray(value.signal), float(value.fs_hz), list(value.leads))
    metrics: dict[str, float | str | None] = {k: float(v) for k, v in a.metrics.items()}
    if a.verdict == "refuse":
        return refused(slot, "ecg.signal_quality", *a.reasons, **metrics)
    if a.verdict == "flag":
        return flagged(slot, "ecg.signal_quality", *a.reasons, **metrics)
    return passed(slot, "ecg.signal_quality", **metrics)
