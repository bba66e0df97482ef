"""Safe input decoding: ECG formats (``vitalens.io.ecg``) and images.

Image I/O lives in ``io/images.py`` (owned by the image-input work); this package root only re-exports the ECG
names below. Keep edits here additive so both parts can grow independently.
"""

from __future__ import annotations

import logging

from vitalens.io.ecg import (
    ECG_FORMATS,
    STANDARD_LEADS,
    ECGRecord,
    normalise_lead_name,
    read_ecg,
    read_ecg_bytes,
    resample,
    validate_ecg,
)

__all__ = [
    "ECG_FORMATS",
    "STANDARD_LEADS",
    "ECGRecord",
    "normalise_lead_name",
    "read_ecg",
    "read_ecg_bytes",
    "resample",
    "validate_ecg",
]

logger = logging.getLogger(__name__)
