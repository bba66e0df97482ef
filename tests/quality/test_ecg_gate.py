"""The ECG gate's rules on hand-made signals: each limit, at its edge."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.quality.ecg import CLIP_FRACTION, FLAT_PTP_MV, assess_ecg, lead_problems

FS = 100.0


def _beat_train(n: int = 1000, amp: float = 1.0) -> np.ndarray:
    """A 10 s lead: a 1 Hz train of 60 ms-wide triangles (QRS-like) of ``amp`` mV on a slowly wandering baseline
    (0.05 mV at 0.3 Hz, so no value repeats like a rail), nothing above 35 Hz to speak of."""
    t = np.arange(n) / FS
    phase = (t % 1.0) / 0.06
    return np.where(phase < 1.0, amp * (1 - np.abs(2 * phase - 1)), 0.0) + 0.05 * np.sin(2 * np.pi * 0.3 * t)


def _record(n_leads: int = 12) -> np.ndarray:
    return np.stack([_beat_train(amp=0.5 + 0.1 * i) for i in range(n_leads)])


def test_clean_record_passes() -> None:
    a = assess_ecg(_record(), FS)
    assert a.verdict == "pass" and a.reasons == []
    assert a.metrics["duration_s"] == pytest.approx(10.0)


def test_flat_edge() -> None:
    lead = np.zeros(1000)
    lead[0] = FLAT_PTP_MV * 0.99
    assert lead_problems(lead, FS) == ["flat"]
    lead[0] = FLAT_PTP_MV * 1.01
    assert "flat" not in lead_problems(lead, FS)


def test_clipping_counts_samples_at_the_rail() -> None:
    lead = _beat_train()
    assert "clipped" in lead_problems(np.clip(lead, None, 0.2), FS)  # 1 Hz triangles cut at 20 % height
    few = lead.copy()
    few[: int(CLIP_FRACTION * 1000) - 2] = few.max()  # just under 5 % of samples at the maximum
    assert "clipped" not in lead_problems(few, FS)


def test_implausible_amplitude_and_nan() -> None:
    assert "implausible" in lead_problems(_beat_train(amp=12.0), FS)
    bad = _beat_train()
    bad[3] = np.nan
    assert lead_problems(bad, FS) == ["implausible"]


def test_noise_above_35_hz() -> None:
    t = np.arange(1000) / FS
    assert "noisy" in lead_problems(_beat_train() + 0.5 * np.sin(2 * np.pi * 45 * t), FS)


def test_half_the_leads_unusable_refuses_fewer_flags() -> None:
    rec = _record()
    rec[:6] = 0.0
    assert assess_ecg(rec, FS).verdict == "refuse"
    rec = _record()
    rec[:5] = 0.0
    a = assess_ecg(rec, FS, leads=[f"L{i}" for i in range(12)])
    assert a.verdict == "flag" and "L0: flat" in a.reasons[0]


def test_too_short_refuses() -> None:
    a = assess_ecg(_record()[:, :499], FS)  # 4.99 s
    assert a.verdict == "refuse" and "5 s" in a.reasons[0]
    assert assess_ecg(_record()[:, :500], FS).verdict == "pass"


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match="leads, samples"):
        assess_ecg(np.zeros(10), FS)
