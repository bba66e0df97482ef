"""Small pieces every ECG reader shares: unit conversion to mV, lead-label handling, patient fields.

Why shared: six formats spell "microvolts" six ways and "female" three; converting them in one place keeps
every reader's output identical in meaning.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._limits import check_ecg_size
from vitalens.io.ecg._record import ECGRecord, select_known_leads

__all__ = ["UNIT_TO_MV", "unit_factor_mv", "build_record", "parse_age_years", "parse_sex"]

logger = logging.getLogger(__name__)

#: Multiply samples in the key unit by the value to get millivolts.
UNIT_TO_MV: dict[str, float] = {
    "mv": 1.0,
    "millivolt": 1.0,
    "millivolts": 1.0,
    "uv": 1e-3,
    "µv": 1e-3,
    "μv": 1e-3,
    "microvolt": 1e-3,
    "microvolts": 1e-3,
    "v": 1e3,
    "volt": 1e3,
    "volts": 1e3,
    "nv": 1e-6,
    "nanovolt": 1e-6,
    "nanovolts": 1e-6,
}


def unit_factor_mv(unit: str | None, *, what: str = "ECG") -> float:
    """Factor turning samples in ``unit`` into mV; an unknown or missing unit raises ``InputError``."""
    key = (unit or "").strip().lower().replace(" ", "")
    if key in UNIT_TO_MV:
        return UNIT_TO_MV[key]
    raise InputError(f"unknown amplitude unit {unit!r} in {what}; expected one of mV, uV (µV), V", field="ecg")


def build_record(
    signal_mv: np.ndarray,
    fs_hz: float,
    labels: list[str] | tuple[str, ...],
    *,
    source_format: str,
    meta: dict[str, Any] | None = None,
) -> ECGRecord:
    """An ``ECGRecord`` from a ``(leads, samples)`` array in mV and the file's lead labels.

    Labels are normalised to standard names; known non-standard leads (Frank X/Y/Z) are dropped and listed in
    ``meta["dropped_leads"]``; an unknown label raises, and so do a sampling rate or a size beyond
    :mod:`vitalens.io.ecg._limits` (every reader ends here, so no record escapes those bounds).
    """
    shape = np.shape(signal_mv)
    check_ecg_size(
        n_leads=int(shape[0]) if len(shape) == 2 else None,
        n_samples=int(shape[1]) if len(shape) == 2 else None,
        fs_hz=fs_hz,
        what=f"{source_format} ECG",
    )
    keep, names, dropped = select_known_leads(list(labels))
    meta = dict(meta or {})
    if dropped:
        meta["dropped_leads"] = dropped
        logger.info("%s: dropped non-standard leads %s", source_format, ", ".join(dropped))
    if not keep:
        raise InputError(f"no standard ECG lead among {list(labels)!r}", field="ecg")
    signal = np.asarray(signal_mv, dtype=np.float64)[keep].astype(np.float32)
    return ECGRecord(signal=signal, fs_hz=float(fs_hz), leads=tuple(names), source_format=source_format, meta=meta)


def parse_age_years(value: Any, unit: str | None = None) -> float | None:
    """Age in years from ``"81"``, ``"042Y"`` (DICOM AS), ``"6M"``, or a number with a unit; ``None`` if unknown."""
    if value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([DWMYdwmy]?)", text)
    if not match:
        return None
    number = float(match.group(1))
    suffix = (match.group(2) or (unit or "Y")[:1]).upper()
    per_year = {"Y": 1.0, "A": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}.get(suffix)
    if per_year is None:
        return None
    age = number / per_year
    return age if 0 <= age <= 130 else None


def parse_sex(value: Any) -> str | None:
    """``"female"``/``"male"`` from ``F``/``M``/``Female``/``MALE``/``1``-less strings; ``None`` otherwise."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"f", "female", "woman", "w"}:
        return "female"
    if text in {"m", "male", "man"}:
        return "male"
    return None
