"""ECG risk tiers: exact boundary values."""

from __future__ import annotations

import pytest

from vitalens.domain import RiskTier
from vitalens.errors import InputError
from vitalens.risk.ecg_tiers import DEFAULT_TIER_EDGES, overall_tier, risk_tier


@pytest.mark.parametrize(
    ("p", "tier"),
    [
        (0.0, RiskTier.LOW),
        (0.1999, RiskTier.LOW),
        (0.2, RiskTier.MODERATE),
        (0.4999, RiskTier.MODERATE),
        (0.5, RiskTier.HIGH),
        (1.0, RiskTier.HIGH),
    ],
)
def test_default_edges(p: float, tier: RiskTier) -> None:
    assert DEFAULT_TIER_EDGES == (0.2, 0.5)
    assert risk_tier(p) is tier


def test_custom_and_degenerate_edges() -> None:
    assert risk_tier(0.3, (0.3, 0.7)) is RiskTier.MODERATE
    assert risk_tier(0.7, (0.3, 0.7)) is RiskTier.HIGH
    assert risk_tier(0.4, (0.4, 0.4)) is RiskTier.HIGH  # no moderate band when the edges meet
    assert risk_tier(0.39, (0.4, 0.4)) is RiskTier.LOW


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_bad_probability(bad: float) -> None:
    with pytest.raises(InputError, match="probability"):
        risk_tier(bad)


@pytest.mark.parametrize("edges", [(0.6, 0.5), (-0.1, 0.5), (0.2,)])
def test_bad_edges(edges: tuple[float, ...]) -> None:
    with pytest.raises(InputError, match="edges"):
        risk_tier(0.5, edges)


def test_overall_tier_ignores_norm() -> None:
    assert overall_tier({"NORM": 0.99, "MI": 0.1, "STTC": 0.05}) is RiskTier.LOW
    assert overall_tier({"NORM": 0.1, "MI": 0.1, "HYP": 0.5}) is RiskTier.HIGH
    assert overall_tier({"NORM": 0.9}) is RiskTier.LOW


@pytest.mark.parametrize(
    ("p", "positive", "tier"),
    [
        (0.07, True, RiskTier.MODERATE),  # above a 95 %-sensitivity MI threshold but below the Low edge
        (0.07, False, RiskTier.LOW),
        (0.0, True, RiskTier.MODERATE),
        (0.2, True, RiskTier.MODERATE),
        (0.5, True, RiskTier.HIGH),
        (0.1999, False, RiskTier.LOW),
    ],
)
def test_a_positive_finding_is_never_low(p: float, positive: bool, tier: RiskTier) -> None:
    assert risk_tier(p, (0.2, 0.5), positive=positive) is tier


def test_overall_tier_respects_positives() -> None:
    probs = {"NORM": 0.9, "MI": 0.08, "STTC": 0.05, "CD": 0.03, "HYP": 0.01}
    assert overall_tier(probs, (0.2, 0.5)) is RiskTier.LOW
    assert overall_tier(probs, (0.2, 0.5), positives=["MI"]) is RiskTier.MODERATE
    assert overall_tier(probs, (0.2, 0.5), positives=["NORM"]) is RiskTier.LOW  # NORM is not a finding
    assert overall_tier({**probs, "STTC": 0.7}, (0.2, 0.5), positives=["MI"]) is RiskTier.HIGH
