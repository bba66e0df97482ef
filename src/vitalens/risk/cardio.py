"""Eyes → heart: cardiovascular risk proxies from ODIR condition probabilities, and their band.

The proxies follow the EYE HEART CONNECTION design: retinal signs of hypertension (H), diabetes (D) and
age-related macular degeneration (A, here a marker of atherosclerotic ageing) are combined linearly. They are
screening *proxies*, not validated cardiovascular risk scores (contrast QRISK3 or SCORE2, which need blood
pressure, lipids and history). Retinal signs are known correlates of cardiovascular disease
(Wong & Mitchell, Lancet 2004; Poplin et al., Nat Biomed Eng 2018).

Formulas (each weight sum is 1.0, so dividing by it leaves the value unchanged)::

    hypertension    = 0.7·P(H) + 0.2·P(D) + 0.1·P(A)
    diabetes        = 0.8·P(D) + 0.2·P(H)
    atherosclerotic = 0.6·P(A) + 0.2·P(H) + 0.2·P(D)
    overall         = 0.40·hypertension + 0.35·diabetes + 0.25·atherosclerotic

Band edges: Low when overall ≤ 0.33, Medium when 0.33 < overall ≤ 0.66, High when overall > 0.66.

Exactness: the weights are decimal numbers, and in binary floating point the hypertension row sums to
0.9999999999999999, so P(H)=0, P(D)=P(A)=0.55 came out as 0.33000000000000007 and fell in the wrong band. The
proxies are therefore computed in exact decimal arithmetic from each probability *as written* (its shortest
``repr``), and stated to :data:`PROXY_DECIMALS` decimal places (half-even); the band is decided on that stated
value, so the number a clinician reads and its band always agree with the published edges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, Field

from vitalens.domain import RiskBand

__all__ = [
    "band_definition",
    "PROXY_WEIGHTS",
    "OVERALL_WEIGHTS",
    "BAND_LOW_MAX",
    "BAND_MEDIUM_MAX",
    "PROXY_DECIMALS",
    "CardioProxies",
    "cardio_proxies",
    "risk_band",
    "overall_contributions",
    "explain_proxies",
]

#: proxy → {ODIR label: weight}; each row sums to 1.0.
PROXY_WEIGHTS: dict[str, dict[str, float]] = {
    "hypertension": {"H": 0.7, "D": 0.2, "A": 0.1},
    "diabetes": {"D": 0.8, "H": 0.2},
    "atherosclerotic": {"A": 0.6, "H": 0.2, "D": 0.2},
}
OVERALL_WEIGHTS: dict[str, float] = {"hypertension": 0.40, "diabetes": 0.35, "atherosclerotic": 0.25}
BAND_LOW_MAX = 0.33
BAND_MEDIUM_MAX = 0.66
#: Decimal places the proxies are stated to (and banded at): far finer than any probability is meaningful.
PROXY_DECIMALS = 6
_QUANTUM = Decimal(1).scaleb(-PROXY_DECIMALS)

_CONDITION_NAMES = {
    "H": "hypertensive retinopathy",
    "D": "diabetic retinopathy",
    "A": "age-related macular degeneration",
}


class CardioProxies(BaseModel):
    """The three proxies and the overall score, each in [0, 1] (unitless)."""

    hypertension: float = Field(ge=0.0, le=1.0)
    diabetes: float = Field(ge=0.0, le=1.0)
    atherosclerotic: float = Field(ge=0.0, le=1.0)
    overall: float = Field(ge=0.0, le=1.0)

    def as_dict(self) -> dict[str, float]:
        return self.model_dump()


def _prob(probabilities: Mapping[str, float], label: str) -> float:
    if label not in probabilities:
        raise ValueError(f"cardio proxies need P({label}); got labels {sorted(probabilities)}")
    p = float(probabilities[label])
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"P({label}) must be a probability in [0, 1], got {p}")
    return p


def _exact(x: float) -> Decimal:
    """The decimal number a float is written as (``repr``): 0.55 is 0.55, not 0.55000000000000004441."""
    return Decimal(repr(float(x)))


def _stated(x: Decimal) -> float:
    """``x`` rounded half-even to :data:`PROXY_DECIMALS` places, within [0, 1]."""
    return float(min(Decimal(1), max(Decimal(0), x.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN))))


def cardio_proxies(probabilities: Mapping[str, float]) -> CardioProxies:
    """Compute the proxies from ODIR probabilities (keys ``H``, ``D``, ``A``; others ignored).

    Args:
        probabilities: label code → probability in [0, 1].

    Returns:
        The three proxies and the overall score, computed exactly and stated to :data:`PROXY_DECIMALS` places
        (the overall is combined from the exact proxies, then stated).

    Raises:
        ValueError: a needed label is missing, NaN, or outside [0, 1].

    Example:
        >>> cardio_proxies({"H": 1.0, "D": 0.0, "A": 0.0}).hypertension
        0.7
    """
    p = {k: _exact(_prob(probabilities, k)) for k in ("H", "D", "A")}
    exact: dict[str, Decimal] = {}
    for name, weights in PROXY_WEIGHTS.items():
        total = sum(_exact(w) for w in weights.values())
        exact[name] = sum((_exact(w) * p[k] for k, w in weights.items()), Decimal(0)) / total
    overall = sum((_exact(OVERALL_WEIGHTS[k]) * exact[k] for k in OVERALL_WEIGHTS), Decimal(0))
    return CardioProxies(**{k: _stated(v) for k, v in exact.items()}, overall=_stated(overall))


def risk_band(overall: float) -> RiskBand:
    """Band of the overall score: Low (≤ 0.33), Medium (≤ 0.66), High (> 0.66).

    Raises:
        ValueError: ``overall`` is NaN or outside [0, 1].
    """
    if math.isnan(overall) or not 0.0 <= overall <= 1.0:
        raise ValueError(f"overall score must be in [0, 1], got {overall}")
    if overall <= BAND_LOW_MAX:
        return RiskBand.LOW
    if overall <= BAND_MEDIUM_MAX:
        return RiskBand.MEDIUM
    return RiskBand.HIGH


def overall_contributions(probabilities: Mapping[str, float]) -> dict[str, float]:
    """Each condition's additive share of the overall score (they sum to ``overall``).

    overall = Σ_proxy w_proxy · Σ_label w_label·P(label), so label L contributes
    P(L) · Σ_proxy w_proxy · w_{proxy,L}: 0.40·P(H) + 0.41·P(D) + 0.19·P(A).
    """
    out: dict[str, float] = {}
    for label in ("H", "D", "A"):
        coef = sum(
            OVERALL_WEIGHTS[proxy] * weights.get(label, 0.0) / sum(weights.values())
            for proxy, weights in PROXY_WEIGHTS.items()
        )
        out[label] = coef * _prob(probabilities, label)
    return out


def explain_proxies(probabilities: Mapping[str, float], proxies: CardioProxies, band: RiskBand) -> str:
    """A plain-language sentence naming the conditions that contribute most to the overall score."""
    contributions = overall_contributions(probabilities)
    ranked = sorted(contributions.items(), key=lambda kv: kv[1], reverse=True)
    total = sum(contributions.values())
    if total <= 1e-9:
        drivers = "no retinal sign of hypertension, diabetes or macular degeneration contributes"
    else:
        parts = [
            f"{_CONDITION_NAMES[label]} (P={probabilities[label]:.2f}, {100 * value / total:.0f}% of the score)"
            for label, value in ranked
            if value / total >= 0.15
        ]
        drivers = "driven mostly by " + " and ".join(parts)
    return (
        f"{band.value} cardiovascular risk band (overall proxy {proxies.overall:.2f}; Low ≤ {BAND_LOW_MAX}, "
        f"Medium ≤ {BAND_MEDIUM_MAX}, High above), {drivers}. These are retinal proxies for screening, "
        "not a cardiovascular risk score: confirm with blood pressure, HbA1c and lipids."
    )


def band_definition(low_max: float = BAND_LOW_MAX, medium_max: float = BAND_MEDIUM_MAX) -> str:
    """The band's edges in words, as :func:`risk_band` applies them (shown beside the band badge).

    Example: the defaults give "Low: overall retinal proxy score ≤ 0.33; Medium: ≤ 0.66; High: above 0.66 (0–1
    scale, not a chance of disease)".
    """
    return (
        f"Low: overall retinal proxy score ≤ {low_max:.2f}; Medium: ≤ {medium_max:.2f}; High: above "
        f"{medium_max:.2f} (0–1 scale, not a chance of disease)"
    )
