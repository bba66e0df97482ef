"""GE MUSE "RestingECG" XML exports: base64 int16 rhythm leads plus the cart's own measurements.

Why keep the measurements: MUSE stores the device's PR, QRS, QT, QTc, rate and axes, which are the reference
our interval analyzer is compared with (``bench/ecg_intervals.py``). MUSE stores 8 independent leads (I, II,
V1–V6); ``ECGRecord.to_standard12`` derives the other four.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, parse_age_years, parse_sex, unit_factor_mv
from vitalens.io.ecg._record import ECGRecord
from vitalens.io.ecg._xml import parse_xml

__all__ = ["read_muse", "MUSE_MEASUREMENTS"]

logger = logging.getLogger(__name__)

#: MUSE measurement tag → our key (all intervals in ms, rates in bpm, axes in degrees).
MUSE_MEASUREMENTS: dict[str, str] = {
    "VentricularRate": "HR_bpm",
    "AtrialRate": "atrial_rate_bpm",
    "PRInterval": "PR_ms",
    "QRSDuration": "QRS_ms",
    "QTInterval": "QT_ms",
    "QTCorrected": "QTc_ms",
    "QTcFrederica": "QTc_fridericia_ms",
    "RAxis": "QRS_axis_deg",
    "PAxis": "P_axis_deg",
    "TAxis": "T_axis_deg",
}


def _text(node: Any, tag: str) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def read_muse(path: Path) -> ECGRecord:
    """Read the rhythm waveform and measurements of a GE MUSE XML file.

    Raises:
        InputError: no rhythm waveform, bad base64, unequal lead lengths, or unknown amplitude units.
    """
    root = parse_xml(path, what="GE MUSE")
    if root.tag != "RestingECG":
        raise InputError(f"not a GE MUSE RestingECG document (root <{root.tag}>)", field="ecg")
    rhythm = next((w for w in root.iter("Waveform") if (_text(w, "WaveformType") or "").lower() == "rhythm"), None)
    if rhythm is None:
        raise InputError("GE MUSE file has no Rhythm waveform", field="ecg")
    base = _number(_text(rhythm, "SampleBase"))
    exponent = _number(_text(rhythm, "SampleExponent")) or 0.0
    if not base:
        raise InputError("GE MUSE rhythm waveform has no SampleBase (sampling rate)", field="ecg")
    fs_hz = base * 10.0**exponent
    labels: list[str] = []
    rows: list[np.ndarray] = []
    for lead in rhythm.iter("LeadData"):
        lead_id = _text(lead, "LeadID") or "?"
        raw = _text(lead, "WaveFormData") or ""
        try:
            counts = np.frombuffer(base64.b64decode("".join(raw.split()), validate=True), dtype="<i2")
        except ValueError as exc:
            raise InputError(f"GE MUSE lead {lead_id}: waveform data is not valid base64: {exc}", field="ecg") from exc
        per_bit = _number(_text(lead, "LeadAmplitudeUnitsPerBit")) or 1.0
        factor = unit_factor_mv(_text(lead, "LeadAmplitudeUnits"), what=f"GE MUSE lead {lead_id}")
        labels.append(lead_id)
        rows.append(counts.astype(np.float64) * per_bit * factor)
    if not rows:
        raise InputError("GE MUSE rhythm waveform has no LeadData", field="ecg")
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise InputError(f"GE MUSE leads have different lengths {sorted(lengths)}", field="ecg")
    meta: dict[str, Any] = {}
    measurements = root.find("RestingECGMeasurements")
    if measurements is not None:
        device = {
            key: v for tag, key in MUSE_MEASUREMENTS.items() if (v := _number(_text(measurements, tag))) is not None
        }
        if device:
            meta["device_measurements"] = device
    demographics = root.find("PatientDemographics")
    if demographics is not None:
        age = parse_age_years(_text(demographics, "PatientAge"), (_text(demographics, "AgeUnits") or "Y"))
        if age is not None:
            meta["age_years"] = age
        if (sex := parse_sex(_text(demographics, "Gender"))) is not None:
            meta["sex"] = sex
    return build_record(np.stack(rows), fs_hz, labels, source_format="muse", meta=meta)
