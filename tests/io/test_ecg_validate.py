"""Bad ECG inputs raise InputError(field="ecg") with a message that names the problem."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.io.ecg import STANDARD_LEADS, ECGRecord, read_ecg, read_ecg_bytes, validate_ecg


@pytest.fixture()
def record() -> ECGRecord:
    t = np.arange(5000) / 500.0
    beats = np.exp(-(((t % 1.0) - 0.5) ** 2) / (2 * 0.01**2))  # 1 mV spikes at 60 bpm
    gains = np.linspace(0.4, 1.5, 12)[:, None]
    return ECGRecord(signal=gains * beats[None, :], fs_hz=500.0, leads=STANDARD_LEADS)


def _with(rec: ECGRecord, lead: str, values: np.ndarray | float) -> ECGRecord:
    sig = rec.signal.copy()
    sig[STANDARD_LEADS.index(lead)] = values
    return ECGRecord(sig, rec.fs_hz, rec.leads)


def test_good_record_passes(record):
    validate_ecg(record, fs_hz=500, duration_s=10.0, min_duration_s=8)


def test_missing_lead_is_named(record):
    eight = record.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    with pytest.raises(InputError, match="missing lead.*III, aVR, aVL, aVF") as info:
        validate_ecg(eight)
    assert info.value.field == "ecg"
    no_v3 = record.select([ld for ld in STANDARD_LEADS if ld != "V3"])
    with pytest.raises(InputError, match="missing lead.*V3"):
        no_v3.to_standard12()


def test_nan_is_named_with_its_lead(record):
    sig = record.signal[STANDARD_LEADS.index("aVL")].copy()
    sig[10:13] = np.nan
    with pytest.raises(InputError, match=r"NaN/inf.*aVL \(3 samples\)"):
        validate_ecg(_with(record, "aVL", sig))


def test_flat_line_is_named(record):
    with pytest.raises(InputError, match="V4.*flat line"):
        validate_ecg(_with(record, "V4", 0.2))


@pytest.mark.parametrize(("factor", "unit"), [(1000.0, "in µV"), (0.001, "in V")])
def test_wrong_units_are_named(record, factor, unit):
    scaled = ECGRecord(record.signal * factor, record.fs_hz, record.leads)
    with pytest.raises(InputError, match=f"implausible ECG amplitude.*probably {unit}"):
        validate_ecg(scaled)


def test_wrong_length_and_rate(record):
    with pytest.raises(InputError, match="wrong length: 5000 samples = 10 s at 500 Hz; expected 5 s"):
        validate_ecg(record, duration_s=5.0)
    with pytest.raises(InputError, match="sampled at 500 Hz; expected 100 Hz"):
        validate_ecg(record, fs_hz=100)
    with pytest.raises(InputError, match="lasts 10 s; at least 30 s"):
        validate_ecg(record, min_duration_s=30)


def test_unknown_sampling_rate(record):
    with pytest.raises(InputError, match="unknown sampling rate"):
        validate_ecg(ECGRecord(record.signal, float("nan"), record.leads))


def test_csv_without_sampling_rate_says_so(tmp_path: Path, record):
    path = tmp_path / "ecg.csv"
    np.savetxt(path, record.signal.T, delimiter=",", header=",".join(STANDARD_LEADS), comments="")
    with pytest.raises(InputError, match="unknown sampling rate.*fs_hz"):
        read_ecg(path)


def test_csv_without_header_and_with_unknown_unit(tmp_path: Path, record):
    path = tmp_path / "ecg.csv"
    np.savetxt(path, record.signal.T, delimiter=",")
    with pytest.raises(InputError, match="header row naming the leads"):
        read_ecg(path, fs_hz=500)
    np.savetxt(path, record.signal.T, delimiter=",", header=",".join(STANDARD_LEADS), comments="")
    with pytest.raises(InputError, match="unknown amplitude unit 'furlongs'"):
        read_ecg(path, fs_hz=500, units="furlongs")


def test_npy_without_rate_or_with_wrong_shape(tmp_path: Path, record):
    path = tmp_path / "ecg.npy"
    np.save(path, record.signal)
    with pytest.raises(InputError, match="unknown sampling rate"):
        read_ecg(path)
    np.save(path, record.signal[:5])
    with pytest.raises(InputError, match=r"shape \(5, 5000\); expected 12 leads"):
        read_ecg(path, fs_hz=500)


@pytest.mark.parametrize("name", ["../../etc/passwd.csv", "a/b.csv", "C:\\ecg.csv", "..csv", "x\x00.csv", ""])
def test_path_like_upload_filename_is_refused(name, record):
    with pytest.raises(InputError, match="upload filename"):
        read_ecg_bytes(b"I,II\n1,2\n", filename=name, fs_hz=500)


def test_upload_with_unsupported_suffix_and_size_limit(record):
    with pytest.raises(UnsupportedMediaError, match=r"suffix '\.exe'"):
        read_ecg_bytes(b"MZ", filename="ecg.exe")
    with pytest.raises(InputError, match="limit is 4 bytes"):
        read_ecg_bytes(b"0123456789", filename="ecg.csv", max_bytes=4)


def test_upload_csv_round_trip(record):
    buf = io.StringIO()
    np.savetxt(buf, record.signal.T, delimiter=",", header=",".join(STANDARD_LEADS), comments="")
    back = read_ecg_bytes(buf.getvalue().encode(), filename="my ecg (1).csv", fs_hz=500)
    np.testing.assert_allclose(back.signal, record.signal, atol=1e-6)


@pytest.mark.realdata
def test_upload_wfdb_as_zip_and_refuse_traversal():
    folder = shared_data_path("ecg", "formats", "cinc2021_wfdb_mat")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(folder / "HR06000.hea", "record/HR06000.hea")
        zf.write(folder / "HR06000.mat", "record/HR06000.mat")
    rec = read_ecg_bytes(buf.getvalue(), filename="HR06000.zip")
    assert rec.source_format == "wfdb" and rec.signal.shape == (12, 5000)

    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../evil.hea", "x 1 500 10\n")
    with pytest.raises(InputError, match="outside the archive"):
        read_ecg_bytes(evil.getvalue(), filename="evil.zip")


def test_xml_with_entities_is_refused(tmp_path: Path):
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><RestingECG>&a;</RestingECG>'
    with pytest.raises(InputError, match="declares entities"):
        read_ecg_bytes(bomb, filename="ecg.xml")
