"""Pure medical arithmetic (no torch, no I/O): cardiovascular proxies, bands, thresholds, tiers."""

from __future__ import annotations

from vitalens.risk.cardio import (
    BAND_LOW_MAX,
    BAND_MEDIUM_MAX,
    OVERALL_WEIGHTS,
    PROXY_WEIGHTS,
    CardioProxies,
    cardio_proxies,
    explain_proxies,
    overall_contributions,
    risk_band,
)
from vitalens.risk.thresholds import (
    choose_threshold,
    f1_threshold,
    target_sensitivity_threshold,
    youden_threshold,
)

__all__ = [
    "BAND_LOW_MAX",
    "BAND_MEDIUM_MAX",
    "OVERALL_WEIGHTS",
    "PROXY_WEIGHTS",
    "CardioProxies",
    "cardio_proxies",
    "choose_threshold",
    "explain_proxies",
    "f1_threshold",
    "overall_contributions",
    "risk_band",
    "target_sensitivity_threshold",
    "youden_threshold",
]
