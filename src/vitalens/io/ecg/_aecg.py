"""HL7 v3 annotated ECG (aECG) XML, the format the FDA receives thorough-QT trial ECGs in.

Why this reader: aECG stores each lead as ``origin + scale × digits`` with the unit on origin/scale and the
sampling interval as a time-sequence increment; we read the RHYTHM series and, when present, the global
measurements the device wrote on the representative beat (``MDC_ECG_TIME_PD_PR`` etc.).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, parse_age_years, parse_sex, unit_factor_mv
from vitalens.io.ecg._record import ECGRecord
from vitalens.io.ecg._xml import parse_xml

__all__ = ["read_aecg", "AECG_MEASUREMENTS"]

logger = logging.getLogger(__name__)

NS = "{urn:hl7-org:v3}"

#: MDC annotation code → our key (intervals in ms, angles in degrees, rate in bpm).
AECG_MEASUREMENTS: dict[str, str] = {
    "MDC_ECG_HEART_RATE": "HR_bpm",
    "MDC_ECG_TIME_PD_PR": "PR_ms",
    "MDC_ECG_TIME_PD_QRS": "QRS_ms",
    "MDC_ECG_TIME_PD_QT": "QT_ms",
    "MDC_ECG_TIME_PD_QTc": "QTc_ms",
    "MDC_ECG_TIME_PD_RR": "RR_ms",
    "MDC_ECG_ANGLE_QRS_FRONT": "QRS_axis_deg",
    "MDC_ECG_ANGLE_P_FRONT": "P_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "T_axis_deg",
}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def _code(node: Any) -> str:
    child = node.find(f"{NS}code")
    return child.get("code", "") if child is not None else ""


def _series_of(root: Any, code: str) -> Any | None:
    for tag in ("series", "derivedSeries"):
        for series in root.iter(f"{NS}{tag}"):
            if _code(series) == code:
                return series
    return None


def _read_sequences(series: Any) -> tuple[float, list[str], list[np.ndarray]]:
    fs_hz: float | None = None
    labels: list[str] = []
    rows: list[np.ndarray] = []
    # only this series' own sequence sets, not those of a nested derivedSeries (representative beats)
    for seq in series.findall(f"{NS}component/{NS}sequenceSet/{NS}component/{NS}sequence"):
        code = _code(seq)
        value = seq.find(f"{NS}value")
        if value is None:
            continue
        if code.startswith("TIME_"):
            inc = value.find(f"{NS}increment")
            if inc is not None:
                step = float(inc.get("value", "nan")) * _TIME_TO_S.get(inc.get("unit", "s"), float("nan"))
                if step > 0:
                    fs_hz = 1.0 / step
            continue
        if not code.startswith("MDC_ECG_LEAD_"):
            continue
        origin, scale, digits = value.find(f"{NS}origin"), value.find(f"{NS}scale"), value.find(f"{NS}digits")
        if scale is None or digits is None or not (digits.text or "").strip():
            raise InputError(f"aECG lead {code} has no scale or digits", field="ecg")
        factor = unit_factor_mv(scale.get("unit"), what=f"aECG lead {code}")
        origin_mv = 0.0
        if origin is not None:
            origin_unit = origin.get("unit") or scale.get("unit")
            origin_mv = float(origin.get("value", "0")) * unit_factor_mv(origin_unit, what=f"aECG lead {code}")
        try:
            counts = np.array(digits.text.split(), dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"aECG lead {code}: digits are not numbers", field="ecg") from exc
        labels.append(code)
        rows.append(origin_mv + counts * float(scale.get("value", "1")) * factor)
    if fs_hz is None:
        raise InputError("aECG rhythm series has no time increment (unknown sampling rate)", field="ecg")
    return fs_hz, labels, rows


def _device_measurements(root: Any) -> dict[str, float]:
    """Global measurements from the representative beat, else medians of the per-beat annotations."""
    found: dict[str, list[float]] = {}
    for scope in (_series_of(root, "REPRESENTATIVE_BEAT"), root):
        if scope is None:
            continue
        for ann in scope.iter(f"{NS}annotation"):
            key = AECG_MEASUREMENTS.get(_code(ann))
            value = ann.find(f"{NS}value")
            if key and value is not None and value.get("value") is not None:
                try:
                    found.setdefault(key, []).append(float(value.get("value")))
                except ValueError:
                    continue
        if found:
            break
    return {k: float(np.median(v)) for k, v in found.items()}


def read_aecg(path: Path) -> ECGRecord:
    """Read the RHYTHM series (and device measurements) of an HL7 aECG file.

    Raises:
        InputError: no rhythm series, missing increment/scale, unequal lead lengths or unknown units.
    """
    root = parse_xml(path, what="HL7 aECG")
    series = _series_of(root, "RHYTHM")
    if series is None:
        raise InputError("HL7 aECG file has no RHYTHM series", field="ecg")
    fs_hz, labels, rows = _read_sequences(series)
    if not rows:
        raise InputError("HL7 aECG rhythm series has no MDC_ECG_LEAD_* sequences", field="ecg")
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise InputError(f"HL7 aECG leads have different lengths {sorted(lengths)}", field="ecg")
    meta: dict[str, Any] = {}
    if device := _device_measurements(root):
        meta["device_measurements"] = device
    gender = next(root.iter(f"{NS}administrativeGenderCode"), None)
    if gender is not None and (sex := parse_sex(gender.get("code"))) is not None:
        meta["sex"] = sex
    if (age := _reported_age(root)) is not None:
        meta["age_years"] = age
    return build_record(np.stack(rows), round(fs_hz, 6), labels, source_format="aecg", meta=meta)


def _reported_age(root: Any) -> float | None:
    """LOINC 21612-7 "Reported Age" observation, value in units ``a`` (years)."""
    for parent in root.iter():
        code = parent.find(f"{NS}code")
        if code is not None and code.get("code") == "21612-7":
            value = parent.find(f"{NS}value")
            if value is not None:
                return parse_age_years(
                    value.get("value"), "Y" if value.get("unit", "a") in {"a", "yr"} else value.get("unit")
                )
    return None
