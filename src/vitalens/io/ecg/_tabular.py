"""Plain arrays: CSV (one column per lead) and NumPy ``.npy``/``.npz``, the formats researchers export by hand.

Why strict: these files carry no standard header, so the sampling rate, lead names and units are either in
the file (a header row, a time column, ``.npz`` keys) or must be given; nothing is guessed silently.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, unit_factor_mv
from vitalens.io.ecg._limits import MAX_DECOMPRESSED_BYTES, check_fs
from vitalens.io.ecg._record import STANDARD_LEADS, ECGRecord

__all__ = ["read_csv", "read_npy", "read_npz", "TIME_COLUMNS"]

logger = logging.getLogger(__name__)

#: Time-column names (lower case) → seconds per unit.
TIME_COLUMNS: dict[str, float] = {
    "time": 1.0,
    "t": 1.0,
    "time_s": 1.0,
    "times": 1.0,
    "seconds": 1.0,
    "sec": 1.0,
    "s": 1.0,
    "time_ms": 1e-3,
    "ms": 1e-3,
    "t_ms": 1e-3,
}
_INDEX_COLUMNS = {"sample", "samples", "index", "idx", "n"}
_UNIT_IN_NAME = re.compile(r"^(?P<lead>.*?)[\s_]*[\(\[](?P<unit>[^\)\]]+)[\)\]]\s*$")


def _need_fs(fs_hz: float | None, what: str) -> float:
    if fs_hz is None:
        raise InputError(f"unknown sampling rate: {what} does not state it; pass fs_hz (e.g. fs_hz=500)", field="ecg")
    return check_fs(fs_hz, what=what, field="fs_hz")


def _fs_from_time(values: np.ndarray, seconds_per_unit: float, column: str) -> float:
    steps = np.diff(values.astype(np.float64)) * seconds_per_unit
    if len(steps) == 0 or not np.all(np.isfinite(steps)) or np.median(steps) <= 0:
        raise InputError(f"time column {column!r} is not increasing; cannot infer the sampling rate", field="ecg")
    step = float(np.median(steps))
    if np.max(np.abs(steps - step)) > 0.01 * step + 1e-9:
        raise InputError(f"time column {column!r} is not evenly spaced; resample to a fixed rate first", field="ecg")
    return float(round(1.0 / step, 6))


def read_csv(path: Path, *, fs_hz: float | None = None, units: str | None = None) -> ECGRecord:
    """Read a CSV with a header row of lead names (``I, II, ..., V6``), one row per sample.

    The sampling rate comes from ``fs_hz`` or from a time column (``time``/``time_s`` in s, ``time_ms`` in
    ms). Units come from ``units`` (default mV) or from every lead column's ``(unit)``/``[unit]`` suffix
    (``"I (uV)"``).

    Raises:
        InputError: no header, a non-numeric cell, no sampling rate, or conflicting rates.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse ECG CSV: {exc}", field="ecg") from exc
    columns = [str(c).strip() for c in frame.columns]
    if _first_row_numeric(Path(path)):
        raise InputError("ECG CSV needs a header row naming the leads (I, II, III, aVR, ..., V6)", field="ecg")
    time_fs: float | None = None
    lead_cols: list[int] = []
    for i, name in enumerate(columns):
        key = name.lower()
        if key in TIME_COLUMNS:
            time_fs = _fs_from_time(frame.iloc[:, i].to_numpy(), TIME_COLUMNS[key], name)
        elif key not in _INDEX_COLUMNS:
            lead_cols.append(i)
    if time_fs is not None and fs_hz is not None and not np.isclose(time_fs, fs_hz, rtol=1e-3):
        raise InputError(f"fs_hz={fs_hz:g} Hz contradicts the CSV time column ({time_fs:g} Hz)", field="ecg")
    fs = time_fs if time_fs is not None else _need_fs(fs_hz, "the CSV (no time column)")
    labels: list[str] = []
    col_units: list[str | None] = []
    for i in lead_cols:
        match = _UNIT_IN_NAME.match(columns[i])
        labels.append(match.group("lead") if match else columns[i])
        col_units.append(match.group("unit") if match else None)
    try:
        data = frame.iloc[:, lead_cols].to_numpy(dtype=np.float64).T
    except ValueError as exc:
        raise InputError(f"ECG CSV has non-numeric values: {exc}", field="ecg") from exc
    factors = np.array([unit_factor_mv(units or cu or "mV", what="ECG CSV") for cu in col_units])
    return build_record(
        data * factors[:, None],
        fs,
        labels,
        source_format="csv",
        meta={"units_in_file": units or next((u for u in col_units if u), "mV")},
    )


def _first_row_numeric(path: Path) -> bool:
    """True when the first non-comment line holds only numbers (no header row)."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                return all(_is_number(cell.strip()) for cell in line.split(",") if cell.strip())
    return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _orient(array: np.ndarray, n_leads: int | None, what: str) -> np.ndarray:
    """(leads, samples) from a 2-D array stored either way round."""
    if array.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (leads, samples); got shape {array.shape}", field="ecg")
    expected = n_leads or len(STANDARD_LEADS)
    if array.shape[0] == expected:
        return array
    if array.shape[1] == expected:
        return array.T
    raise InputError(
        f"{what} has shape {array.shape}; expected {expected} leads on one axis"
        + ("" if n_leads else f" (without lead names the order {', '.join(STANDARD_LEADS)} is assumed)"),
        field="ecg",
    )


def _array_record(
    array: np.ndarray, *, fs_hz: float | None, leads: list[str] | None, units: str | None, source_format: str, what: str
) -> ECGRecord:
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{what} holds {array.dtype} values, not numbers", field="ecg")
    signal = _orient(np.asarray(array, dtype=np.float64), len(leads) if leads else None, what)
    fs = _need_fs(fs_hz, what)
    factor = unit_factor_mv(units or "mV", what=what)
    return build_record(
        signal * factor,
        fs,
        leads or list(STANDARD_LEADS),
        source_format=source_format,
        meta={"units_in_file": units or "mV"},
    )


def read_npy(path: Path, *, fs_hz: float | None = None, units: str | None = None) -> ECGRecord:
    """Read a ``.npy`` array of 12 leads in standard order, ``(12, n)`` or ``(n, 12)``; ``fs_hz`` is required."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"cannot read .npy (object arrays are refused): {exc}", field="ecg") from exc
    return _array_record(array, fs_hz=fs_hz, leads=None, units=units, source_format="npy", what="the .npy file")


def read_npz(path: Path, *, fs_hz: float | None = None, units: str | None = None) -> ECGRecord:
    """Read a ``.npz`` with ``signal`` (or a single array) and optional ``fs_hz``/``fs``, ``leads``, ``units``.

    A ``.npz`` is a zip: the inflated size of its members is checked against
    :data:`~vitalens.io.ecg._limits.MAX_DECOMPRESSED_BYTES` before anything is decompressed.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(m.file_size for m in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a valid .npz (zip) file: {exc}", field="ecg") from exc
    if inflated > MAX_DECOMPRESSED_BYTES:
        raise InputError(
            f".npz inflates to {inflated:,} bytes; at most {MAX_DECOMPRESSED_BYTES:,} are accepted", field="ecg"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            arrays: dict[str, Any] = {k: npz[k] for k in keys}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read .npz (object arrays are refused): {exc}", field="ecg") from exc
    signal_key = next((k for k in ("signal", "ecg", "x", "data") if k in arrays), keys[0] if len(keys) == 1 else None)
    if signal_key is None:
        raise InputError(f".npz needs a 'signal' array; it has {', '.join(keys) or 'nothing'}", field="ecg")
    file_fs = next((float(arrays[k]) for k in ("fs_hz", "fs", "sampling_rate") if k in arrays), None)
    if file_fs is not None and fs_hz is not None and not np.isclose(file_fs, fs_hz, rtol=1e-6):
        raise InputError(f"fs_hz={fs_hz:g} Hz contradicts the .npz fs ({file_fs:g} Hz)", field="ecg")
    leads = [str(x) for x in arrays["leads"].tolist()] if "leads" in arrays else None
    file_units = str(arrays["units"]) if "units" in arrays else None
    return _array_record(
        arrays[signal_key],
        fs_hz=file_fs if file_fs is not None else fs_hz,
        leads=leads,
        units=units or file_units,
        source_format="npz",
        what="the .npz file",
    )
