"""Bounds on decoded ECGs and safe archives/XML: every bad file is an ``InputError`` before any big allocation.

Before: a WFDB header with a negative rate was read as 250 Hz; 12 leads × 100,000 s at 1 Hz (2.4 MB zipped) ran the
server out of memory; a zip member with a bad CRC raised ``zipfile.BadZipFile`` (HTTP 500) on the predict route; a
UTF-16 XML evaded the entity guard; a missing ``.dat`` showed the server's temporary path.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, read_ecg_bytes
from vitalens.io.ecg._limits import (
    MAX_DECOMPRESSED_BYTES,
    MAX_DURATION_S,
    MAX_FS_HZ,
    MAX_SAMPLES_PER_LEAD,
    MIN_FS_HZ,
    check_ecg_size,
    check_fs,
)
from vitalens.io.ecg._wfdb import write_wfdb
from vitalens.io.ecg._xml import sniff_xml_kind


def _signal(n: int = 1000, leads: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    return (np.sin(2 * np.pi * 1.2 * t)[None] + 0.05 * rng.standard_normal((leads, n))).astype(np.float64)


def _wfdb_zip(tmp_path: Path, *, fs: float = 100.0, n: int = 1000, header_edit=None, drop_dat: bool = False) -> bytes:
    hea = write_wfdb(tmp_path, "rec", _signal(n), fs, STANDARD_LEADS)
    if header_edit is not None:
        hea.write_text(header_edit(hea.read_text()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(hea, "rec.hea")
        if not drop_dat:
            zf.write(tmp_path / "rec.dat", "rec.dat")
    return buf.getvalue()


def _record_line(fs: str, nsamp: str | None = None):
    def edit(text: str) -> str:
        lines = text.splitlines()
        parts = lines[0].split()
        parts[2] = fs
        if nsamp is not None:
            parts[3] = nsamp
        lines[0] = " ".join(parts)
        return "\n".join(lines) + "\n"

    return edit


def test_rate_edges_are_exact() -> None:
    assert check_fs(MIN_FS_HZ) == 50.0 and check_fs(MAX_FS_HZ) == 20_000.0
    for bad in (MIN_FS_HZ - 0.01, MAX_FS_HZ + 0.1, 0.0, -100.0, float("nan"), float("inf")):
        with pytest.raises(InputError):
            check_fs(bad)
    with pytest.raises(InputError, match="'abc' is not a number of Hz") as info:
        check_fs("abc", field="fs_hz")
    assert info.value.field == "fs_hz"


def test_size_edges_are_exact() -> None:
    check_ecg_size(n_leads=12, n_samples=int(MAX_DURATION_S * 100), fs_hz=100.0)  # exactly 600 s: accepted
    with pytest.raises(InputError, match="lasts 600 s"):
        check_ecg_size(n_leads=12, n_samples=int(MAX_DURATION_S * 100) + 1, fs_hz=100.0)
    check_ecg_size(n_leads=12, n_samples=MAX_SAMPLES_PER_LEAD, fs_hz=10_000.0)
    with pytest.raises(InputError, match="1,000,001 samples per lead; at most 1,000,000"):
        check_ecg_size(n_leads=12, n_samples=MAX_SAMPLES_PER_LEAD + 1, fs_hz=20_000.0)
    with pytest.raises(InputError, match="25 channels; between 1 and 24"):
        check_ecg_size(n_leads=25, n_samples=10, fs_hz=500.0)


def test_negative_rate_in_a_wfdb_header_is_refused_not_read_as_250_hz(tmp_path: Path) -> None:
    data = _wfdb_zip(tmp_path, header_edit=_record_line("-100"))
    with pytest.raises(InputError, match="sampling rate '-100' Hz is impossible") as info:
        read_ecg_bytes(data, filename="rec.zip", max_bytes=10**7)
    assert info.value.field == "ecg"


def test_a_hundred_thousand_seconds_at_one_hz_is_refused_from_the_header(tmp_path: Path) -> None:
    data = _wfdb_zip(tmp_path, fs=100.0, n=1000, header_edit=_record_line("1", "100000"))
    with pytest.raises(InputError, match="sampling rate 1 Hz is outside the 50–20000 Hz"):
        read_ecg_bytes(data, filename="rec.zip", max_bytes=10**7)
    long = _wfdb_zip(tmp_path / "b", fs=100.0, n=1000, header_edit=_record_line("100", "10000000"))
    with pytest.raises(InputError, match="10,000,000 samples per lead"):
        read_ecg_bytes(long, filename="rec.zip", max_bytes=10**7)


def test_a_user_given_rate_is_checked_and_named(tmp_path: Path) -> None:
    csv = "I,II\n" + "\n".join(f"{np.sin(i / 5):.3f},{np.cos(i / 5):.3f}" for i in range(2000))
    with pytest.raises(InputError, match="fs_hz: the fs_hz given: sampling rate 1e\\+09 Hz is outside") as info:
        read_ecg_bytes(csv.encode(), filename="ecg.csv", fs_hz=1e9, max_bytes=10**7)
    assert info.value.field == "fs_hz"


def test_zip_member_with_a_bad_crc_is_an_input_error(tmp_path: Path) -> None:
    write_wfdb(tmp_path, "rec", _signal(), 100.0, STANDARD_LEADS)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # stored: the member's bytes lie in the archive as is
        zf.write(tmp_path / "rec.hea", "rec.hea")
        zf.write(tmp_path / "rec.dat", "rec.dat")
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("rec.dat")
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    data[info.header_offset + 30 + name_len + extra_len + 100] ^= 0xFF  # one sample byte: the CRC no longer matches
    with pytest.raises(InputError, match="member 'rec.dat' is damaged: Bad CRC-32") as err:
        read_ecg_bytes(bytes(data), filename="rec.zip", max_bytes=10**7)
    assert err.value.field == "ecg"


def test_zip_that_inflates_beyond_the_limit_is_refused_before_inflating() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rec.hea", "rec 12 500 5000\n")
        zf.writestr("rec.dat", b"\0" * (MAX_DECOMPRESSED_BYTES + 1))
    with pytest.raises(InputError, match=f"inflates to {MAX_DECOMPRESSED_BYTES + 1 + 16:,} bytes"):
        read_ecg_bytes(buf.getvalue(), filename="rec.zip", max_bytes=10**8)


def test_npz_that_inflates_beyond_the_limit_is_refused() -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, signal=np.zeros((12, MAX_DECOMPRESSED_BYTES // 96 + 1)), fs_hz=np.array(500.0))
    with pytest.raises(InputError, match=".npz inflates to"):
        read_ecg_bytes(buf.getvalue(), filename="ecg.npz", max_bytes=10**8)


def test_missing_dat_message_shows_no_server_path(tmp_path: Path) -> None:
    data = _wfdb_zip(tmp_path, drop_dat=True)
    with pytest.raises(InputError) as info:
        read_ecg_bytes(data, filename="rec.zip", max_bytes=10**7)
    message = str(info.value)
    assert "rec.dat" in message and "/tmp" not in message and "vitalens-ecg" not in message


def test_utf16_xml_is_sniffed_and_its_entities_refused() -> None:
    plain = '<?xml version="1.0" encoding="UTF-16"?>\n<RestingECG><PatientDemographics/></RestingECG>'
    assert sniff_xml_kind(plain.encode("utf-16")) == "muse"
    assert sniff_xml_kind(plain.encode("utf-16-be")) == "muse"  # no byte-order mark
    laughs = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE RestingECG [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<RestingECG>&b;</RestingECG>'
    )
    with pytest.raises(InputError, match="GE MUSE XML declares entities or external references") as info:
        read_ecg_bytes(laughs.encode("utf-16"), filename="muse.xml", max_bytes=10**7)
    assert info.value.field == "ecg"
