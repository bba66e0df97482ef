"""WFDB records (PhysioNet): a ``.hea`` header with ``.dat`` (binary) or ``.mat`` (MATLAB v4) samples.

Why through ``wfdb``: it is PhysioNet's maintained reader and knows every storage format, gain, baseline and
multi-file layout; we only convert units and lead names and pick up ``# Age`` / ``# Sex`` header comments.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, parse_age_years, parse_sex, unit_factor_mv
from vitalens.io.ecg._record import ECGRecord

__all__ = ["read_wfdb", "write_wfdb"]

logger = logging.getLogger(__name__)


def read_wfdb(path: Path) -> ECGRecord:
    """Read a WFDB record given its ``.hea`` (or a sibling ``.dat``/``.mat``) path.

    Raises:
        InputError: the header is missing or unreadable, or a channel's unit is not a voltage.
    """
    import wfdb

    path = Path(path)
    header = path.with_suffix(".hea")
    if not header.is_file():
        raise InputError(f"WFDB record needs its header {header.name} next to {path.name}", field="ecg")
    try:
        rec = wfdb.rdrecord(str(header.with_suffix("")), physical=True)
    except Exception as exc:  # wfdb raises bare ValueError/FileNotFoundError/struct errors on bad files
        raise InputError(f"cannot read WFDB record {header.name}: {exc}", field="ecg") from exc
    if rec.p_signal is None or rec.fs is None:
        raise InputError(f"WFDB record {header.name} has no samples or no sampling rate", field="ecg")
    signal = np.asarray(rec.p_signal, dtype=np.float64).T  # (channels, samples)
    units = list(rec.units or ["mV"] * signal.shape[0])
    factors = np.array([unit_factor_mv(u or "mV", what=f"WFDB header {header.name}") for u in units])
    signal = signal * factors[:, None]
    meta: dict[str, object] = {"record_name": rec.record_name, "comments": list(rec.comments or [])}
    for comment in rec.comments or []:
        match = re.match(r"\s*(age|sex)\s*:\s*(.+)", comment, flags=re.IGNORECASE)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "age" and (age := parse_age_years(value)) is not None:
            meta["age_years"] = age
        elif key == "sex" and (sex := parse_sex(value)) is not None:
            meta["sex"] = sex
    return build_record(signal, float(rec.fs), rec.sig_name, source_format="wfdb", meta=meta)


def write_wfdb(folder: Path, name: str, signal_mv: np.ndarray, fs_hz: float, leads: tuple[str, ...]) -> Path:
    """Write ``signal_mv`` ``(leads, samples)`` as a 16-bit WFDB record at 1000 adu/mV; returns the ``.hea`` path.

    Why one writer: the synthetic twins, the feedback export and the tests all write PTB-XL-style records, and
    they must agree on gain and format with what PTB-XL ships (16-bit, 1 µV resolution). Values beyond ±32 mV
    (outside a 16-bit range at that gain) and NaNs are clipped/zeroed, with a warning, rather than overflowing.
    """
    import wfdb

    signal = np.asarray(signal_mv, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise InputError(f"signal has shape {signal.shape}; expected ({len(leads)}, samples)", field="ecg")
    clean = np.clip(np.nan_to_num(signal), -32.0, 32.0)
    if not np.array_equal(clean, signal):
        logger.warning("write_wfdb: NaN or |value| > 32 mV clipped in record %s", name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs_hz,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        p_signal=clean.T,
        fmt=["16"] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"
