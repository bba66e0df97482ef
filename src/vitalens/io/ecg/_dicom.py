"""DICOM waveform ECGs (12-lead ECG Waveform Storage and General ECG), read with pydicom.

Why pydicom's ``waveform_array``: it applies each channel's sensitivity, correction factor and baseline, so
we only choose the rhythm multiplex group, convert its sensitivity unit to mV and map lead names.

The cart's own global measurements (PR, QRS, QT, QTc, RR, axes), where the file carries them as numeric
``WaveformAnnotationSequence`` items coded in SCP-ECG (PS3.3 C.10.10, CID 3678), are kept in
``meta["device_measurements"]``: they are the reference ``bench/ecg_intervals.py`` compares our intervals with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, parse_age_years, parse_sex, unit_factor_mv
from vitalens.io.ecg._limits import check_ecg_size
from vitalens.io.ecg._record import ECGRecord

__all__ = ["read_dicom", "DICOM_MEASUREMENTS"]

logger = logging.getLogger(__name__)

#: SCP-ECG measurement code (and its code meaning, lower case) → our key; intervals in ms, axes in degrees.
DICOM_MEASUREMENTS: dict[str, str] = {
    "5.10.2.1-3": "RR_ms",
    "rr interval": "RR_ms",
    "5.13.5-7": "PR_ms",
    "pr interval": "PR_ms",
    "5.13.5-9": "QRS_ms",
    "qrs duration": "QRS_ms",
    "5.13.5-11": "QT_ms",
    "qt interval": "QT_ms",
    "5.10.2.5-5": "QTc_ms",
    "qtc interval": "QTc_ms",
    "5.10.3-11": "P_axis_deg",
    "p axis": "P_axis_deg",
    "5.10.3-13": "QRS_axis_deg",
    "qrs axis": "QRS_axis_deg",
    "5.10.3-15": "T_axis_deg",
    "t axis": "T_axis_deg",
}
_TO_MS = {"ms": 1.0, "s": 1000.0}


def _device_measurements(ds: Any) -> dict[str, float]:
    """The numeric SCP-ECG measurements of ``WaveformAnnotationSequence`` (a zero interval means not measured)."""
    found: dict[str, float] = {}
    for ann in ds.get("WaveformAnnotationSequence") or []:
        names, value = ann.get("ConceptNameCodeSequence"), ann.get("NumericValue")
        if not names or value is None:
            continue
        code = names[0]
        key = DICOM_MEASUREMENTS.get(str(code.get("CodeValue", "")).strip()) or DICOM_MEASUREMENTS.get(
            str(code.get("CodeMeaning", "")).strip().lower()
        )
        if key is None or key in found:
            continue
        try:
            number = float(value)
        except TypeError:  # several values (VM > 1): the first is the measurement
            number = float(value[0])
        except ValueError:
            continue
        units = ann.get("MeasurementUnitsCodeSequence")
        unit = str(units[0].get("CodeValue", "")).strip() if units else ""
        if key.endswith("_ms"):
            if unit not in _TO_MS or number <= 0:
                continue
            number *= _TO_MS[unit]
        found[key] = number
    return found


def _pick_group(groups: Any) -> int:
    """Index of the rhythm multiplex group (by label), else the longest one (median beats are short)."""
    for i, group in enumerate(groups):
        if str(group.get("MultiplexGroupLabel", "")).strip().upper() == "RHYTHM":
            return i
    return int(np.argmax([int(g.NumberOfWaveformSamples) for g in groups]))


def read_dicom(path: Path) -> ECGRecord:
    """Read the rhythm waveform of a DICOM ECG file.

    Raises:
        InputError: not DICOM, no waveform sequence, or an amplitude unit that is not a voltage.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputError(f"not a readable DICOM file: {exc}", field="ecg") from exc
    groups = ds.get("WaveformSequence")
    if not groups:
        raise InputError("DICOM file has no WaveformSequence (not an ECG waveform object)", field="ecg")
    try:
        index = _pick_group(groups)
        group = groups[index]
        declared = (int(group.NumberOfWaveformChannels), int(group.NumberOfWaveformSamples))
        fs_declared = group.SamplingFrequency
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise InputError(f"DICOM waveform group lacks its channel/sample counts or rate: {exc}", field="ecg") from exc
    # before pydicom allocates the samples: the header may describe far more than any ECG
    check_ecg_size(n_leads=declared[0], n_samples=declared[1], fs_hz=fs_declared, what="DICOM waveform")
    try:
        samples = np.asarray(ds.waveform_array(index), dtype=np.float64).T  # (channels, samples)
    except Exception as exc:  # pydicom raises several types for malformed waveform data
        raise InputError(f"cannot decode DICOM waveform data: {exc}", field="ecg") from exc
    labels: list[str] = []
    factors: list[float] = []
    for channel in group.ChannelDefinitionSequence:
        source = channel.ChannelSourceSequence[0]
        labels.append(str(source.get("CodeMeaning") or source.get("CodeValue")))
        unit_seq = channel.get("ChannelSensitivityUnitsSequence")
        unit = str(unit_seq[0].CodeValue) if unit_seq else None
        factors.append(unit_factor_mv(unit, what="DICOM ChannelSensitivityUnits"))
    signal = samples * np.asarray(factors)[:, None]
    meta: dict[str, Any] = {"multiplex_group": str(group.get("MultiplexGroupLabel", index))}
    if (age := parse_age_years(ds.get("PatientAge"))) is not None:
        meta["age_years"] = age
    if (sex := parse_sex(ds.get("PatientSex"))) is not None:
        meta["sex"] = sex
    if ds.get("Manufacturer"):
        meta["device"] = str(ds.Manufacturer)
    if device := _device_measurements(ds):
        meta["device_measurements"] = device
    return build_record(signal, float(group.SamplingFrequency), labels, source_format="dicom", meta=meta)
