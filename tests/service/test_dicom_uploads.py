"""DICOM uploads through the clinical API: eye and age from the tags, stored de-identified, wrong eye refused."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pydicom
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from vitalens.store.models import Input, Study
from vitalens.synth.dicom import SynthDicomPatient, dicom_bytes, fundus_dataset, oct_dataset

PACS_PATIENT = SynthDicomPatient(patient_id="MRN-778812", name="DOE^JANE", birth_date=date(1958, 7, 2))


def _fundus(eye: str, syntax: str = "jpeg2000") -> bytes:
    yy, xx = np.mgrid[0:136, 0:160]
    img = np.stack([xx * 2 % 256, yy * 2 % 256, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    ds = fundus_dataset(img, eye=eye, patient=PACS_PATIENT, syntax=syntax)  # type: ignore[arg-type]
    ds.PatientAddress = "1 Harbour Road"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    return dicom_bytes(ds)


def _post(client: TestClient, headers: dict, patient_id: str, files: dict, **data: str):
    form = {"patient_id": patient_id, "study_date": "2024-03-14", **data}
    return client.post("/api/v1/studies", data=form, files=files, headers=headers)


def test_dicom_fundus_pair_gives_eye_age_and_is_stored_deidentified(
    client: TestClient, db: Session, world: World
) -> None:
    left, right = _fundus("left"), _fundus("right", "jpeg-baseline")
    resp = _post(
        client,
        world.a.headers["clinician"],
        world.a.patient.id,
        {"fundus_left": ("l.dcm", left, "application/dicom"), "fundus_right": ("r.dcm", right, "application/dicom")},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    # Born 1958-07-02, images of 2024-03-14: 65 completed years, taken from the tags as no age was typed.
    assert body["age_years"] == 65.0
    by_slot = {i["slot"]: i for i in body["inputs"]}
    assert by_slot["fundus_left"]["media_type"] == "application/dicom"
    assert by_slot["fundus_left"]["meta"]["dicom"]["laterality"] == "left"
    assert by_slot["fundus_right"]["meta"]["dicom"]["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.50"
    assert (by_slot["fundus_left"]["width"], by_slot["fundus_left"]["height"]) == (160, 136)
    row = db.get(Input, by_slot["fundus_left"]["id"])
    assert row is not None
    stored = client.app.state.blobs.get(row.blob_key)
    for secret in (b"DOE^JANE", b"MRN-778812", b"Harbour", b"HOUSE^GREGORY", b"19580702"):
        assert secret not in stored, f"{secret!r} must not reach the blob store"
    ds = pydicom.dcmread(io.BytesIO(stored))
    assert ds.PatientID == world.a.patient.pseudonym and ds.PatientIdentityRemoved == "YES"
    assert ds.PatientAge == "065Y" and ds.ImageLaterality == "L"
    original = pydicom.dcmread(io.BytesIO(left))
    assert ds.SOPInstanceUID == original.SOPInstanceUID and ds.PixelData == original.PixelData
    assert row.content_sha256 != "" and row.size_bytes == len(stored)


def test_typed_age_wins_over_the_tags(client: TestClient, world: World) -> None:
    files = {"fundus_left": ("l.dcm", _fundus("left"), "application/dicom")}
    resp = _post(client, world.a.headers["clinician"], world.a.patient.id, files, age_years="61.5")
    assert resp.status_code == 201, resp.text
    assert resp.json()["age_years"] == 61.5


def test_right_eye_file_in_left_slot_is_refused_and_nothing_stored(
    client: TestClient, db: Session, world: World
) -> None:
    before = db.scalar(select(Study.id).where(Study.patient_id == world.a.patient.id).order_by(Study.created_at))
    files = {"fundus_left": ("r.dcm", _fundus("right"), "application/dicom")}
    resp = _post(client, world.a.headers["clinician"], world.a.patient.id, files)
    assert resp.status_code == 422, resp.text
    assert "fundus_left" in resp.text and "right eye" in resp.text
    studies = db.scalars(select(Study.id).where(Study.patient_id == world.a.patient.id)).all()
    assert list(studies) == [before]


def test_oct_volume_in_a_fundus_slot_is_415(client: TestClient, world: World) -> None:
    data = dicom_bytes(oct_dataset(np.zeros((3, 128, 160), np.uint8), eye="left"))
    resp = _post(client, world.a.headers["clinician"], world.a.patient.id, {"fundus_left": ("o.dcm", data)})
    assert resp.status_code == 415, resp.text
    assert "OCT B-scan" in resp.text and "fundus photograph" in resp.text
    ok = _post(client, world.a.headers["clinician"], world.a.patient.id, {"oct": ("o.dcm", data)})
    assert ok.status_code == 201, ok.text
    assert ok.json()["inputs"][0]["meta"]["dicom"]["n_frames"] == 3
