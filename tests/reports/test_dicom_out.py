"""Results out as DICOM: the SR and the Encapsulated PDF read back with pydicom and highdicom (and pass dciodvfy
with no error where dicom3tools is installed)."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from tests.reports.test_fhir import _report
from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.reports import ReportSignoff
from vitalens.reports.dicom import (
    ENCAPSULATED_PDF_SOP_CLASS,
    build_encapsulated_pdf,
    build_structured_report,
    study_instance_uid,
)
from vitalens.synth.dicom import dicom_bytes, fundus_dataset

SIGNED = ReportSignoff(clinician="Ann Smith", signed_at=datetime(2024, 3, 15, 9, 30, tzinfo=UTC), note="Refer")


def _roundtrip(ds) -> pydicom.Dataset:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def _dciodvfy_errors(ds, tmp_path: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        return []
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def _items(sr) -> list:
    """Every content item of the SR tree, depth first."""
    out, stack = [], list(sr.ContentSequence)
    while stack:
        item = stack.pop(0)
        out.append(item)
        stack[:0] = list(item.get("ContentSequence", []))
    return out


def test_signed_sr_names_algorithm_version_findings_and_measurements(tmp_path: Path) -> None:
    sr = _roundtrip(build_structured_report(_report(SIGNED), site="North Clinic"))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "VERIFIED"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Ann^Smith"
    assert sr.PatientID == "P-7F3A" and sr.StudyInstanceUID == study_instance_uid("st-9")
    parsed = hd.sr.ComprehensiveSR.from_dataset(sr)  # highdicom reads it back as the IOD it claims to be
    assert parsed.CompletionFlag == "COMPLETE" and len(parsed.ContentSequence) >= 3
    items = _items(sr)
    texts = {str(i.get("TextValue", "")) for i in items}
    assert any(DECISION_SUPPORT_NOTICE in t and t.startswith("Refer") for t in texts)
    # Algorithm identification (TID 4019): name and version of each model.
    names = {(i.ConceptNameCodeSequence[0].CodeValue, str(i.get("TextValue", ""))) for i in items if "TextValue" in i}
    assert ("111001", "fundus-odir") in names and ("111003", "0.3.1") in names
    # Findings: SNOMED-coded where the analyzer coded them, Present/Absent as the clinician left them.
    evaluations = {
        (i.ConceptNameCodeSequence[0].CodingSchemeDesignator, i.ConceptNameCodeSequence[0].CodeValue):
            i.ConceptCodeSequence[0].CodeValue
        for i in items if i.ValueType == "CODE" and "ConceptCodeSequence" in i
    }  # fmt: skip
    assert evaluations[("SCT", "4855003")] == "52101004"  # diabetic retinopathy: Present
    assert evaluations[("99VTL", "G")] == "52101004"  # glaucoma corrected to positive by the clinician
    assert evaluations[("99VTL", "H")] == "272519000"  # absent
    nums = {
        (i.ConceptNameCodeSequence[0].CodingSchemeDesignator, i.ConceptNameCodeSequence[0].CodeValue): (
            float(i.MeasuredValueSequence[0].NumericValue),
            i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue,
        )
        for i in items if i.ValueType == "NUM"
    }  # fmt: skip
    assert nums[("99VTL", "P-D")] == (0.83, "1")
    assert nums[("LN", "8636-3")] == (452.0, "ms") and nums[("LN", "8867-4")] == (72.0, "/min")
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99VTL"
    assert _dciodvfy_errors(sr, tmp_path) == []


def test_unsigned_sr_is_partial_and_unverified(tmp_path: Path) -> None:
    sr = _roundtrip(build_structured_report(_report()))
    assert sr.CompletionFlag == "PARTIAL" and sr.VerificationFlag == "UNVERIFIED"
    assert "VerifyingObserverSequence" not in sr
    assert _dciodvfy_errors(sr, tmp_path) == []


def test_sr_joins_the_received_study_and_references_its_images(tmp_path: Path) -> None:
    image = dicom_bytes(fundus_dataset(np.zeros((80, 80, 3), np.uint8), eye="left"))
    source = pydicom.dcmread(io.BytesIO(image), stop_before_pixels=True)
    sr = _roundtrip(build_structured_report(_report(SIGNED), evidence=[source]))
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    referenced = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert referenced.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert _dciodvfy_errors(sr, tmp_path) == []


def test_encapsulated_pdf_holds_the_signed_bytes(tmp_path: Path) -> None:
    pdf = b"%PDF-1.7 the signed report\n%%EOF"  # odd length: padded in the element, length kept
    ds = _roundtrip(build_encapsulated_pdf(_report(SIGNED), pdf))
    assert ds.SOPClassUID == ENCAPSULATED_PDF_SOP_CLASS and ds.Modality == "DOC"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength] == pdf
    assert ds.PatientID == "P-7F3A" and ds.BurnedInAnnotation == "YES"
    assert ds.ContentDate == "20240315" and ds.ContentTime == "093000"
    assert _dciodvfy_errors(ds, tmp_path) == []
    with pytest.raises(ValueError, match="only a signed report"):
        build_encapsulated_pdf(_report(), pdf)


def test_a_score_is_named_a_score_in_the_sr(tmp_path: Path) -> None:
    from tests.reports.test_fhir import _score_report

    sr = _roundtrip(build_structured_report(_score_report()))
    meanings = {str(i.ConceptNameCodeSequence[0].CodeMeaning) for i in _items(sr) if i.ValueType == "NUM"}
    assert meanings == {"Anomaly score of Abnormal chest radiograph"}
    assert _dciodvfy_errors(sr, tmp_path) == []
