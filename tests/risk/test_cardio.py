"""Exact values of the eyes → heart proxies and the band edges (both sides)."""

from __future__ import annotations

import math

import pytest

from vitalens.domain import RiskBand
from vitalens.risk import (
    BAND_LOW_MAX,
    BAND_MEDIUM_MAX,
    cardio_proxies,
    explain_proxies,
    overall_contributions,
    risk_band,
)

EXACT = 1e-12


def _p(h: float, d: float, a: float) -> dict[str, float]:
    return {"N": 0.0, "D": d, "G": 0.0, "C": 0.0, "A": a, "H": h, "M": 0.0, "O": 0.0}


@pytest.mark.parametrize(
    ("h", "d", "a", "hyp", "dia", "ath", "overall"),
    [
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        (1.0, 0.0, 0.0, 0.7, 0.2, 0.2, 0.40),  # 0.4·0.7 + 0.35·0.2 + 0.25·0.2
        (0.0, 1.0, 0.0, 0.2, 0.8, 0.2, 0.41),  # 0.4·0.2 + 0.35·0.8 + 0.25·0.2
        (0.0, 0.0, 1.0, 0.1, 0.0, 0.6, 0.19),  # 0.4·0.1 + 0 + 0.25·0.6
        (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5),
        (0.2, 0.6, 0.1, 0.27, 0.52, 0.22, 0.345),  # hand-computed
    ],
)
def test_proxies_exact(h: float, d: float, a: float, hyp: float, dia: float, ath: float, overall: float) -> None:
    proxies = cardio_proxies(_p(h, d, a))
    assert proxies.hypertension == pytest.approx(hyp, abs=EXACT)
    assert proxies.diabetes == pytest.approx(dia, abs=EXACT)
    assert proxies.atherosclerotic == pytest.approx(ath, abs=EXACT)
    assert proxies.overall == pytest.approx(overall, abs=EXACT)


@pytest.mark.parametrize(
    ("h", "d", "a", "overall", "band"),
    [
        # overall = 0.40·P(H) + 0.41·P(D) + 0.19·P(A) (the weights multiplied out)
        (0.0, 0.55, 0.55, 0.33, RiskBand.LOW),  # 0.41·0.55 + 0.19·0.55 = 0.6·0.55 = 0.33 exactly: the Low edge
        (0.0, 0.55, 0.5500000000000002, 0.33, RiskBand.LOW),  # 0.330000000000000038: 0.33 at 6 decimals
        (0.0, 0.55, 0.550006, 0.330001, RiskBand.MEDIUM),  # 0.33000114 → 0.330001: above the edge
        (0.66, 0.66, 0.66, 0.66, RiskBand.MEDIUM),  # every weight row sums to 1: 0.66 exactly, the Medium edge
        (0.825, 0.0, 0.0, 0.33, RiskBand.LOW),  # 0.40·0.825
        (0.3, 0.3, 0.3, 0.3, RiskBand.LOW),
        (0.7, 0.7, 0.7, 0.7, RiskBand.HIGH),
        (0.1, 0.2, 0.3, 0.179, RiskBand.LOW),  # 0.04 + 0.082 + 0.057
    ],
)
def test_band_edges_hold_exactly_through_the_proxies(
    h: float, d: float, a: float, overall: float, band: RiskBand
) -> None:
    """Before: P(H)=0, P(D)=P(A)=0.55 gave 0.33000000000000007 (the hypertension weights sum to
    0.9999999999999999 in floats) and the band Medium; the formulas give exactly 0.33, which is Low. The proxies are
    computed exactly from the probabilities as written and stated to 6 decimals; the band is that value's."""
    proxies = cardio_proxies(_p(h, d, a))
    assert proxies.overall == overall  # exact, not approximately
    assert risk_band(proxies.overall) is band


def test_other_labels_do_not_change_proxies() -> None:
    base = cardio_proxies(_p(0.3, 0.4, 0.5))
    noisy = {**_p(0.3, 0.4, 0.5), "N": 1.0, "G": 1.0, "C": 1.0, "M": 1.0, "O": 1.0}
    assert cardio_proxies(noisy) == base


@pytest.mark.parametrize(
    ("overall", "band"),
    [
        (0.0, RiskBand.LOW),
        (0.33, RiskBand.LOW),  # the Low edge is inclusive
        (math.nextafter(0.33, 1.0), RiskBand.MEDIUM),
        (0.5, RiskBand.MEDIUM),
        (0.66, RiskBand.MEDIUM),  # the Medium edge is inclusive
        (math.nextafter(0.66, 1.0), RiskBand.HIGH),
        (1.0, RiskBand.HIGH),
    ],
)
def test_band_edges(overall: float, band: RiskBand) -> None:
    assert risk_band(overall) is band


def test_band_constants_are_the_documented_edges() -> None:
    assert (BAND_LOW_MAX, BAND_MEDIUM_MAX) == (0.33, 0.66)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_band_rejects_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match="overall score must be in"):
        risk_band(bad)


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        ({"H": 0.5, "D": 0.5}, r"need P\(A\)"),
        ({"H": 1.5, "D": 0.5, "A": 0.1}, r"P\(H\) must be a probability"),
        ({"H": float("nan"), "D": 0.5, "A": 0.1}, r"P\(H\) must be a probability"),
    ],
)
def test_proxies_reject_bad_probabilities(probs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cardio_proxies(probs)


def test_contributions_sum_to_overall_with_exact_coefficients() -> None:
    probs = _p(1.0, 1.0, 1.0)
    contributions = overall_contributions(probs)
    assert contributions["H"] == pytest.approx(0.40, abs=EXACT)
    assert contributions["D"] == pytest.approx(0.41, abs=EXACT)
    assert contributions["A"] == pytest.approx(0.19, abs=EXACT)
    probs = _p(0.2, 0.6, 0.1)
    assert sum(overall_contributions(probs).values()) == pytest.approx(cardio_proxies(probs).overall, abs=EXACT)


def test_explanation_names_the_main_contributors() -> None:
    probs = _p(0.9, 0.05, 0.0)
    proxies = cardio_proxies(probs)
    band = risk_band(proxies.overall)
    text = explain_proxies(probs, proxies, band)
    assert text.startswith("Medium cardiovascular risk band")
    assert "hypertensive retinopathy" in text
    assert "macular degeneration" not in text  # contributes 0%
    assert "not a cardiovascular risk score" in text


def test_explanation_when_nothing_contributes() -> None:
    probs = _p(0.0, 0.0, 0.0)
    proxies = cardio_proxies(probs)
    text = explain_proxies(probs, proxies, risk_band(proxies.overall))
    assert "Low cardiovascular risk band" in text and "no retinal sign" in text
