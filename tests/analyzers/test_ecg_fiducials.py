"""The delineation methods of ecg.intervals: exact fiducials on constructed beats, refusals, the default's wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitalens.analyzers._ecg_fiducials import (
    DEFAULT_METHOD,
    METHODS,
    QRS_DURATION,
    QT_DURATION,
    beat_fiducials,
    describe,
    fiducials,
    global_fiducials,
    global_t_end,
    median_beat,
    spatial_velocity_qrs,
    tangent_t_end,
)
from vitalens.analyzers.ecg_intervals import DELINEATOR

FS = 500.0  # 2 ms per sample


def _qrs_beat(n: int = 400, r: int = 160, up: int = 20, down: int = 30, leads: int = 3) -> np.ndarray:
    """Flat beats with a triangular QRS: rising for ``up`` samples before R, falling for ``down`` after."""
    beat = np.zeros((leads, n))
    for k in range(leads):
        beat[k, r - up : r + 1] = np.linspace(0.0, 1.0 + k, up + 1)
        beat[k, r : r + down + 1] = np.linspace(1.0 + k, 0.0, down + 1)
    return beat


def test_spatial_velocity_qrs_exact_boundaries() -> None:
    onset, offset = spatial_velocity_qrs(_qrs_beat(up=20, down=30), 160, FS)
    assert onset == -40.0  # 20 samples before R at 500 Hz
    assert offset == 60.0  # 30 samples after R


def _from_velocity(shoulder: float) -> np.ndarray:
    """One lead built from its sample-to-sample velocity: a shoulder (``shoulder`` × peak) for 10 samples, then
    the QRS at full velocity up for 10 samples (to R at 160) and down for 10."""
    v = np.zeros(399)
    v[140:150], v[150:160], v[160:170] = shoulder, 1.0, -1.0
    return np.concatenate([[0.0], np.cumsum(v)])[None]


def test_spatial_velocity_qrs_threshold_edge() -> None:
    # a slow shoulder at exactly 10 % of the peak velocity is not QRS (the boundary needs > 10 %)
    assert spatial_velocity_qrs(_from_velocity(0.10), 160, FS) == (-20.0, 20.0)
    assert spatial_velocity_qrs(_from_velocity(0.11), 160, FS) == (-40.0, 20.0)  # just above: included


def test_spatial_velocity_qrs_not_measured() -> None:
    assert all(math.isnan(v) for v in spatial_velocity_qrs(np.zeros((2, 400)), 160, FS))  # flat
    # a QRS rising from the first sample of the search window has no onset within the limits: NaN, not -160
    onset, offset = spatial_velocity_qrs(_qrs_beat(up=120, down=30), 160, FS)
    assert math.isnan(onset) and offset == 60.0


def test_median_beat_is_the_samplewise_median() -> None:
    rr = 100
    template = np.sin(np.linspace(0, 2 * np.pi, rr))
    rpeaks = np.array([50, 150, 250, 350, 450])
    signal = np.zeros(560)
    for i, r in enumerate(rpeaks):
        signal[r - 40 : r + 60] = template * (1.0 + 0.1 * (i - 2))  # amplitudes 0.8 .. 1.2, median 1.0
    beat, pre = median_beat(signal, rpeaks, FS)
    assert pre == 40 and beat.shape == (rr,)
    np.testing.assert_allclose(beat, template, atol=1e-12)
    assert median_beat(signal, rpeaks[:2], FS) is None  # < 3 beats


def test_beat_fiducials_keeps_the_nearest_mark_in_each_window() -> None:
    rpeaks = np.array([500, 1000])
    marks = np.zeros(1500, dtype=int)
    marks[[420, 440, 940]] = 1  # two P onsets before the first R: the last one (closest) counts
    signals = {"ECG_P_Onsets": marks}
    fid = beat_fiducials(signals, {}, rpeaks, FS)
    assert fid["P_onset"].tolist() == [-120.0, -120.0]
    assert np.isnan(fid["T_offset"]).all()  # the delineator gave none: NaN, nothing invented


def test_global_fiducials_outermost_of_the_agreeing_leads() -> None:
    per_lead = {
        "I": {"P_onset": -150.0, "QRS_onset": -50.0, "QRS_offset": 40.0, "T_offset": 380.0},
        "II": {"P_onset": -140.0, "QRS_onset": -44.0, "QRS_offset": 52.0, "T_offset": 400.0},
        "V1": {"P_onset": -190.0, "QRS_onset": -120.0, "QRS_offset": 48.0, "T_offset": 440.0},  # 40 ms edge
    }
    g = global_fiducials(per_lead, min_leads=2)
    assert g == {"P_onset": -190.0, "QRS_onset": -50.0, "QRS_offset": 52.0, "T_offset": 440.0}
    assert all(math.isnan(v) for v in global_fiducials(per_lead, min_leads=4).values())


def test_methods_named_and_refused() -> None:
    assert DEFAULT_METHOD in METHODS and len(METHODS) == 21
    assert DELINEATOR == describe(DEFAULT_METHOD) and "R peaks from lead II" in DELINEATOR
    with pytest.raises(ValueError, match="unknown delineation method 'beats-xyz'"):
        fiducials({}, np.array([1, 2, 3]), FS, "beats-xyz", min_leads=3)


def test_svel_methods_share_the_velocity_qrs() -> None:
    # four leads of a steady rhythm of one constructed beat (QRS 40 ms before to 60 ms after R at sample 160)
    beat = _qrs_beat(up=20, down=30, leads=4)
    cleaned = {ld: np.tile(beat[k], 8) for k, ld in enumerate(("I", "II", "V2", "V5"))}
    rpeaks = 160 + 400 * np.arange(8)
    svel, _ = fiducials(cleaned, rpeaks, FS, "svel-dwt", min_leads=3)
    only_qrs, _ = fiducials(cleaned, rpeaks, FS, "svelqrs-dwt", min_leads=3)
    beats, _ = fiducials(cleaned, rpeaks, FS, "beats-dwt", min_leads=3)
    assert np.all(svel["QRS_onset"] == -40.0) and np.all(svel["QRS_offset"] == 60.0)
    np.testing.assert_array_equal(svel["T_offset"], beats["T_offset"])  # P and T stay the per-beat ones
    np.testing.assert_array_equal(only_qrs["QRS_onset"], beats["QRS_onset"])  # PR, QT unchanged
    assert np.all(only_qrs[QRS_DURATION] == 100.0)


def test_spatial_velocity_qrs_bridges_the_dip_at_r() -> None:
    # every lead peaks at R at once: the velocity is 0 between samples 160 and 161; the QRS still spans R
    v = np.zeros(399)
    v[140:160], v[161:181] = 1.0, -1.0
    beat = np.concatenate([[0.0], np.cumsum(v)])[None].repeat(2, axis=0)
    assert spatial_velocity_qrs(beat, 160, FS) == (-40.0, 42.0)


def _t_beat(*, n: int = 500, r: int = 150, sign: float = 1.0, base: float = 0.0) -> np.ndarray:
    """One RR (n samples at 500 Hz, R at ``r``) flat at ``base``, a T wave rising over samples 280–330 to
    ``base + sign`` and falling linearly back to ``base`` at sample 355 (so its steepest slope is on the fall)."""
    beat = np.full(n, base)
    beat[280:331] = base + sign * np.linspace(0.0, 1.0, 51)
    beat[330:356] = base + sign * np.linspace(1.0, 0.0, 26)
    return beat


def test_tangent_t_end_exact_on_a_linear_fall() -> None:
    # the fall is a straight line from sample 330 (value 1) to 355 (value 0): its tangent meets the baseline at 355,
    # (355 − 150) samples × 2 ms = 410 ms after R, for an upright or an inverted T and on any baseline level
    for sign, base in ((1.0, 0.0), (-1.0, 0.0), (1.0, 0.3)):
        got = tangent_t_end(_t_beat(sign=sign, base=base), 150, FS, qrs_onset_ms=-40.0, qrs_offset_ms=60.0)
        assert got == pytest.approx(410.0, abs=1e-9)


def test_tangent_t_end_tangent_meets_the_baseline_beyond_a_curved_tail() -> None:
    # a fall whose steepest slope (−0.2 per sample, samples 330→335) gives way to a slow tail: the tangent at the
    # steep part reaches the baseline (0) at 330 + 1 / 0.2 = 335 → 370 ms, before the tail ends
    beat = np.zeros(500)
    beat[280:331] = np.linspace(0.0, 1.0, 51)
    beat[330:336] = [1.0, 0.8, 0.6, 0.4, 0.3, 0.25]
    beat[336:360] = np.linspace(0.24, 0.0, 24)
    got = tangent_t_end(beat, 150, FS, qrs_onset_ms=-40.0, qrs_offset_ms=60.0)
    assert got == pytest.approx((330 + 1.0 / 0.2 - 150) * 2.0, abs=1e-9)


def test_tangent_t_end_not_measured() -> None:
    beat = _t_beat()
    assert math.isnan(tangent_t_end(beat, 150, FS, qrs_onset_ms=float("nan"), qrs_offset_ms=60.0))
    assert math.isnan(tangent_t_end(np.zeros(500), 150, FS, qrs_onset_ms=-40.0, qrs_offset_ms=60.0))  # no T
    assert math.isnan(tangent_t_end(beat, 150, FS, qrs_onset_ms=-400.0, qrs_offset_ms=60.0))  # onset off the beat
    short = _t_beat()[:300]  # the T peak window closes before it opens
    assert math.isnan(tangent_t_end(short, 150, FS, qrs_onset_ms=-40.0, qrs_offset_ms=60.0))


def test_global_t_end_latest_of_the_agreeing_leads() -> None:
    assert global_t_end([380.0, 392.0, 401.0, 520.0], min_leads=3) == 401.0  # 520 is 124 ms from the median
    assert global_t_end([380.0, 420.0, 421.0], min_leads=3) == 421.0  # 380 and 421 both within 40 ms of 420
    assert math.isnan(global_t_end([380.0, float("nan")], min_leads=2))


def test_qt_from_the_global_onset_in_svelqt_and_tangent() -> None:
    beat = _qrs_beat(up=20, down=30, leads=4)  # QRS from 40 ms before to 60 ms after R at sample 160
    for k in range(4):
        beat[k, 290:341] = np.linspace(0.0, 0.5, 51)
        beat[k, 340:366] = np.linspace(0.5, 0.0, 26)  # a T wave whose tangent ends at sample 365
    cleaned = {ld: np.tile(beat[k], 8) for k, ld in enumerate(("I", "II", "V2", "V5"))}
    rpeaks = 160 + 400 * np.arange(8)
    svelqt, _ = fiducials(cleaned, rpeaks, FS, "svelqt-dwt", min_leads=3)
    np.testing.assert_array_equal(svelqt[QT_DURATION], svelqt["T_offset"] + 40.0)  # from the global onset −40 ms
    assert np.all(svelqt[QRS_DURATION] == 100.0)
    tangent, _ = fiducials(cleaned, rpeaks, FS, "tangent-dwt", min_leads=3)
    assert np.all(tangent["T_offset"] == pytest.approx((365 - 160) * 2.0))
    assert np.all(tangent[QT_DURATION] == pytest.approx((365 - 160) * 2.0 + 40.0))  # 450 ms
