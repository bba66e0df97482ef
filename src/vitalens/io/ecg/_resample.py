"""Resampling an ECG to the rate a model or delineator expects, by exact rational polyphase filtering.

Why polyphase with exact factors: ECG rates are small integers (100, 250, 257, 360, 500, 1000 Hz), so the ratio
is an exact fraction; ``scipy.signal.resample_poly`` applies an anti-aliasing FIR for down-sampling and does
not assume the record is periodic (FFT resampling would wrap the end of the strip onto its start).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from fractions import Fraction

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._record import ECGRecord

__all__ = ["resample", "resampled_length"]

logger = logging.getLogger(__name__)


def _ratio(fs_from: float, fs_to: float) -> Fraction:
    for value, name in ((fs_from, "source"), (fs_to, "target")):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} sampling rate must be a positive number of Hz; got {value!r}", field="ecg")
    ratio = Fraction(str(float(fs_to))) / Fraction(str(float(fs_from)))
    if ratio.numerator > 10_000 or ratio.denominator > 10_000:
        raise InputError(f"cannot resample {fs_from:g} Hz → {fs_to:g} Hz exactly (ratio {ratio} too fine)", field="ecg")
    return ratio


def resampled_length(n_samples: int, fs_from: float, fs_to: float) -> int:
    """Number of samples after resampling ``n_samples`` from ``fs_from`` to ``fs_to`` (``ceil(n·up/down)``)."""
    ratio = _ratio(fs_from, fs_to)
    return -(-n_samples * ratio.numerator // ratio.denominator)


def resample(record: ECGRecord, fs_hz: float) -> ECGRecord:
    """The same ECG sampled at ``fs_hz``.

    Args:
        record: the ECG.
        fs_hz: target rate in Hz (100 for the default model, 500 supported; any rate with an exact ratio).

    Returns:
        A new record with ``ceil(n_samples · fs_hz / record.fs_hz)`` samples; the input is returned unchanged
        when the rates are equal. ``meta["resampled_from_hz"]`` keeps the original rate.

    Example:
        >>> import numpy as np
        >>> rec = ECGRecord(np.zeros((12, 5000), np.float32), 500.0, STANDARD_LEADS)  # doctest: +SKIP
        >>> resample(rec, 100).signal.shape  # doctest: +SKIP
        (12, 1000)
    """
    from scipy.signal import resample_poly

    ratio = _ratio(record.fs_hz, fs_hz)
    if ratio == 1:
        return record
    out = resample_poly(record.signal.astype(np.float64), ratio.numerator, ratio.denominator, axis=1)
    meta = dict(record.meta)
    meta.setdefault("resampled_from_hz", record.fs_hz)
    logger.debug(
        "resampled ECG %g Hz → %g Hz (up %d, down %d)", record.fs_hz, fs_hz, ratio.numerator, ratio.denominator
    )
    return replace(record, signal=out.astype(np.float32), fs_hz=float(fs_hz), meta=meta)
