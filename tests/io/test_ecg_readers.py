"""ECG readers: every real file in shared/data/ecg/formats loads as mV with standard leads; CSV/NumPy round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.errors import InputError, UnknownNameError, UnsupportedMediaError
from vitalens.io.ecg import (
    STANDARD_LEADS,
    ECGRecord,
    UnknownECGFormatError,
    detect_ecg_format,
    normalise_lead_name,
    read_ecg,
    resample,
    validate_ecg,
)

# (relative path, format, leads in the file, fs_hz, n_samples)
REAL_FILES = [
    ("dicom/waveform_ecg.dcm", "dicom", 12, 1000.0, 10_000),
    ("wfdb_ptbdb/s0010_re.hea", "wfdb", 12, 1000.0, 38_400),  # 15 leads: Frank vx/vy/vz dropped
    *[
        (f"cinc2021_wfdb_mat/{n}.hea", "wfdb", 12, 500.0, 5000)
        for n in ("HR06000", "HR06001", "E07500", "E07501", "E07502", "JS20000", "JS20001", "JS20002")
    ],
    ("cpsc2018_mat/A1980.mat", "mat", 12, 500.0, 5000),
    ("hl7_aecg/Example_aECG.xml", "aecg", 12, 500.0, 5000),
    ("ge_muse_xml/braveheart_example1.xml", "muse", 8, 500.0, 5000),
    ("ge_muse_xml/braveheart_example2.xml", "muse", 8, 500.0, 5000),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("rel", "fmt", "n_leads", "fs_hz", "n_samples"), REAL_FILES, ids=[r[0] for r in REAL_FILES])
def test_every_real_file_loads_in_mv_with_standard_leads(rel, fmt, n_leads, fs_hz, n_samples):
    path = shared_data_path("ecg", "formats", *rel.split("/"))
    assert detect_ecg_format(path) == fmt
    record = read_ecg(path)
    assert record.source_format == fmt
    assert record.signal.dtype == np.float32
    assert record.signal.shape == (n_leads, n_samples)
    assert record.fs_hz == fs_hz
    assert set(record.leads) <= set(STANDARD_LEADS)
    std = record.to_standard12()
    assert std.leads == STANDARD_LEADS
    validate_ecg(std)  # finite, no flat lead, plausible mV amplitude
    p99 = float(np.percentile(np.abs(std.signal - np.median(std.signal, axis=1, keepdims=True)), 99))
    assert 0.1 < p99 < 5.0, f"99th percentile amplitude {p99} mV is not a surface ECG in mV"


@pytest.mark.realdata
def test_ptb_frank_leads_dropped_and_header_comments_parsed():
    record = read_ecg(shared_data_path("ecg", "formats", "wfdb_ptbdb", "s0010_re.hea"))
    assert record.meta["dropped_leads"] == ["vx", "vy", "vz"]
    assert record.meta["age_years"] == 81.0 and record.meta["sex"] == "female"


@pytest.mark.realdata
def test_muse_keeps_device_measurements_and_derives_limb_leads():
    record = read_ecg(shared_data_path("ecg", "formats", "ge_muse_xml", "braveheart_example1.xml"))
    dev = record.meta["device_measurements"]
    assert (dev["HR_bpm"], dev["PR_ms"], dev["QRS_ms"], dev["QT_ms"], dev["QTc_ms"]) == (48, 138, 96, 452, 403)
    std = record.to_standard12()
    assert std.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    i, ii = std.lead("I").astype(np.float64), std.lead("II").astype(np.float64)
    np.testing.assert_allclose(std.lead("III"), ii - i, atol=1e-5)
    np.testing.assert_allclose(std.lead("aVR"), -(i + ii) / 2, atol=1e-5)


@pytest.mark.realdata
def test_aecg_device_measurements_and_same_signal_as_dicom_units():
    record = read_ecg(shared_data_path("ecg", "formats", "hl7_aecg", "Example_aECG.xml"))
    dev = record.meta["device_measurements"]
    assert (dev["PR_ms"], dev["QRS_ms"], dev["QT_ms"], dev["QTc_ms"], dev["QRS_axis_deg"]) == (148, 120, 420, 443, -61)
    # first digits of lead I are -2 × 2.5 µV = -0.005 mV
    assert record.lead("I")[0] == pytest.approx(-0.005)


@pytest.mark.realdata
def test_dicom_keeps_the_carts_scp_ecg_measurements():
    record = read_ecg(shared_data_path("ecg", "formats", "dicom", "waveform_ecg.dcm"))
    dev = record.meta["device_measurements"]
    # Mortara ELI 250 global measurements in WaveformAnnotationSequence; its PP interval of 0 ms is not a measurement
    assert dev == {
        "RR_ms": 982.0,
        "PR_ms": 161.0,
        "QRS_ms": 75.0,
        "QT_ms": 368.0,
        "QTc_ms": 370.0,
        "P_axis_deg": 74.0,
        "QRS_axis_deg": 52.0,
        "T_axis_deg": 57.0,
    }


def test_dicom_measurements_in_seconds_are_converted_and_unknown_codes_ignored():
    from pydicom.dataset import Dataset

    from vitalens.io.ecg._dicom import _device_measurements

    def item(code: str, meaning: str, value: str, unit: str | None) -> Dataset:
        ann, name = Dataset(), Dataset()
        name.CodeValue, name.CodeMeaning = code, meaning
        ann.ConceptNameCodeSequence = [name]
        ann.NumericValue = value
        if unit is not None:
            u = Dataset()
            u.CodeValue = unit
            ann.MeasurementUnitsCodeSequence = [u]
        return ann

    ds = Dataset()
    ds.WaveformAnnotationSequence = [
        item("X-1", "QT Interval", "0.404", "s"),  # found by its meaning, seconds → ms
        item("5.13.5-7", "PR Interval", "150", None),  # an interval without a unit is not trusted
        item("9.9.9", "Something else", "12", "ms"),
        item("5.10.3-13", "QRS Axis", "-30", "deg"),
    ]
    assert _device_measurements(ds) == {"QT_ms": pytest.approx(404.0), "QRS_axis_deg": -30.0}


@pytest.mark.realdata
def test_ptbxl_100hz_and_challenge_500hz_copy_agree_after_resampling():
    low = read_ecg(shared_data_path("ecg", "ptb-xl", "records100", "06000", "06000_lr.hea"))
    high = read_ecg(shared_data_path("ecg", "formats", "cinc2021_wfdb_mat", "HR06000.hea"))
    down = resample(high, 100.0)
    assert down.signal.shape == low.signal.shape == (12, 1000)
    r = np.corrcoef(down.lead("II"), low.lead("II"))[0, 1]
    assert r > 0.95


def _synthetic(fs_hz: float = 500.0, seconds: float = 10.0) -> ECGRecord:
    import neurokit2 as nk

    base = nk.ecg_simulate(duration=seconds, sampling_rate=int(fs_hz), heart_rate=60, random_state=3)
    gains = np.linspace(0.5, 1.2, 12)[:, None]
    return ECGRecord(signal=(gains * base[None, :]).astype(np.float32), fs_hz=fs_hz, leads=STANDARD_LEADS)


def test_csv_round_trip_with_fs_argument_and_time_column(tmp_path: Path):
    rec = _synthetic()
    plain = tmp_path / "ecg.csv"
    np.savetxt(plain, rec.signal.T, delimiter=",", header=",".join(STANDARD_LEADS), comments="", fmt="%.6f")
    back = read_ecg(plain, fs_hz=500)
    assert back.leads == STANDARD_LEADS and back.fs_hz == 500.0
    np.testing.assert_allclose(back.signal, rec.signal, atol=1e-6)

    timed = tmp_path / "timed.csv"
    t = np.arange(rec.n_samples) / rec.fs_hz
    np.savetxt(
        timed,
        np.column_stack([t, rec.signal.T * 1000]),
        delimiter=",",
        header="time," + ",".join(f"{ld} (uV)" for ld in STANDARD_LEADS),
        comments="",
        fmt="%.6f",
    )
    back = read_ecg(timed)
    assert back.fs_hz == 500.0
    np.testing.assert_allclose(back.signal, rec.signal, atol=1e-5)


def test_numpy_round_trips(tmp_path: Path):
    rec = _synthetic()
    npy = tmp_path / "ecg.npy"
    np.save(npy, rec.signal.T)  # (samples, leads) is accepted too
    back = read_ecg(npy, fs_hz=500)
    np.testing.assert_array_equal(back.signal, rec.signal)
    npz = tmp_path / "ecg.npz"
    order = ("V1", "I", "II", "III", "aVR", "aVL", "aVF", "V2", "V3", "V4", "V5", "V6")
    idx = [STANDARD_LEADS.index(ld) for ld in order]
    np.savez(npz, signal=rec.signal[idx] * 1000.0, fs_hz=500.0, leads=np.array(order), units="uV")
    back = read_ecg(npz)
    assert back.leads == order and back.fs_hz == 500.0
    np.testing.assert_allclose(back.to_standard12().signal, rec.signal, rtol=1e-5, atol=1e-6)


def test_resample_exact_lengths():
    rec = _synthetic(500.0, 10.0)
    assert resample(rec, 100).signal.shape == (12, 1000)
    assert resample(rec, 250).n_samples == 2500
    assert resample(resample(rec, 100), 500).n_samples == 5000
    odd = ECGRecord(rec.signal[:, :4999], 500.0, STANDARD_LEADS)
    assert resample(odd, 100).n_samples == 1000  # ceil(4999 / 5)
    assert resample(rec, 500) is rec
    assert resample(rec, 100).meta["resampled_from_hz"] == 500.0


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("I", "I"),
        ("DI", "I"),
        ("Lead II", "II"),
        ("Lead I (Einthoven)", "I"),
        ("iii", "III"),
        ("avr", "aVR"),
        ("AVL", "aVL"),
        ("aVF", "aVF"),
        ("MDC_ECG_LEAD_AVF", "aVF"),
        ("V1 ", "V1"),
        ("v6", "V6"),
        ("C3", "V3"),
    ],
)
def test_normalise_lead_name(label, expected):
    assert normalise_lead_name(label) == expected


def test_unknown_lead_name_is_named():
    with pytest.raises(InputError, match="'V7'"):
        normalise_lead_name("V7")


def test_unknown_format_lists_formats(tmp_path: Path):
    weird = tmp_path / "ecg.edf"
    weird.write_bytes(b"0       patient")
    # content no reader knows: an unsupported medium (HTTP 415) naming the upload and listing the formats
    with pytest.raises(UnsupportedMediaError, match="accepted: wfdb, dicom, aecg, muse, csv") as media:
        read_ecg(weird)
    assert media.value.field == "ecg"
    # a format *name* nobody handles: an unknown name (HTTP 422) naming the field and the closest match
    with pytest.raises(UnknownECGFormatError, match="Did you mean 'dicom'") as info:
        read_ecg(weird, format="dicm")
    assert isinstance(info.value, InputError) and isinstance(info.value, UnknownNameError)
    assert info.value.field == "format"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("rel", "upload_name", "fmt"),
    [
        ("ge_muse_xml/braveheart_example2.xml", "muse export.xml", "muse"),
        ("hl7_aecg/Example_aECG.xml", "Example aECG.xml", "aecg"),
        ("dicom/waveform_ecg.dcm", "ECG0001", "dicom"),  # PACS files often have no suffix: sniffed by DICM magic
        ("cpsc2018_mat/A1980.mat", "A1980.mat", "mat"),
    ],
)
def test_real_files_upload_as_bytes(rel, upload_name, fmt):
    from vitalens.io.ecg import read_ecg_bytes

    data = shared_data_path("ecg", "formats", *rel.split("/")).read_bytes()
    record = read_ecg_bytes(data, filename=upload_name)
    assert record.source_format == fmt
    validate_ecg(record.to_standard12())
