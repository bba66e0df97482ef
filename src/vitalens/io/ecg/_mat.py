"""The China Physiological Signal Challenge 2018 layout: a MATLAB file holding struct ``ECG`` (sex, age, data).

Why a reader for one challenge layout: CPSC 2018 records circulate in this original form without a header;
the challenge specification fixes their rate (500 Hz), lead order (I, II, III, aVR, aVL, aVF, V1–V6) and
unit (mV). Any other bare ``.mat`` has no rate or lead names and is refused (use WFDB ``.hea`` + ``.mat``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.errors import InputError
from vitalens.io.ecg._common import build_record, parse_age_years, parse_sex
from vitalens.io.ecg._limits import MAX_DECOMPRESSED_BYTES
from vitalens.io.ecg._record import STANDARD_LEADS, ECGRecord

__all__ = ["read_cpsc_mat", "CPSC2018_FS_HZ"]

logger = logging.getLogger(__name__)

#: Sampling rate fixed by the CPSC 2018 specification (Liu et al., JMIHI 2018).
CPSC2018_FS_HZ = 500.0


def _scalar(value: Any) -> Any:
    while isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _check_inflated_size(path: Path, limit: int = MAX_DECOMPRESSED_BYTES) -> None:
    """Refuse a MATLAB v5 file whose compressed elements inflate beyond ``limit`` bytes, without inflating them
    fully: each ``miCOMPRESSED`` element is streamed through zlib in bounded chunks and counted (scipy would
    decompress a whole variable into memory first)."""
    import struct
    import zlib

    data = path.read_bytes()
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return  # not v5 (v4 files are uncompressed, v7.3 is HDF5 and refused by loadmat): nothing can inflate
    endian = "<" if data[126:128] == b"IM" else ">"
    pos, total = 128, 0
    while pos + 8 <= len(data):
        dtype, size = struct.unpack(f"{endian}II", data[pos : pos + 8])
        if dtype >> 16:  # small data element: type and size packed in 4 bytes
            pos += 8
            continue
        body = data[pos + 8 : pos + 8 + size]
        if dtype == 15:  # miCOMPRESSED
            inflater = zlib.decompressobj()
            chunk = inflater.decompress(body, 1 << 20)
            total += len(chunk)
            while inflater.unconsumed_tail and total <= limit:
                chunk = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
                total += len(chunk)
        else:
            total += size
        if total > limit:
            raise InputError(
                f"the .mat inflates to more than {limit:,} bytes; refused (a CPSC 2018 record is under 2 MB)",
                field="ecg",
            )
        pos += 8 + size + (-size % 8 if dtype != 15 else 0)


def read_cpsc_mat(path: Path, *, fs_hz: float | None = None) -> ECGRecord:
    """Read a CPSC 2018 ``.mat`` (struct ``ECG`` with ``data`` 12 × n in mV).

    Raises:
        InputError: not a MATLAB file, or not the CPSC layout (the message says what a bare .mat needs).
    """
    from scipy.io import loadmat

    _check_inflated_size(Path(path))
    try:
        mat = loadmat(str(path))
    except (ValueError, NotImplementedError, TypeError, OSError) as exc:
        raise InputError(f"not a readable MATLAB file: {exc}", field="ecg") from exc
    ecg = mat.get("ECG")
    names = ecg.dtype.names if isinstance(ecg, np.ndarray) and ecg.dtype.names else ()
    if "data" not in names:
        raise InputError(
            "this .mat is not in the CPSC 2018 layout (struct ECG with data/sex/age); a bare .mat has no "
            "sampling rate or lead names: give the WFDB .hea with it (upload both in a .zip)",
            field="ecg",
        )
    struct = ecg[0, 0]
    data = np.asarray(struct["data"], dtype=np.float64)
    if data.ndim != 2 or data.shape[0] != len(STANDARD_LEADS):
        raise InputError(f"CPSC 2018 data must be 12 × n; got {data.shape}", field="ecg")
    meta: dict[str, Any] = {"fs_source": "fs_hz argument" if fs_hz else "CPSC 2018 specification (500 Hz)"}
    if "age" in names and (age := parse_age_years(_scalar(struct["age"]))) is not None:
        meta["age_years"] = age
    if "sex" in names and (sex := parse_sex(_scalar(struct["sex"]))) is not None:
        meta["sex"] = sex
    return build_record(data, fs_hz or CPSC2018_FS_HZ, STANDARD_LEADS, source_format="mat", meta=meta)
