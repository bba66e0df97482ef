"""ECG risk tiers: calibrated superclass probabilities → Low / Moderate / High.

Why tiers on *calibrated* probabilities: a clinician triaging ECGs needs "how worried should I be", not five raw
scores; the edges are stored in the model card (``extra.tier_edges``) so every output of one model uses the same
numbers, and they only mean what they say when the probabilities are calibrated (temperature or isotonic on
PTB-XL fold 9). Pure functions, no torch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

from vitalens.domain import RiskTier
from vitalens.errors import InputError

__all__ = ["DEFAULT_TIER_EDGES", "ABNORMAL_CLASSES", "risk_tier", "overall_tier", "check_edges", "tier_definition"]

logger = logging.getLogger(__name__)

#: ``(low_max, high_min)``: below 0.2 Low, from 0.5 High, Moderate in between.
DEFAULT_TIER_EDGES: tuple[float, float] = (0.2, 0.5)

#: The PTB-XL superclasses that are findings (NORM is their absence).
ABNORMAL_CLASSES: tuple[str, ...] = ("MI", "STTC", "CD", "HYP")


def check_edges(edges: Iterable[float]) -> tuple[float, float]:
    """Validate ``(low_max, high_min)``: both in [0, 1] and ``low_max <= high_min``.

    Raises:
        InputError: wrong length, out of range, or reversed.
    """
    values = tuple(float(e) for e in edges)
    if len(values) != 2:
        raise InputError(f"tier edges must be (low_max, high_min), got {values}", field="tier_edges")
    low_max, high_min = values
    if not (0.0 <= low_max <= high_min <= 1.0):
        raise InputError(
            f"tier edges must satisfy 0 <= low_max <= high_min <= 1, got low_max={low_max}, high_min={high_min}",
            field="tier_edges",
        )
    return low_max, high_min


def risk_tier(
    calibrated_prob: float, edges: Iterable[float] = DEFAULT_TIER_EDGES, *, positive: bool = False
) -> RiskTier:
    """Tier of one calibrated probability.

    A finding at or above its operating threshold (``positive``) is never Low: the threshold is chosen for a
    target sensitivity (MI: 95 %) and can sit below the Low edge, and "positive but Low" would tell a clinician
    two contradictory things. Such a finding is at least Moderate.

    Args:
        calibrated_prob: probability in [0, 1] (calibrated on the validation fold).
        edges: ``(low_max, high_min)``: ``p < low_max`` → Low; ``p >= high_min`` → High; otherwise Moderate.
            With the defaults: 0.1999 → Low, 0.2 → Moderate, 0.4999 → Moderate, 0.5 → High.
        positive: the finding is at or above its card threshold (raises Low to Moderate).

    Raises:
        InputError: ``calibrated_prob`` is NaN or outside [0, 1], or the edges are invalid.
    """
    low_max, high_min = check_edges(edges)
    p = float(calibrated_prob)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise InputError(f"probability must be in [0, 1], got {calibrated_prob}", field="probability")
    if p >= high_min:
        return RiskTier.HIGH
    if p < low_max and not positive:
        return RiskTier.LOW
    return RiskTier.MODERATE


def overall_tier(
    probabilities: Mapping[str, float],
    edges: Iterable[float] = DEFAULT_TIER_EDGES,
    *,
    abnormal: Iterable[str] = ABNORMAL_CLASSES,
    positives: Iterable[str] = (),
) -> RiskTier:
    """The record's tier: the tier of the highest calibrated probability among the abnormal classes.

    NORM does not raise the tier (a confident normal is Low). Classes of ``abnormal`` missing from
    ``probabilities`` are ignored; when none is present the result is Low. An abnormal class listed in
    ``positives`` (at or above its threshold) makes the record at least Moderate.
    """
    order = {RiskTier.LOW: 0, RiskTier.MODERATE: 1, RiskTier.HIGH: 2}
    positive_set = set(positives)
    tiers = [
        risk_tier(float(probabilities[c]), edges, positive=c in positive_set) for c in abnormal if c in probabilities
    ]
    return max(tiers, key=order.__getitem__) if tiers else risk_tier(0.0, edges)


def tier_definition(edges: Iterable[float] = DEFAULT_TIER_EDGES) -> str:
    """The tier's edges in words, as :func:`overall_tier` applies them (shown beside the tier badge).

    Example: edges (0.2, 0.5) give "High: an abnormal class ≥ 0.50; Low: every abnormal class < 0.20 and none
    positive; Moderate otherwise (calibrated probabilities, NORM excluded)".
    """
    low_max, high_min = check_edges(edges)
    return (
        f"High: an abnormal class ≥ {high_min:.2f}; Low: every abnormal class < {low_max:.2f} and none positive; "
        "Moderate otherwise (calibrated probabilities, NORM excluded)"
    )
