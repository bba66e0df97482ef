"""Checks that an ECG is usable before anything measures or classifies it, with errors that name the problem.

Why a separate gate: a lead that fell off (flat line), a file in µV read as mV, or NaNs from a broken export
all produce confident nonsense downstream. Each check here raises ``InputError(field="ecg")`` saying what was
found and what was expected, so the clinician or integrator can fix the input.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._limits import check_fs
from vitalens.io.ecg._record import STANDARD_LEADS, ECGRecord, normalise_lead_name

__all__ = [
    "validate_ecg",
    "FLAT_PTP_MV",
    "MAX_PLAUSIBLE_AMPLITUDE_MV",
    "MIN_PLAUSIBLE_AMPLITUDE_MV",
    "ecg_amplitude_mv",
]

logger = logging.getLogger(__name__)

#: A lead whose peak-to-peak range is below this (mV) carries no ECG: electrode off or a zero-filled channel.
FLAT_PTP_MV = 0.01
#: Robust amplitude (largest per-lead 99th percentile of |x − median|) above this (mV) is not a surface ECG in
#: mV; real 12-lead ECGs sit around 0.5–2 mV (PTB-XL: median 0.86 mV, max 10 mV). Values ~1000× too large
#: mean the samples are in µV.
MAX_PLAUSIBLE_AMPLITUDE_MV = 20.0
#: Robust amplitude below this (mV) means samples ~1000× too small, i.e. in volts.
MIN_PLAUSIBLE_AMPLITUDE_MV = 0.02


def ecg_amplitude_mv(signal: np.ndarray) -> float:
    """Robust amplitude of a ``(leads, samples)`` signal, in its units.

    The largest over leads of each lead's 99th percentile of |x − median|, so one good lead among flat ones
    still shows the signal's scale (flat leads are reported separately).
    """
    centred = signal - np.median(signal, axis=1, keepdims=True)
    return float(np.percentile(np.abs(centred), 99, axis=1).max())


def validate_ecg(
    record: ECGRecord,
    *,
    leads: tuple[str, ...] | list[str] | None = STANDARD_LEADS,
    fs_hz: float | None = None,
    min_duration_s: float | None = None,
    duration_s: float | None = None,
) -> None:
    """Raise ``InputError`` when ``record`` cannot be analysed as asked; return ``None`` when it can.

    Checks, in order: a known positive sampling rate (and ``fs_hz`` when given), the required ``leads``,
    NaN/inf samples, a plausible amplitude in mV (µV or V files say so), flat leads, and the duration.

    Args:
        record: the ECG to check.
        leads: leads that must be present (any accepted spelling); ``None`` checks none.
        fs_hz: the sampling rate the caller expects (Hz), or ``None`` for any.
        min_duration_s: shortest acceptable recording (s).
        duration_s: exact expected duration (s); one sample of tolerance.

    Raises:
        InputError: with ``field="ecg"`` and a message naming the lead or value at fault and what was expected.
    """
    fs = record.fs_hz
    if not (isinstance(fs, int | float) and math.isfinite(fs) and fs > 0):
        raise InputError(f"unknown sampling rate ({fs!r}); give it in Hz (e.g. fs_hz=500)", field="ecg")
    check_fs(fs, what="ECG")
    if fs_hz is not None and not math.isclose(fs, fs_hz, rel_tol=1e-6):
        raise InputError(f"ECG sampled at {fs:g} Hz; expected {fs_hz:g} Hz (resample first)", field="ecg")
    if leads is not None:
        wanted = [normalise_lead_name(ld) for ld in leads]
        missing = [ld for ld in wanted if ld not in record.leads]
        if missing:
            raise InputError(
                f"ECG is missing lead(s) {', '.join(missing)}; it has {', '.join(record.leads) or 'none'}",
                field="ecg",
            )
    sig = record.signal
    if sig.shape[1] == 0:
        raise InputError("ECG has no samples", field="ecg")
    bad = ~np.isfinite(sig)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        names = ", ".join(f"{record.leads[r]} ({int(bad[r].sum())} samples)" for r in rows)
        raise InputError(f"ECG contains NaN/inf values in lead(s) {names}", field="ecg")
    amp = ecg_amplitude_mv(sig)
    if amp > MAX_PLAUSIBLE_AMPLITUDE_MV:
        raise InputError(
            f"implausible ECG amplitude {amp:.4g} mV (expected about 0.1–{MAX_PLAUSIBLE_AMPLITUDE_MV:g} mV): "
            "the samples are probably in µV, not mV (divide by 1000 or pass units='uV')",
            field="ecg",
        )
    ptp = np.ptp(sig, axis=1)
    if amp < MIN_PLAUSIBLE_AMPLITUDE_MV and ptp.max() > 0:
        raise InputError(
            f"implausible ECG amplitude {amp:.4g} mV (expected about 0.1–{MAX_PLAUSIBLE_AMPLITUDE_MV:g} mV): "
            "the samples are probably in V, not mV (multiply by 1000 or pass units='V')",
            field="ecg",
        )
    flat = [record.leads[i] for i in np.flatnonzero(ptp < FLAT_PTP_MV)]
    if flat:
        raise InputError(
            f"ECG lead(s) {', '.join(flat)} are a flat line (peak-to-peak < {FLAT_PTP_MV} mV): electrode off "
            "or empty channel",
            field="ecg",
        )
    dur = record.duration_s()
    if min_duration_s is not None and dur + 0.5 / fs < min_duration_s:
        raise InputError(f"ECG lasts {dur:.3g} s; at least {min_duration_s:g} s is needed", field="ecg")
    if duration_s is not None and abs(dur - duration_s) > 1.0 / fs + 1e-9:
        raise InputError(
            f"ECG has the wrong length: {record.n_samples} samples = {dur:.4g} s at {fs:g} Hz; expected "
            f"{duration_s:g} s ({round(duration_s * fs)} samples)",
            field="ecg",
        )
