"""Exact values of the ECG interval formulas and every reference-range boundary."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from vitalens.errors import InputError, UnknownNameError
from vitalens.risk.ecg_intervals import (
    IRREGULAR_RR_CV,
    REFERENCE_RANGES,
    axis_category,
    flag,
    frontal_axis_deg,
    heart_rate_bpm,
    qtc_bazett_ms,
    qtc_fridericia_ms,
    rhythm_regularity,
)


def test_qtc_at_60_bpm_equals_qt():
    assert qtc_bazett_ms(400.0, 1000.0) == 400.0
    assert qtc_fridericia_ms(400.0, 1000.0) == pytest.approx(400.0, abs=1e-12)


def test_qtc_bazett_and_fridericia_exact():
    assert qtc_bazett_ms(400.0, 640.0) == 500.0  # sqrt(0.64) = 0.8
    assert qtc_fridericia_ms(400.0, 512.0) == pytest.approx(500.0, abs=1e-9)  # cbrt(0.512) = 0.8
    assert qtc_bazett_ms(360.0, 1440.0) == pytest.approx(300.0)  # sqrt(1.44) = 1.2
    assert qtc_fridericia_ms(400.0, 640.0) == pytest.approx(400.0 / 0.64 ** (1 / 3))


def test_heart_rate_exact_and_edges():
    assert heart_rate_bpm(1000.0) == 60.0
    assert heart_rate_bpm(600.0) == 100.0
    assert heart_rate_bpm(1500.0) == 40.0
    assert math.isnan(heart_rate_bpm(float("nan")))
    assert math.isnan(qtc_bazett_ms(float("nan"), 800.0))
    with pytest.raises(InputError, match="rr_ms must be a positive"):
        heart_rate_bpm(0.0)
    with pytest.raises(InputError, match="qt_ms"):
        qtc_bazett_ms(-1.0, 800.0)


@pytest.mark.parametrize(
    ("net_i", "net_avf", "expected"),
    [
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 90.0),
        (-1.0, 0.0, 180.0),
        (-1.0, -0.0, 180.0),  # atan2 gives -180 here; the range is (-180, 180]
        (0.0, -1.0, -90.0),
        (1.0, math.sqrt(3) / 2, 45.0),  # aVF reads sqrt(3)/2 of the projection on +90°
        (1.0, -math.sqrt(3) / 2, -45.0),
        (1.0, 1.5, 60.0),  # tan(60°) = sqrt(3) = 2·1.5/sqrt(3)
    ],
)
def test_frontal_axis_exact(net_i, net_avf, expected):
    assert frontal_axis_deg(net_i, net_avf) == pytest.approx(expected, abs=1e-9)


def test_frontal_axis_undefined():
    assert math.isnan(frontal_axis_deg(0.0, 0.0))
    assert math.isnan(frontal_axis_deg(float("nan"), 1.0))


@pytest.mark.parametrize(
    ("axis", "category"),
    [
        (-30.0, "normal"),
        (90.0, "normal"),
        (0.0, "normal"),
        (-30.5, "left axis deviation"),
        (-90.0, "left axis deviation"),
        (90.5, "right axis deviation"),
        (180.0, "right axis deviation"),
        (-180.0, "right axis deviation"),
        (-90.5, "extreme axis deviation"),
        (-179.0, "extreme axis deviation"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_axis_category_boundaries(axis, category):
    assert axis_category(axis) == category


@pytest.mark.parametrize(
    ("name", "value", "sex", "expected"),
    [
        ("HR_bpm", 59.9, None, "low"),
        ("HR_bpm", 60.0, None, "normal"),
        ("HR_bpm", 100.0, None, "normal"),
        ("HR_bpm", 100.1, None, "high"),
        ("PR_ms", 119.0, None, "low"),
        ("PR_ms", 120.0, None, "normal"),
        ("PR_ms", 200.0, None, "normal"),
        ("PR_ms", 201.0, None, "high"),
        # QRS is one-sided: a narrow QRS (65 ms, even 40 ms) is no abnormality
        ("QRS_ms", 40.0, None, "normal"),
        ("QRS_ms", 65.0, None, "normal"),
        ("QRS_ms", 70.0, None, "normal"),
        ("QRS_ms", 110.0, None, "normal"),
        ("QRS_ms", 111.0, None, "high"),
        ("QRS_ms", 120.0, None, "high"),
        # QTc: prolonged at >= 450 (men) / >= 460 (women); short at <= 340
        ("QTc_ms", 449.0, "male", "normal"),
        ("QTc_ms", 450.0, "male", "high"),
        ("QTc_ms", 459.0, "female", "normal"),
        ("QTc_ms", 460.0, "female", "high"),
        ("QTc_ms", 450.0, "female", "normal"),
        ("QTc_ms", 450.0, None, "high"),  # sex unknown: the male limit
        ("QTc_bazett_ms", 341.0, "male", "normal"),
        ("QTc_fridericia_ms", 340.0, "female", "low"),
        ("QRS_axis_deg", -30.0, None, "normal"),
        ("QRS_axis_deg", -31.0, None, "low"),
        ("QRS_axis_deg", 90.0, None, "normal"),
        ("QRS_axis_deg", 91.0, None, "high"),
        ("PR_ms", None, None, None),
        ("QRS_ms", float("nan"), None, None),
    ],
)
def test_flag_boundaries(name, value, sex, expected):
    assert flag(name, value, sex) == expected


def test_reference_ranges_state_their_source():
    assert REFERENCE_RANGES["QRS_ms"][:2] == (None, 110.0)
    assert REFERENCE_RANGES["HR_bpm"][:2] == (60.0, 100.0)
    assert REFERENCE_RANGES["QRS_axis_deg"][:2] == (-30.0, 90.0)
    assert REFERENCE_RANGES["QTc_ms_male"][:2] == (340.0, 450.0)
    assert REFERENCE_RANGES["QTc_ms_female"][:2] == (340.0, 460.0)
    assert REFERENCE_RANGES["PR_ms"][:2] == (120.0, 200.0)
    assert all("AHA" in REFERENCE_RANGES[k][2] for k in ("PR_ms", "QRS_ms", "QTc_ms_male", "QRS_axis_deg"))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # every two-sided range names a finding in each direction; the edges are exact
        ("HR_bpm", 59.9, "low"),  # sinus bradycardia
        ("HR_bpm", 60.0, "normal"),
        ("HR_bpm", 100.0, "normal"),
        ("HR_bpm", 100.1, "high"),  # sinus tachycardia
        ("RR_ms", 599.0, "low"),
        ("RR_ms", 600.0, "normal"),
        ("RR_ms", 1000.0, "normal"),
        ("RR_ms", 1001.0, "high"),
        ("PR_ms", 119.9, "low"),  # short PR (pre-excitation)
        ("QTc_ms", 340.0, "low"),  # short QT is abnormal at the limit (ESC 2015: ≤ 340 ms)
        ("QTc_ms", 340.1, "normal"),
        ("QTc_ms", 449.9, "normal"),
        ("QRS_ms", 0.1, "normal"),  # one-sided: no value below the upper limit is flagged
        ("QRS_ms", 110.0, "normal"),
        ("QRS_ms", 110.1, "high"),
    ],
)
def test_flag_direction_follows_the_guideline(name, value, expected):
    assert flag(name, value) == expected


def test_flag_unknown_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'PR_ms'"):
        flag("PR_msec", 150.0)


def test_rhythm_regularity_exact():
    out = rhythm_regularity([800.0, 1000.0, 800.0, 1000.0])
    assert out["mean_rr_ms"] == 900.0
    assert out["sdnn_ms"] == pytest.approx(np.std([800, 1000, 800, 1000], ddof=1))
    assert out["rmssd_ms"] == 200.0
    assert out["cv"] == pytest.approx(out["sdnn_ms"] / 900.0)
    assert out["regularity"] == "irregular"  # CV 0.128 > 0.10
    assert "0.10" in out["threshold"]


def test_rhythm_regularity_boundary_and_short_input():
    steady = rhythm_regularity([1000.0] * 5)
    assert steady["regularity"] == "regular" and steady["rmssd_ms"] == 0.0 and steady["cv"] == 0.0
    # CV exactly at the threshold counts as regular (irregular only when above)
    at = rhythm_regularity([900.0, 1000.0, 1100.0])  # SDNN 100, mean 1000: CV exactly 0.10
    assert at["cv"] == IRREGULAR_RR_CV and at["regularity"] == "regular"
    assert rhythm_regularity([890.0, 1000.0, 1110.0])["regularity"] == "irregular"
    two = rhythm_regularity([900.0, 1100.0])
    assert two["regularity"] == "undetermined" and two["sdnn_ms"] is not None
    none = rhythm_regularity([])
    assert none["regularity"] == "undetermined" and none["mean_rr_ms"] is None


def test_risk_module_imports_no_torch():
    code = "import sys, vitalens.risk.ecg_intervals; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
