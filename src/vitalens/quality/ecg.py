"""The ECG signal-quality gate: what a 12-lead analysis needs before it runs.

An ECG has no "out-of-distribution photograph" problem — a file that is not an ECG fails to decode — but it has
its own ungradable inputs: disconnected electrodes (flat leads), amplifier saturation (clipped leads), a record
too short to hold beats, or noise that swamps the complexes. Per lead, on the signal in mV:

* flat — peak-to-peak < :data:`FLAT_PTP_MV` (an electrode off; a real lead's QRS alone is ≥ 0.3 mV);
* clipped — ≥ :data:`CLIP_FRACTION` of the samples sit at the lead's own extreme values (a rail);
* implausible — the 99.9th percentile of |x| > :data:`MAX_ABS_MV` (no QRS reaches 10 mV);
* noisy — the power above 35 Hz (sampling ≥ 100 Hz) exceeds :data:`NOISE_RATIO` of the lead's power (muscle
  or mains noise; an ECG's energy is mostly below 30 Hz).

Record verdict: refuse when the record is shorter than :data:`MIN_DURATION_S` or at least half of the leads are
unusable (flat, clipped, implausible) or noisy; flag when any lead is; otherwise pass. The limits are
physiological, not fitted; ``bench/quality.py`` measures them on real PTB-XL records and corrupted copies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from vitalens.quality.image_gate import GateAssessment

__all__ = [
    "FLAT_PTP_MV",
    "CLIP_FRACTION",
    "MAX_ABS_MV",
    "NOISE_RATIO",
    "MIN_DURATION_S",
    "lead_problems",
    "assess_ecg",
]

logger = logging.getLogger(__name__)

FLAT_PTP_MV = 0.05
CLIP_FRACTION = 0.05
MAX_ABS_MV = 10.0
NOISE_RATIO = 0.15
MIN_DURATION_S = 5.0


def lead_problems(lead_mv: np.ndarray, fs_hz: float) -> list[str]:
    """The problems of one lead (``flat``, ``clipped``, ``implausible``, ``noisy``); empty when usable."""
    x = np.asarray(lead_mv, dtype=np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        return ["implausible"]
    ptp = float(x.max() - x.min())
    if ptp < FLAT_PTP_MV:
        return ["flat"]
    problems = []
    tol = 1e-9 + 1e-4 * ptp  # a rail holds one value; a slow wave lingers near its extreme only briefly
    at_rail = max(np.mean(x >= x.max() - tol), np.mean(x <= x.min() + tol))
    if at_rail >= CLIP_FRACTION:
        problems.append("clipped")
    if float(np.percentile(np.abs(x), 99.9)) > MAX_ABS_MV:
        problems.append("implausible")
    if fs_hz >= 100:
        spectrum = np.abs(np.fft.rfft(x - x.mean())) ** 2
        freqs = np.fft.rfftfreq(x.size, 1.0 / fs_hz)
        total = float(spectrum.sum()) or 1.0
        if float(spectrum[freqs > 35.0].sum()) / total > NOISE_RATIO:
            problems.append("noisy")
    return problems


def assess_ecg(signal_mv: np.ndarray, fs_hz: float, leads: Sequence[str] | None = None) -> GateAssessment:
    """The gate's verdict on a ``(n_leads, n_samples)`` ECG in mV sampled at ``fs_hz``.

    Raises:
        ValueError: the signal is not 2-D or the rate is not positive.
    """
    sig = np.asarray(signal_mv)
    if sig.ndim != 2 or fs_hz <= 0:
        raise ValueError(f"expected (leads, samples) and fs > 0, got shape {sig.shape}, fs {fs_hz}")
    names = list(leads) if leads is not None else [f"lead {i + 1}" for i in range(sig.shape[0])]
    duration = sig.shape[1] / float(fs_hz)
    per_lead = {name: lead_problems(sig[i], fs_hz) for i, name in enumerate(names)}
    unusable = [n for n, p in per_lead.items() if set(p) & {"flat", "clipped", "implausible"}]
    noisy = [n for n, p in per_lead.items() if "noisy" in p and n not in unusable]
    metrics: dict[str, float] = {
        "duration_s": duration,
        "n_leads": float(len(names)),
        "n_unusable_leads": float(len(unusable)),
        "n_noisy_leads": float(len(noisy)),
    }
    if duration < MIN_DURATION_S:
        return GateAssessment("refuse", [f"record is {duration:.1f} s; at least {MIN_DURATION_S:g} s needed"], metrics)
    described = [f"{n}: {', '.join(per_lead[n])}" for n in unusable]
    if len(unusable) * 2 >= len(names):
        return GateAssessment(
            "refuse", [f"{len(unusable)} of {len(names)} leads unusable ({'; '.join(described)})"], metrics
        )
    if (len(unusable) + len(noisy)) * 2 >= len(names):
        return GateAssessment(
            "refuse",
            [
                f"{len(unusable) + len(noisy)} of {len(names)} leads unusable or swamped by noise "
                f"({', '.join(unusable + noisy)})"
            ],
            metrics,
        )
    reasons = []
    if unusable:
        reasons.append(f"{len(unusable)} lead(s) unusable ({'; '.join(described)})")
    if noisy:
        reasons.append(f"high-frequency noise in {', '.join(noisy)}")
    return GateAssessment("flag" if reasons else "pass", reasons, metrics)
