"""Bounds on a decoded ECG, checked from headers *before* the samples are allocated.

Why bounds at all: an ECG file is small on disk and can describe an enormous signal (12 leads × 100,000 s at 1 Hz
is 2.4 MB of WFDB; resampled to the model's 100 Hz it is 120 million samples and several GB of memory). A rate
below any ECG's bandwidth or above any recorder's, a duration beyond a resting or rhythm ECG, or an archive that
inflates past what any record needs is refused with a clear :class:`~vitalens.errors.InputError` before anything
is decoded, so one upload can neither stall a request nor kill the worker that analyses it.

The limits are generous for real recorders: 12-lead carts sample at 100–1000 Hz for 10 s, rhythm strips last a
few minutes, research systems reach 10–20 kHz; PTB-XL (100/500 Hz, 10 s) and CPSC 2018 (500 Hz, 6–60 s) sit
well inside them.
"""

from __future__ import annotations

import logging
import math

from vitalens.errors import InputError

__all__ = [
    "MIN_FS_HZ",
    "MAX_FS_HZ",
    "MAX_DURATION_S",
    "MAX_SAMPLES_PER_LEAD",
    "MAX_LEADS",
    "MAX_DECOMPRESSED_BYTES",
    "check_fs",
    "check_ecg_size",
]

logger = logging.getLogger(__name__)

#: Below this rate no ECG waveform survives (a QRS complex has content up to ~40 Hz; PTB-XL's lowest is 100 Hz).
MIN_FS_HZ = 50.0
#: Above this rate no ECG recorder samples (research systems with pacemaker-spike detection reach 10–20 kHz).
MAX_FS_HZ = 20_000.0
#: Longest recording accepted: 10 minutes (resting ECGs last 10 s; longer ambulatory records are another product).
MAX_DURATION_S = 600.0
#: Most samples per lead accepted (e.g. 600 s at 1666 Hz, 100 s at 10 kHz): 8 MB per lead as float64.
MAX_SAMPLES_PER_LEAD = 1_000_000
#: Most channels accepted (12 standard + 3 Frank + spares); real files hold 8–15.
MAX_LEADS = 24
#: Most bytes an ECG archive (.zip of WFDB, .npz) may inflate to: 24 leads of MAX_SAMPLES_PER_LEAD 16-bit samples
#: is 48 MB, so 64 MiB holds any record within the other limits.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


def check_fs(fs_hz: object, *, what: str = "ECG", field: str = "ecg") -> float:
    """``fs_hz`` as a float if it is a plausible ECG sampling rate; else :class:`InputError` naming it.

    ``field`` is the input the rate came from: ``ecg`` for a rate stated in the file, ``fs_hz`` for one the caller
    gave.

    Raises:
        InputError: not a finite number, not positive, or outside [:data:`MIN_FS_HZ`, :data:`MAX_FS_HZ`].
    """
    try:
        fs = float(fs_hz)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{what}: sampling rate {fs_hz!r} is not a number of Hz", field=field) from None
    if not math.isfinite(fs) or fs <= 0:
        raise InputError(
            f"{what}: sampling rate {fs_hz!r} Hz is impossible; it must be a positive number of Hz", field=field
        )
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        raise InputError(
            f"{what}: sampling rate {fs:g} Hz is outside the {MIN_FS_HZ:g}–{MAX_FS_HZ:g} Hz of ECG recorders",
            field=field,
        )
    return fs


def check_ecg_size(*, n_leads: int | None, n_samples: int | None, fs_hz: float | None, what: str = "ECG") -> None:
    """Refuse a signal of ``n_leads`` × ``n_samples`` at ``fs_hz`` (any may be unknown) beyond the limits.

    Raises:
        InputError: too many leads or samples, too long, or an impossible rate.
    """
    fs = check_fs(fs_hz, what=what) if fs_hz is not None else None
    if n_leads is not None and not 1 <= n_leads <= MAX_LEADS:
        raise InputError(f"{what} has {n_leads} channels; between 1 and {MAX_LEADS} are accepted", field="ecg")
    if n_samples is None:
        return
    if n_samples < 0:
        raise InputError(f"{what} declares {n_samples} samples", field="ecg")
    if n_samples > MAX_SAMPLES_PER_LEAD:
        raise InputError(
            f"{what} has {n_samples:,} samples per lead; at most {MAX_SAMPLES_PER_LEAD:,} are accepted", field="ecg"
        )
    if fs is not None and n_samples / fs > MAX_DURATION_S:
        raise InputError(
            f"{what} lasts {n_samples / fs:,.0f} s ({n_samples:,} samples at {fs:g} Hz); at most "
            f"{MAX_DURATION_S:g} s are accepted",
            field="ecg",
        )
