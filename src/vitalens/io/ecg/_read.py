"""One entry point for every ECG format: pick the reader by name, suffix or content, and accept uploads safely.

Why a dispatcher: the API, CLI and bench all say "read this ECG"; the format is detected here once. Uploads
are written into a private temporary folder under a fixed name (only a validated suffix of the user's
filename is used), so a filename such as ``../../etc/passwd`` can never become a path.
"""

from __future__ import annotations

import logging
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError, UnknownNameError, UnsupportedMediaError, VitalensError
from vitalens.io.ecg._limits import MAX_DECOMPRESSED_BYTES
from vitalens.io.ecg._record import ECGRecord
from vitalens.io.ecg._xml import decode_xml_head, sniff_xml_kind

__all__ = [
    "ECG_FORMATS",
    "UPLOAD_SUFFIXES",
    "UnknownECGFormatError",
    "detect_ecg_format",
    "read_ecg",
    "read_ecg_bytes",
]

logger = logging.getLogger(__name__)

#: Format name → what it is (the names ``read_ecg(format=...)`` accepts).
ECG_FORMATS: dict[str, str] = {
    "wfdb": "PhysioNet WFDB: .hea header with .dat or .mat samples",
    "dicom": "DICOM waveform (12-lead ECG / General ECG), .dcm",
    "aecg": "HL7 v3 annotated ECG XML",
    "muse": "GE MUSE RestingECG XML",
    "csv": "CSV, header row of lead names, one row per sample (fs_hz or a time column)",
    "npy": "NumPy .npy array (12, n) or (n, 12) in standard lead order (fs_hz required)",
    "npz": "NumPy .npz with 'signal' and optional 'fs_hz', 'leads', 'units'",
    "mat": "CPSC 2018 MATLAB struct ECG (500 Hz, standard lead order)",
    "zip": "a .zip holding one WFDB record (.hea + .dat/.mat)",
}

#: Suffixes accepted for uploads (a bare WFDB .hea/.dat is useless alone: upload a .zip of both).
UPLOAD_SUFFIXES: tuple[str, ...] = (".dcm", ".xml", ".csv", ".txt", ".npy", ".npz", ".mat", ".zip", "")

_SAFE_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_WFDB_MEMBER_SUFFIXES = {".hea", ".dat", ".mat", ".xyz", ".atr"}
_MAX_ZIP_MEMBERS = 32
_MAX_ZIP_RATIO = 200  # uncompressed/compressed: decompression-bomb guard


class UnknownECGFormatError(UnknownNameError, InputError):
    """A ``format`` name that no reader handles: both an unknown name (lists formats) and a bad input (HTTP 422)."""

    def __init__(self, message: str, *, field: str = "format") -> None:
        InputError.__init__(self, message, field=field)


def _unknown(name: str) -> UnknownECGFormatError:
    return UnknownECGFormatError(str(unknown_name_error("ECG format", name, ECG_FORMATS)))


def _undetectable(what: str) -> UnsupportedMediaError:
    """Content no reader recognises (HTTP 415), listing the formats that are read."""
    return UnsupportedMediaError(
        f"{what} is not an ECG format vitalens reads; accepted: {', '.join(ECG_FORMATS)}", field="ecg"
    )


@contextmanager
def _scrubbed(folder: str) -> Iterator[None]:
    """Remove the private temporary ``folder`` from the message of any :class:`InputError` raised inside, so an
    answer never shows the server's paths (``/tmp/vitalens-ecg-…/upload.dat`` becomes ``upload.dat``)."""
    try:
        yield
    except InputError as exc:
        if exc.args and isinstance(exc.args[0], str) and folder in exc.args[0]:
            exc.args = (exc.args[0].replace(folder + "/", "").replace(folder, "the upload"), *exc.args[1:])
        raise


def detect_ecg_format(path: Path) -> str:
    """The format of the file at ``path`` from its suffix, siblings and first bytes.

    Raises:
        UnknownECGFormatError: nothing matched (the message lists the formats).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hea" or (suffix in {".dat", ".mat"} and path.with_suffix(".hea").is_file()):
        return "wfdb"
    simple = {
        ".dcm": "dicom",
        ".csv": "csv",
        ".txt": "csv",
        ".npy": "npy",
        ".npz": "npz",
        ".mat": "mat",
        ".zip": "zip",
        ".dicom": "dicom",
    }
    with path.open("rb") as fh:
        head = fh.read(65536)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if suffix == ".xml" or decode_xml_head(head[:64]).lstrip().startswith("<"):
        kind = sniff_xml_kind(head)
        if kind is not None:
            return kind
        raise UnsupportedMediaError(
            f"XML file {path.name} is neither a GE MUSE RestingECG nor an HL7 AnnotatedECG", field="ecg"
        )
    if suffix in simple:
        return simple[suffix]
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        return "zip"
    raise _undetectable(f"file {path.name}")


def _extract_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, target: Path) -> None:
    """Inflate one member to ``target``, at most its declared size; a damaged member is an :class:`InputError`."""
    try:
        with archive.open(member) as src, target.open("wb") as dst:
            left = member.file_size
            while chunk := src.read(min(1 << 20, left + 1)):
                left -= len(chunk)
                if left < 0:
                    raise InputError(f"ECG .zip member {name!r} inflates beyond its declared size", field="ecg")
                dst.write(chunk)
    except InputError:
        raise
    except zipfile.BadZipFile as exc:  # e.g. "Bad CRC-32 for file 'x.dat'"
        raise InputError(f"ECG .zip member {name!r} is damaged: {exc}", field="ecg") from exc
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, or a compression method zipfile lacks
        raise InputError(f"ECG .zip member {name!r} cannot be extracted: {exc}", field="ecg") from exc
    except (zlib.error, EOFError, OSError) as exc:
        raise InputError(f"ECG .zip member {name!r} is truncated or corrupt: {exc}", field="ecg") from exc


def _read_zip(path: Path, *, fs_hz: float | None) -> ECGRecord:
    """Extract one WFDB record from a zip (only .hea/.dat/.mat/.xyz members with safe names) and read it.

    Every member's declared size is checked against :data:`MAX_DECOMPRESSED_BYTES` (in total) before anything is
    inflated, and inflation stops at the declared size; a bad CRC, an encrypted member or a truncated archive is
    an :class:`InputError` on every path that reads uploads.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InputError(f"not a valid .zip: {exc}", field="ecg") from exc
    with archive, tempfile.TemporaryDirectory(prefix="vitalens-ecg-zip-") as tmp, _scrubbed(tmp):
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > _MAX_ZIP_MEMBERS:
            raise InputError(f"ECG .zip has {len(members)} files; at most {_MAX_ZIP_MEMBERS}", field="ecg")
        inflated = sum(m.file_size for m in members)
        if inflated > MAX_DECOMPRESSED_BYTES:
            raise InputError(
                f"ECG .zip inflates to {inflated:,} bytes; at most {MAX_DECOMPRESSED_BYTES:,} are accepted",
                field="ecg",
            )
        headers: list[Path] = []
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/")).name
            if name.startswith("._") or member.filename.startswith("__MACOSX/"):
                continue  # macOS resource forks
            if ".." in member.filename.split("/") or member.filename.startswith("/"):
                raise InputError(f"ECG .zip member {member.filename!r} is a path outside the archive", field="ecg")
            if not _SAFE_MEMBER.match(name) or PurePosixPath(name).suffix.lower() not in _WFDB_MEMBER_SUFFIXES:
                raise InputError(
                    f"ECG .zip member {name!r} is not a WFDB file with a plain name "
                    f"(allowed: {', '.join(sorted(_WFDB_MEMBER_SUFFIXES))})",
                    field="ecg",
                )
            if member.file_size > _MAX_ZIP_RATIO * max(member.compress_size, 1024):
                raise InputError(f"ECG .zip member {name!r} expands suspiciously (zip bomb?)", field="ecg")
            target = Path(tmp) / name
            _extract_member(archive, member, name, target)
            if target.suffix.lower() == ".hea":
                headers.append(target)
        if len(headers) != 1:
            raise InputError(f"ECG .zip must hold exactly one WFDB header (.hea); found {len(headers)}", field="ecg")
        return _read_path(headers[0], "wfdb", fs_hz=fs_hz, units=None)


def _read_path(path: Path, fmt: str, *, fs_hz: float | None, units: str | None) -> ECGRecord:
    from vitalens.io.ecg._aecg import read_aecg
    from vitalens.io.ecg._dicom import read_dicom
    from vitalens.io.ecg._mat import read_cpsc_mat
    from vitalens.io.ecg._muse import read_muse
    from vitalens.io.ecg._tabular import read_csv, read_npy, read_npz
    from vitalens.io.ecg._wfdb import read_wfdb

    readers: dict[str, Callable[[], ECGRecord]] = {
        "wfdb": lambda: read_wfdb(path),
        "dicom": lambda: read_dicom(path),
        "aecg": lambda: read_aecg(path),
        "muse": lambda: read_muse(path),
        "csv": lambda: read_csv(path, fs_hz=fs_hz, units=units),
        "npy": lambda: read_npy(path, fs_hz=fs_hz, units=units),
        "npz": lambda: read_npz(path, fs_hz=fs_hz, units=units),
        "mat": lambda: read_cpsc_mat(path, fs_hz=fs_hz),
        "zip": lambda: _read_zip(path, fs_hz=fs_hz),
    }
    try:
        record = readers[fmt]()
    except (VitalensError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a reader library's own error: the file is not a readable ECG
        raise InputError(f"unreadable {fmt} ECG file: {type(exc).__name__}: {exc}", field="ecg") from exc
    if fs_hz is not None and fmt in {"wfdb", "dicom", "aecg", "muse"} and abs(record.fs_hz - fs_hz) > 1e-6:
        raise InputError(f"fs_hz={fs_hz:g} Hz contradicts the {fmt} file ({record.fs_hz:g} Hz)", field="ecg")
    logger.debug("read %s ECG: %d leads × %d samples at %g Hz", fmt, len(record.leads), record.n_samples, record.fs_hz)
    return record


def read_ecg(
    path: Path | str, *, format: str | None = None, fs_hz: float | None = None, units: str | None = None
) -> ECGRecord:
    """Read an ECG file of any supported format into an ``ECGRecord`` (mV, standard lead names).

    Args:
        path: the file (for WFDB the ``.hea``, or its ``.dat``/``.mat``).
        format: one of ``ECG_FORMATS``; ``None`` detects it from the suffix and content.
        fs_hz: sampling rate in Hz for formats that do not store it (CSV without a time column, ``.npy``);
            for the others it must agree with the file.
        units: amplitude unit of CSV/NumPy samples (``"mV"`` default, ``"uV"``, ``"V"``).

    Returns:
        The record with the leads the file holds (use ``.to_standard12()`` for the 12 standard leads).

    Raises:
        UnknownECGFormatError: unknown ``format`` or undetectable file (lists the formats).
        InputError: the file is unreadable or lacks what the format needs (rate, units, lead names).

    Example:
        >>> rec = read_ecg("example.xml")  # doctest: +SKIP
        >>> rec.to_standard12().leads  # doctest: +SKIP
        ('I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6')
    """
    path = Path(path)
    if format is not None and format not in ECG_FORMATS:
        raise _unknown(format)
    if not path.is_file():
        raise InputError(f"ECG file not found: {path}", field="ecg")
    fmt = format or detect_ecg_format(path)
    return _read_path(path, fmt, fs_hz=fs_hz, units=units)


def _safe_suffix(filename: str) -> str:
    """The lower-case suffix of an upload's bare filename; path-like or odd names raise ``InputError``."""
    if not filename or len(filename) > 255 or any(c in filename for c in "/\\\x00:") or filename in {".", ".."}:
        raise InputError(
            f"upload filename {filename!r} must be a plain file name (no folders, '..', drive letters or NUL)",
            field="ecg",
        )
    if ".." in filename:
        raise InputError(f"upload filename {filename!r} must not contain '..'", field="ecg")
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UnsupportedMediaError(
            f"ECG upload {filename!r} has suffix {suffix!r}; accepted: "
            f"{', '.join(s for s in UPLOAD_SUFFIXES if s)} (WFDB: a .zip with .hea + .dat/.mat)",
            field="ecg",
        )
    return suffix


def read_ecg_bytes(
    data: bytes,
    *,
    filename: str,
    format: str | None = None,
    fs_hz: float | None = None,
    units: str | None = None,
    max_bytes: int | None = None,
) -> ECGRecord:
    """Read an uploaded ECG from memory.

    The bytes are written to a private temporary folder as ``upload<suffix>``; the user's ``filename`` is only
    checked and its suffix reused. A WFDB record is uploaded as a ``.zip`` holding its ``.hea`` and
    ``.dat``/``.mat``.

    Args:
        data: the file's bytes.
        filename: the name the client sent (a bare name; folders or ``..`` are refused).
        format, fs_hz, units: as for ``read_ecg``.
        max_bytes: size limit; default ``Settings.max_upload_bytes``.

    Raises:
        InputError: empty, too large, or a path-like filename.
        UnsupportedMediaError: a suffix that is not an ECG format.
    """
    suffix = _safe_suffix(filename)
    if max_bytes is None:
        from vitalens.config import get_settings

        max_bytes = get_settings().max_upload_bytes
    if not data:
        raise InputError(f"ECG upload {filename!r} is empty", field="ecg")
    if len(data) > max_bytes:
        raise InputError(f"ECG upload is {len(data)} bytes; the limit is {max_bytes} bytes", field="ecg")
    if format is not None and format not in ECG_FORMATS:
        raise _unknown(format)
    if fs_hz is not None:
        from vitalens.io.ecg._limits import check_fs

        fs_hz = check_fs(fs_hz, what="the fs_hz given", field="fs_hz")
    with tempfile.TemporaryDirectory(prefix="vitalens-ecg-") as tmp, _scrubbed(tmp):
        target = Path(tmp) / f"upload{suffix}"
        target.write_bytes(data)
        fmt = format or detect_ecg_format(target)
        if fmt == "wfdb":
            raise InputError(
                "a WFDB record needs its header and samples together: upload a .zip of .hea + .dat/.mat", field="ecg"
            )
        return _read_path(target, fmt, fs_hz=fs_hz, units=units)
