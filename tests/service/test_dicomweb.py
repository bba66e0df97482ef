"""DICOMweb in: a PACS pushes studies with STOW-RS (dicomweb-client over HTTP on loopback), instances land in the
slots their tags name, the patient maps to one pseudonymous patient of the site, repeats are not stored twice,
partial and total failures answer 202/409, QIDO lists only the site's studies, every step is audited."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils.s3 import free_port
from vitalens.service.ops.dicomweb import pacs_pseudonym
from vitalens.store.models import AuditEvent, Patient, Study
from vitalens.synth.dicom import SynthDicomPatient, fundus_dataset, radiograph_dataset

pytestmark = pytest.mark.integration

dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client (dev dependency) is not installed")


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """The app on a real loopback port (the DICOMweb client speaks HTTP with requests)."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/dicomweb"
    srv.should_exit = True
    thread.join(timeout=10)


def _client(url: str, headers: dict[str, str]):
    return dicomweb_client.DICOMwebClient(url=url, headers=headers)


PACS_PATIENT = SynthDicomPatient(
    patient_id="MRN-4711", issuer="PACS-A", name="ROE^RICHARD", birth_date=date(1959, 5, 1)
)


def _study(uid: str) -> list:
    patient = SynthDicomPatient(**{**PACS_PATIENT.__dict__, "study_uid": uid})
    img = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (144, 1, 3))
    return [fundus_dataset(img, eye="left", patient=patient), fundus_dataset(img, eye="right", patient=patient)]


def _cxr(uid: str):
    patient = SynthDicomPatient(**{**PACS_PATIENT.__dict__, "study_uid": uid})
    return radiograph_dataset(
        np.tile(np.arange(160, dtype=np.uint16) * 24, (144, 1)), window=(2000, 4000), patient=patient
    )


def test_stow_maps_slots_patient_and_study_and_is_idempotent(
    server: str, app: FastAPI, db: Session, world: World
) -> None:
    client = _client(server, world.a.headers["clinician"])
    fundus = _study("1.2.826.0.1.1")
    response = client.store_instances(datasets=[*fundus, _cxr("1.2.826.0.1.2")])
    assert len(response.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in response
    pseudonym = pacs_pseudonym(app.state.settings, issuer="PACS-A", patient_id="MRN-4711")
    patient = db.scalar(select(Patient).where(Patient.pseudonym == pseudonym))
    assert patient is not None and patient.site_id == world.a.site.id and patient.year_of_birth == 1959
    studies = {s.dicom_study_uid: s for s in db.scalars(select(Study).where(Study.patient_id == patient.id))}
    assert set(studies) == {"1.2.826.0.1.1", "1.2.826.0.1.2"}
    eye_study = studies["1.2.826.0.1.1"]
    assert sorted(i.slot for i in eye_study.inputs) == ["fundus_left", "fundus_right"]
    assert [i.slot for i in studies["1.2.826.0.1.2"].inputs] == ["cxr"]
    assert eye_study.age_years == 64.0  # born 1959-05-01, images of 2024-03-14
    stored = app.state.blobs.get(eye_study.inputs[0].blob_key)
    assert b"ROE^RICHARD" not in stored and b"MRN-4711" not in stored, "stored de-identified"

    again = client.store_instances(datasets=fundus)
    assert len(again.ReferencedSOPSequence) == 2
    db.expire_all()
    assert len([i for i in db.get(Study, eye_study.id).inputs if i.deleted_at is None]) == 2, "not stored twice"
    events = db.scalars(select(AuditEvent.action).where(AuditEvent.record_id == eye_study.id)).all()
    assert "dicomweb.store" in events and "study.create" in events

    found = client.search_for_studies()
    uids = {s["0020000D"]["Value"][0] for s in found}
    assert {"1.2.826.0.1.1", "1.2.826.0.1.2"} <= uids
    row = next(s for s in found if s["0020000D"]["Value"][0] == "1.2.826.0.1.1")
    assert row["00100020"]["Value"] == [pseudonym] and row["00201208"]["Value"] == [2]
    instances = client.search_for_instances(study_instance_uid="1.2.826.0.1.1")
    assert {i["00080018"]["Value"][0] for i in instances} == {d.SOPInstanceUID for d in fundus}

    other = _client(server, world.b.headers["clinician"])
    assert not {s["0020000D"]["Value"][0] for s in other.search_for_studies()} & uids, "other sites see nothing"
    with pytest.raises(Exception, match="404"):
        other.search_for_instances(study_instance_uid="1.2.826.0.1.1")


def test_partial_and_total_failures(server: str, world: World) -> None:
    import requests

    client = _client(server, world.a.headers["clinician"])
    good = _study("1.2.826.0.2.1")[0]
    mismatch = _study("1.2.826.0.2.1")[1]
    mismatch.SOPClassUID = mismatch.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    mismatch.Modality = "SR"  # a structured report: no input slot takes it
    del mismatch.PixelData
    response = client.store_instances(datasets=[good, mismatch])  # 202: one stored, one failed
    assert len(response.ReferencedSOPSequence) == 1
    failed = response.FailedSOPSequence[0]
    assert failed.ReferencedSOPInstanceUID == mismatch.SOPInstanceUID and failed.FailureReason == 0x0122
    with pytest.raises(requests.exceptions.HTTPError, match="409"):
        client.store_instances(datasets=[mismatch])
    reviewer = _client(server, world.a.headers["reviewer"])
    with pytest.raises(requests.exceptions.HTTPError, match="403"):
        reviewer.store_instances(datasets=[good])


def test_stow_refuses_other_content_types(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    resp = client.post("/dicomweb/studies", content=b"x", headers={**h, "Content-Type": "application/json"})
    assert resp.status_code == 415 and "multipart/related" in resp.json()["detail"]
    body = b"--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--b--\r\n"
    resp = client.post(
        "/dicomweb/studies",
        content=body,
        headers={**h, "Content-Type": 'multipart/related; type="image/png"; boundary=b'},
    )
    assert resp.status_code == 415 and "only application/dicom" in resp.json()["detail"]
    assert (
        client.post("/dicomweb/studies", content=b"", headers={"Content-Type": "multipart/related"}).status_code == 401
    )


@pytest.mark.parametrize("path", ["/dicomweb/studies", "/dicomweb/studies/1.2.3"])
def test_stow_checks_the_permission_before_the_body(client: TestClient, world: World, path: str) -> None:
    """A reviewer may not store: 403 whatever the body, never a 400/415 that reads the body first."""
    headers = {**world.a.headers["reviewer"], "Content-Type": "application/json"}
    resp = client.post(path, content=b"not multipart", headers=headers)
    assert resp.status_code == 403, resp.text
