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
from vitalens.io.ecg._limits import check_ecg_size
from vitalens.io.ecg._record import ECGRecord

__all__ = ["read_wfdb", "write_wfdb", "check_wfdb_header"]

logger = logging.getLogger(__name__)

#: The record line: name[/segments] signals [fs[/counter[(base)]] [samples ...]] (WFDB header(5) format).
_RECORD_LINE = re.compile(r"^\S+\s+(?P<nsig>\S+)(?:\s+(?P<fs>[^\s/(]+)(?:[/(]\S*)?(?:\s+(?P<nsamp>\S+))?)?")


def check_wfdb_header(header: Path) -> None:
    """Check the record line of a ``.hea`` before ``wfdb`` reads samples.

    Why by hand: ``wfdb`` reads a rate it cannot parse (``-100``) as the 250 Hz default and would analyse the
    record at a rate it does not have; and a header may declare far more samples than any ECG has.

    Raises:
        InputError: no record line, a count or rate that is not a number, an impossible rate, or a size beyond
            the limits of :mod:`vitalens.io.ecg._limits`.
    """
    try:
        text = header.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"cannot read WFDB header {header.name}: {exc.strerror}", field="ecg") from exc
    line = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    match = _RECORD_LINE.match(line)
    if match is None:
        raise InputError(f"WFDB header {header.name} has no record line", field="ecg")
    what = f"WFDB header {header.name}"
    try:
        nsig = int(match.group("nsig"))
        nsamp = int(match.group("nsamp")) if match.group("nsamp") else None
    except ValueError:
        raise InputError(f"{what}: signal or sample count is not an integer in {line[:80]!r}", field="ecg") from None
    fs = match.group("fs")
    check_ecg_size(n_leads=nsig, n_samples=nsamp, fs_hz=fs if fs is not None else None, what=what)


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
    check_wfdb_header(header)
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
