"""FHIR R4 DiagnosticReport: validated by fhir.resources, LOINC/SNOMED/UCUM coded from what the analyzers attach,
device identity, and statuses that follow sign-off and amendment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.analyzers.ecg_intervals import IntervalMeasurements, interval_measurements
from vitalens.domain import Measurement
from vitalens.reports import ReportAnalysis, ReportFinding, ReportSignoff, StudyReport, build_diagnostic_report
from vitalens.reports.fhir import validate_fhir
from vitalens.terminology import LOINC, SNOMED, UCUM, snomed


def _report(signoff: ReportSignoff | None = None) -> StudyReport:
    intervals = IntervalMeasurements(
        values={"HR_bpm": 72.0, "PR_ms": 160.0, "QRS_ms": 96.0, "QT_ms": 400.0, "QTc_bazett_ms": 452.0},
        axis_category=None,
        rhythm={"cv": 0.04, "regularity": "regular", "threshold": "cv < 0.10"},
    )
    return StudyReport(
        study_id="st-9",
        pseudonym="P-7F3A",
        study_date=date(2024, 3, 14),
        analyses=[
            ReportAnalysis(
                analyzer="fundus.odir",
                model_name="fundus-odir",
                model_version="0.3.1",
                demonstration=True,
                trained_on="ODIR-5K (304 patients)",
                findings=[
                    ReportFinding(
                        code="D", name="Diabetic retinopathy", probability=0.83, threshold=0.4, positive=True,
                        review="confirmed", codes=[snomed("4855003", "Diabetic retinopathy")],
                    ),
                    ReportFinding(
                        code="G", name="Glaucoma", probability=0.12, threshold=0.3, positive=False,
                        review="corrected", corrected_positive=True, review_note="cupping",
                    ),
                    ReportFinding(code="H", name="Hypertension", probability=0.2, threshold=0.5, positive=False),
                ],
            ),
            ReportAnalysis(
                analyzer="ecg.intervals",
                model_name=None,
                demonstration=False,
                measurements=interval_measurements(intervals, sex="female"),
            ),
        ],
        signoff=signoff,
    )  # fmt: skip


def _by_code(fhir: dict) -> dict[str, dict]:
    out = {}
    for res in fhir["contained"]:
        if res["resourceType"] == "Observation":
            for c in res["code"].get("coding", []):
                if c["system"] == LOINC:
                    out[c["code"]] = res
    return out


def test_interval_measurements_carry_loinc_and_ucum() -> None:
    fhir = build_diagnostic_report(_report())
    loinc = _by_code(fhir)
    # The EKG panel's LOINC codes: heart rate, PR, QRS, QT, QTc.
    assert {"8867-4", "8625-6", "8633-0", "8634-8", "8636-3"} <= set(loinc)
    hr = loinc["8867-4"]["valueQuantity"]
    assert hr == {"value": 72.0, "unit": "bpm", "system": UCUM, "code": "/min"}
    qtc = loinc["8636-3"]
    assert qtc["valueQuantity"] == {"value": 452.0, "unit": "ms", "system": UCUM, "code": "ms"}
    assert qtc["referenceRange"][0]["high"] == {"value": 460.0, "unit": "ms", "system": UCUM, "code": "ms"}
    assert qtc["interpretation"][0]["coding"][0]["code"] == "N"
    rr_text = [r for r in fhir["contained"] if r.get("code", {}).get("text", "").startswith("Rhythm regularity")]
    assert rr_text and "coding" not in rr_text[0]["code"], "an uncoded measurement keeps its name as text only"


def test_findings_coded_with_snomed_and_the_analyzers_own_system() -> None:
    fhir = build_diagnostic_report(_report())
    obs = {r["id"]: r for r in fhir["contained"] if r["resourceType"] == "Observation"}
    dr = obs["obs-0-D"]
    systems = {c["system"]: c["code"] for c in dr["code"]["coding"]}
    assert systems[SNOMED] == "4855003"
    assert systems["https://vitalens.invalid/fhir/CodeSystem/fundus.odir"] == "D"
    assert dr["valueQuantity"] == {"value": 0.83, "unit": "probability", "system": UCUM, "code": "1"}
    assert dr["interpretation"][0]["coding"][0]["code"] == "POS"
    # The clinician's correction wins over the model's call.
    assert obs["obs-0-G"]["interpretation"][0]["coding"][0]["code"] == "POS"
    assert "corrected by the clinician: cupping" in obs["obs-0-G"]["note"][0]["text"]
    assert [c["system"] for c in obs["obs-0-H"]["code"]["coding"]] == [
        "https://vitalens.invalid/fhir/CodeSystem/fundus.odir"
    ], "no guessed SNOMED code for a label without an exact one"


def test_device_identity_is_referenced_by_each_observation() -> None:
    fhir = build_diagnostic_report(_report())
    devices = {r["id"]: r for r in fhir["contained"] if r["resourceType"] == "Device"}
    fundus = devices["device-0"]
    assert fundus["version"] == [{"value": "0.3.1"}] and fundus["manufacturer"] == "vitalens"
    assert {"name": "fundus-odir", "type": "model-name"} in fundus["deviceName"]
    assert "DEMONSTRATION MODEL" in fundus["note"][0]["text"]
    for res in fhir["contained"]:
        if res["resourceType"] == "Observation":
            assert res["device"]["reference"] in {"#device-0", "#device-1"}
    assert [r["reference"] for r in fhir["result"]] == [
        f"#{r['id']}" for r in fhir["contained"] if r["resourceType"] == "Observation"
    ]


@pytest.mark.parametrize(
    ("signoff", "status"),
    [
        (None, "preliminary"),
        (ReportSignoff(clinician="Dr A", signed_at=datetime(2024, 3, 15, tzinfo=UTC)), "final"),
        (ReportSignoff(clinician="Dr A", signed_at=datetime(2024, 3, 16, tzinfo=UTC), amends="rep-1"), "amended"),
    ],
)
def test_statuses_follow_signoff_and_amendment(signoff: ReportSignoff | None, status: str) -> None:
    fhir = build_diagnostic_report(_report(signoff), pdf=b"%PDF-1.4")
    assert fhir["status"] == status
    assert {r["status"] for r in fhir["contained"] if r["resourceType"] == "Observation"} == {status}
    assert fhir["effectiveDateTime"] == "2024-03-14" and fhir["subject"] == {"display": "P-7F3A"}
    assert DECISION_SUPPORT_NOTICE in fhir["conclusion"]
    assert fhir["presentedForm"][0]["contentType"] == "application/pdf"
    if signoff:
        assert fhir["resultsInterpreter"] == [{"display": "Dr A"}]


def test_invalid_resources_are_refused_by_the_validator() -> None:
    with pytest.raises(ValueError, match="Observation.status 'maybe' is not one of"):
        validate_fhir({"resourceType": "Observation", "status": "maybe", "code": {"text": "x"}})
    with pytest.raises(ValueError, match="code"):
        validate_fhir({"resourceType": "Observation", "status": "final"})
    with pytest.raises(ValueError, match="bogus"):
        validate_fhir({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "bogus": 1})


def test_measurement_model_accepts_codes() -> None:
    m = Measurement(name="x", value=1.0, unit="ms")
    assert m.code is None and m.unit_ucum is None


def _score_report() -> StudyReport:
    """A report of cxr.anomaly, whose number is a distance-based score, not a probability."""
    return StudyReport(
        study_id="st-10",
        pseudonym="P-7F3B",
        study_date=date(2024, 3, 14),
        analyses=[
            ReportAnalysis(
                analyzer="cxr.anomaly",
                model_name="cxr-anomaly-lite0",
                model_version="0.1.0",
                demonstration=True,
                trained_on="COVID-19 Radiography Database (real, 700 images)",
                findings=[
                    ReportFinding(
                        code="anomaly", name="Abnormal chest radiograph", probability=0.8, threshold=0.74,
                        positive=True,
                    )
                ],
            )
        ],
    )  # fmt: skip


def test_a_score_is_exported_as_a_score_not_a_probability() -> None:
    fhir = validate_fhir(build_diagnostic_report(_score_report()))
    obs = next(r for r in fhir["contained"] if r["resourceType"] == "Observation")
    assert obs["valueQuantity"] == {"value": 0.8, "unit": "anomaly score", "system": UCUM, "code": "1"}
