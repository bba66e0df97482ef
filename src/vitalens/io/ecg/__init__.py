"""ECG input: readers for every supported format, validation, resampling and the lead vocabulary.

Every reader returns an ``ECGRecord`` whose signal is float32 ``(leads, samples)`` in mV with standard lead
names, so the model, the interval measurements and the plot never see a format's quirks.

Example:
    >>> from vitalens.io.ecg import read_ecg, resample, validate_ecg
    >>> rec = read_ecg("braveheart_example1.xml").to_standard12()  # doctest: +SKIP
    >>> validate_ecg(rec); rec100 = resample(rec, 100)  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from vitalens.io.ecg._read import (
    ECG_FORMATS,
    UPLOAD_SUFFIXES,
    UnknownECGFormatError,
    detect_ecg_format,
    read_ecg,
    read_ecg_bytes,
)
from vitalens.io.ecg._record import STANDARD_LEADS, ECGRecord, normalise_lead_name
from vitalens.io.ecg._resample import resample, resampled_length
from vitalens.io.ecg._validate import validate_ecg
from vitalens.io.ecg._wfdb import write_wfdb

__all__ = [
    "ECG_FORMATS",
    "STANDARD_LEADS",
    "UPLOAD_SUFFIXES",
    "ECGRecord",
    "UnknownECGFormatError",
    "detect_ecg_format",
    "normalise_lead_name",
    "read_ecg",
    "read_ecg_bytes",
    "resample",
    "resampled_length",
    "validate_ecg",
    "write_wfdb",
]

logger = logging.getLogger(__name__)
