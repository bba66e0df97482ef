"""ecg.intervals on simulated and real ECGs: plausible intervals, None when not measurable, no model needed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.analyzers import create_analyzer, list_analyzers
from vitalens.analyzers.ecg_intervals import measure_ecg_intervals
from vitalens.domain import Sex, StudyInputs
from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, ECGRecord, read_ecg


@pytest.fixture(scope="module")
def simulated_60bpm() -> ECGRecord:
    import neurokit2 as nk

    frame = nk.ecg_simulate(
        duration=10,
        sampling_rate=500,
        heart_rate=60,
        heart_rate_std=0.5,
        method="multileads",
        random_state=7,
        noise=0.005,
    )
    return ECGRecord(signal=frame[list(STANDARD_LEADS)].to_numpy().T, fs_hz=500.0, leads=STANDARD_LEADS)


@pytest.fixture(scope="module")
def result(simulated_60bpm):
    return create_analyzer("ecg.intervals")(StudyInputs(ecg=simulated_60bpm, sex=Sex.FEMALE))


def test_registered_without_artifact():
    assert "ecg.intervals" in list_analyzers("ecg.*")


def test_simulated_60_bpm(result):
    values = result.extras["values"]
    assert values["HR_bpm"] == pytest.approx(60.0, abs=2.0)
    assert values["RR_ms"] == pytest.approx(1000.0, abs=35.0)
    assert 100 <= values["PR_ms"] <= 250
    assert 60 <= values["QRS_ms"] <= 180  # neurokit2's simulated QRS is wide (~130 ms)
    assert 300 <= values["QT_ms"] <= 500
    # at ~60 bpm both corrections stay close to QT
    assert values["QTc_bazett_ms"] == pytest.approx(values["QT_ms"], rel=0.05)
    assert result.extras["rhythm"]["regularity"] == "regular"
    assert len(result.extras["beats"]) >= 8


def test_result_shape_and_provenance(result):
    names = [m.name for m in result.measurements]
    assert names[:8] == [
        "Heart rate",
        "RR interval",
        "PR interval",
        "QRS duration",
        "QT interval",
        "QTc (Bazett)",
        "QTc (Fridericia)",
        "Frontal QRS axis",
    ]
    assert names[8].startswith("Rhythm regularity")
    qtc = result.measurements[5]
    assert (qtc.reference_low, qtc.reference_high) == (340.0, 460.0)  # female limit chosen from the study's sex
    assert qtc.value is not None and 340.0 <= qtc.value <= 460.0 and qtc.flag == "normal"
    # every flag is the one its value and reference range give (simulated: PR ~221 ms and QRS ~128 ms are long)
    for m in result.measurements:
        if m.value is None or (m.reference_low is None and m.reference_high is None):
            continue
        low, high = m.reference_low, m.reference_high
        expected = (
            "low" if low is not None and m.value < low else "high" if high is not None and m.value > high else "normal"
        )
        assert m.flag == expected, (m.name, m.value, low, high, m.flag)
    flags = {m.name: m.flag for m in result.measurements}
    # the simulator's PR is long; its QRS is wide by CWT (~127 ms) but not by the carts' global QRS from the
    # spatial velocity (~92 ms), which ecg.intervals measures, so only PR is flagged
    assert (flags["PR interval"], flags["QRS duration"], flags["Heart rate"]) == ("high", "normal", "normal")
    assert result.model.name == "neurokit2 delineation" and result.model.trained_on == "not a learned model"
    assert result.demonstration is False
    assert "not a diagnosis" in result.explanation


def test_unmeasurable_values_are_none_not_invented():
    t = np.arange(3 * 500) / 500.0
    sine = 0.5 * np.sin(2 * np.pi * 0.3 * t)  # no beats at all
    rec = ECGRecord(np.tile(sine, (12, 1)), 500.0, STANDARD_LEADS)
    m = measure_ecg_intervals(rec)
    assert m.values["PR_ms"] is None and m.values["QT_ms"] is None and m.values["QTc_bazett_ms"] is None
    assert any("beats detected" in w for w in m.warnings)


def test_missing_lead_ii_and_flat_lead_ii(simulated_60bpm):
    with pytest.raises(InputError, match="needs lead II"):
        measure_ecg_intervals(simulated_60bpm.select(["V1", "V2", "V3", "V4", "V5", "V6"]))
    sig = simulated_60bpm.signal.copy()
    sig[1] = 0.0
    with pytest.raises(InputError, match="II.*flat line"):
        measure_ecg_intervals(ECGRecord(sig, 500.0, STANDARD_LEADS))


def test_measuring_imports_no_torch():
    import subprocess

    code = (
        "import sys, numpy as np; from vitalens.analyzers.ecg_intervals import measure_ecg_intervals;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.realdata
def test_muse_example_close_to_device():
    record = read_ecg(shared_data_path("ecg", "formats", "ge_muse_xml", "braveheart_example1.xml"))
    m = measure_ecg_intervals(record)
    device = record.meta["device_measurements"]
    assert m.values["HR_bpm"] == pytest.approx(device["HR_bpm"], abs=2)
    for key in ("PR_ms", "QRS_ms", "QT_ms"):
        assert m.values[key] == pytest.approx(device[key], abs=15), key
    assert m.values["QRS_axis_deg"] == pytest.approx(device["QRS_axis_deg"], abs=15)
    assert m.axis_category == "normal"


@pytest.mark.realdata
def test_ptbxl_100hz_is_resampled_and_matches_its_500hz_copy():
    low = measure_ecg_intervals(read_ecg(shared_data_path("ecg", "ptb-xl", "records100", "06000", "06000_lr.hea")))
    high = measure_ecg_intervals(read_ecg(shared_data_path("ecg", "formats", "cinc2021_wfdb_mat", "HR06000.hea")))
    assert low.analysis_fs_hz == 500.0 and any("resampled 100 Hz" in w for w in low.warnings)
    for key in ("HR_bpm", "PR_ms", "QRS_ms", "QT_ms"):
        assert low.values[key] == pytest.approx(high.values[key], abs=10), key
