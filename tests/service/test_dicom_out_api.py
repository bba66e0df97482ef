"""DICOM out through the API: SR before and after sign-off, Encapsulated PDF only when signed (409 before), the
received study's UID kept, cross-site 404, every read audited."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from tests.service.test_analyses_api import _add_fundus, _events, _run
from vitalens.synth.dicom import dicom_bytes, fundus_dataset

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fake_analyzers")]


def test_sr_and_encapsulated_pdf(client, app, db, world) -> None:
    h = world.a.headers["clinician"]
    study = world.a.study
    _add_fundus(app, db, study)
    assert _run(client, app, study.id, h, ["test.echo"])["status"] == "COMPLETE"
    draft = client.get(f"/api/v1/studies/{study.id}/report.sr.dcm", headers=h)
    assert draft.status_code == 200 and draft.headers["content-type"] == "application/dicom"
    sr = pydicom.dcmread(io.BytesIO(draft.content))
    assert sr.CompletionFlag == "PARTIAL" and sr.PatientID == world.a.patient.pseudonym
    early = client.get(f"/api/v1/studies/{study.id}/report.dcm", headers=h)
    assert early.status_code == 409 and "not signed off" in early.json()["detail"]

    r = client.post(
        f"/api/v1/studies/{study.id}/signoff", json={"note": "ok", "acknowledge_unreviewed": True}, headers=h
    )
    assert r.status_code == 201, r.text
    signed_pdf = client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content
    epdf = pydicom.dcmread(io.BytesIO(client.get(f"/api/v1/studies/{study.id}/report.dcm", headers=h).content))
    assert epdf.EncapsulatedDocument[: epdf.EncapsulatedDocumentLength] == signed_pdf
    final = pydicom.dcmread(io.BytesIO(client.get(f"/api/v1/studies/{study.id}/report.sr.dcm", headers=h).content))
    assert final.CompletionFlag == "COMPLETE" and final.VerificationFlag == "VERIFIED"
    assert final.VerifyingObserverSequence[0].VerifyingOrganization == world.a.site.name
    assert epdf.StudyInstanceUID == final.StudyInstanceUID
    assert _events(db, "report.read", study.id) >= 3

    other = world.b.headers["clinician"]
    assert client.get(f"/api/v1/studies/{study.id}/report.sr.dcm", headers=other).status_code == 404
    assert client.get(f"/api/v1/studies/{study.id}/report.dcm", headers=other).status_code == 404


def test_sr_of_a_dicom_study_keeps_its_study_uid(client, app, db, world) -> None:
    h = world.a.headers["clinician"]
    image = fundus_dataset(np.full((96, 96, 3), 180, np.uint8), eye="left")
    files = {"fundus_left": ("l.dcm", dicom_bytes(image), "application/dicom")}
    resp = client.post(
        "/api/v1/studies", data={"patient_id": world.a.patient.id, "study_date": "2024-03-14"}, files=files, headers=h
    )
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    assert _run(client, app, sid, h, ["test.echo"])["status"] == "COMPLETE"
    sr = pydicom.dcmread(io.BytesIO(client.get(f"/api/v1/studies/{sid}/report.sr.dcm", headers=h).content))
    assert sr.StudyInstanceUID == image.StudyInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert evidence.ReferencedSOPInstanceUID == image.SOPInstanceUID
