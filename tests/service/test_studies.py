"""Studies API: atomic create with multipart inputs, upload limits and validation (413/415/422), safe file names,
listing and soft delete, downloads as attachments, and audit events for each access."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.store.models import AuditEvent, Input, Study

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def ecg_csv(n: int = 1000, fs: float = 500.0) -> bytes:
    t = np.arange(n) / fs
    rows = ["time_s," + ",".join(LEADS)]
    rows += [f"{x:.4f}," + ",".join(f"{0.5 * np.sin(2 * np.pi * x + i):.3f}" for i in range(12)) for x in t]
    return "\n".join(rows).encode()


def _create(client: TestClient, headers: dict, patient_id: str, files: dict | None = None, **data: str):
    form = {"patient_id": patient_id, "study_date": "2024-03-01", **data}
    return client.post("/api/v1/studies", data=form, files=files or {}, headers=headers)


def test_create_study_with_inputs(client: TestClient, db: Session, world: World) -> None:
    png = f.png_bytes(160, 136, seed=1)
    gray = f.png_bytes(160, 160, mode="L", seed=2)
    resp = _create(
        client,
        world.a.headers["clinician"],
        world.a.patient.id,
        description="annual screening",
        age_years="61.5",
        files={
            "fundus_left": ("left eye.png", png, "image/png"),
            "oct": ("scan.png", gray, "image/png"),
            "ecg": ("rest.csv", ecg_csv(), "text/csv"),
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    by_slot = {i["slot"]: i for i in body["inputs"]}
    assert set(by_slot) == {"fundus_left", "oct", "ecg"}
    left = by_slot["fundus_left"]
    assert left["modality"] == "fundus" and left["eye"] == "left" and (left["width"], left["height"]) == (160, 136)
    assert left["content_sha256"] == hashlib.sha256(png).hexdigest() and left["size_bytes"] == len(png)
    assert left["media_type"] == "image/png" and left["filename"] == "left eye.png"
    assert by_slot["ecg"]["meta"]["fs_hz"] == 500.0 and by_slot["ecg"]["meta"]["n_samples"] == 1000
    assert body["age_years"] == 61.5
    blobs = client.app.state.blobs
    row = db.get(Input, left["id"])
    assert row is not None and blobs.get(row.blob_key) == png
    actions = [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.patient_id == world.a.patient.id))]
    assert actions.count("input.upload") == 3 and "study.create" in actions
    dl = client.get(f"/api/v1/studies/{body['id']}/inputs/{left['id']}/content", headers=world.a.headers["reviewer"])
    assert dl.status_code == 200 and dl.content == png
    assert dl.headers["content-disposition"].startswith("attachment;")
    ecg_dl = client.get(
        f"/api/v1/studies/{body['id']}/inputs/{by_slot['ecg']['id']}/content", headers=world.a.headers["clinician"]
    )
    assert ecg_dl.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\x\\fundus.png", "fundus.png"),
        ("résumé_眼底.png", "résumé_眼底.png"),
        ("<script>alert(1)</script>.png", "script>.png"),  # "/" splits: only the last part is kept
        ("..", "upload"),
    ],
)
def test_path_like_and_unicode_filenames_are_stored_safely(
    client: TestClient, world: World, tmp_path, filename: str, stored: str
) -> None:
    png = f.png_bytes(seed=zlib.crc32(filename.encode()) % 1000)
    resp = _create(
        client, world.a.headers["clinician"], world.a.patient.id, files={"fundus_right": (filename, png, "image/png")}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["inputs"][0]["filename"] == stored
    digest = hashlib.sha256(png).hexdigest()
    root = client.app.state.blobs.root
    files = [p for p in root.rglob("*") if p.is_file()]
    assert root / "sha256" / digest[:2] / digest[2:4] / digest in files
    assert all(p.name != stored for p in files) and all(p.resolve().is_relative_to(root.resolve()) for p in files)


def test_oversize_upload_is_413_and_stores_nothing(client: TestClient, db: Session, world: World) -> None:
    big = f.png_bytes(600, 600, seed=3)  # random pixels do not compress: > 0.5 MB limit
    assert len(big) > 0.5 * 1024 * 1024
    resp = _create(
        client, world.a.headers["clinician"], world.a.patient.id, files={"fundus_left": ("big.png", big, "image/png")}
    )
    assert resp.status_code == 413 and "upload limit" in resp.json()["detail"]
    assert db.scalar(select(Study).where(Study.patient_id == world.a.patient.id, Study.id != world.a.study.id)) is None


@pytest.mark.parametrize(
    ("slot", "payload", "status", "message"),
    [
        ("fundus_left", b"%PDF-1.4 not an image", 415, "not an image this input accepts"),
        ("fundus_left", ecg_csv(50), 415, "not an image this input accepts"),  # ECG in a fundus slot
        ("ecg", None, 415, "an image was uploaded as an ECG"),  # image in the ECG slot
        ("fundus_left", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 422, "corrupt or truncated"),
        ("fundus_left", "gray", 422, "grayscale"),
        ("fundus_left", "tiny", 422, "shorter side must be at least 64 px"),
        ("ecg", b"just,some\ngarbage,here\n", 422, "ecg"),
    ],
)
def test_bad_inputs_are_refused_and_store_nothing(
    client: TestClient, db: Session, world: World, slot: str, payload, status: int, message: str
) -> None:
    if payload is None:
        payload = f.png_bytes()
    elif payload == "gray":
        payload = f.png_bytes(mode="L")
    elif payload == "tiny":
        payload = f.png_bytes(32, 32)
    before = {p for p in client.app.state.blobs.root.rglob("*") if p.is_file()}
    resp = _create(
        client,
        world.a.headers["clinician"],
        world.a.patient.id,
        files={slot: ("x.csv" if slot == "ecg" else "x.bin", payload)},
    )
    assert resp.status_code == status, resp.text
    assert message in resp.json()["detail"]
    after = {p for p in client.app.state.blobs.root.rglob("*") if p.is_file()}
    assert after == before
    assert db.scalar(select(Study).where(Study.patient_id == world.a.patient.id, Study.id != world.a.study.id)) is None


def test_unknown_slot_and_bad_date(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    resp = _create(client, h, world.a.patient.id, files={"brain_mri": ("x.png", f.png_bytes(), "image/png")})
    assert resp.status_code == 422 and "unknown form fields ['brain_mri']" in resp.json()["detail"]
    bad = client.post("/api/v1/studies", data={"patient_id": world.a.patient.id, "study_date": "01/02/2024"}, headers=h)
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["detail"]
    future = client.post(
        "/api/v1/studies", data={"patient_id": world.a.patient.id, "study_date": "2999-01-01"}, headers=h
    )
    assert future.status_code == 422 and "in the future" in future.json()["detail"]


def test_add_and_replace_inputs(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    sid = world.a.study.id
    first = client.post(f"/api/v1/studies/{sid}/inputs", files={"cxr": ("a.png", f.png_bytes(seed=10))}, headers=h)
    assert first.status_code == 201 and first.json()[0]["modality"] == "cxr"
    second = client.post(f"/api/v1/studies/{sid}/inputs", files={"cxr": ("b.png", f.png_bytes(seed=11))}, headers=h)
    assert second.status_code == 201
    inputs = client.get(f"/api/v1/studies/{sid}", headers=h).json()["inputs"]
    assert [i["filename"] for i in inputs] == ["b.png"]
    reviewer = client.post(
        f"/api/v1/studies/{sid}/inputs",
        files={"cxr": ("c.png", f.png_bytes(seed=12))},
        headers=world.a.headers["reviewer"],
    )
    assert reviewer.status_code == 403


def test_list_filter_and_soft_delete(client: TestClient, db: Session, world: World) -> None:
    from datetime import date

    h = world.a.headers["clinician"]
    patient = f.create_patient(db, site=world.a.site)
    for d, desc in [
        (date(2022, 1, 5), "baseline <b>visit</b>"),
        (date(2023, 6, 1), "follow-up"),
        (date(2024, 2, 2), "follow-up 2"),
    ]:
        f.create_study(db, patient=patient, study_date=d, description=desc)
    listed = client.get("/api/v1/studies", params={"patient_id": patient.id}, headers=h).json()
    assert [s["study_date"] for s in listed["items"]] == ["2024-02-02", "2023-06-01", "2022-01-05"]
    ranged = client.get(
        "/api/v1/studies",
        params={"patient_id": patient.id, "date_from": "2023-01-01", "date_to": "2023-12-31"},
        headers=h,
    ).json()
    assert [s["description"] for s in ranged["items"]] == ["follow-up"]
    searched = client.get("/api/v1/studies", params={"patient_id": patient.id, "q": "<b>"}, headers=h).json()
    assert [s["description"] for s in searched["items"]] == ["baseline <b>visit</b>"]
    target = listed["items"][0]["id"]
    assert client.get(f"/api/v1/studies/{target}", headers=h).json()["description"] == "follow-up 2"
    assert client.delete(f"/api/v1/studies/{target}", headers=h).status_code == 204
    assert client.get(f"/api/v1/studies/{target}", headers=h).status_code == 404
    assert client.get("/api/v1/studies", params={"patient_id": patient.id}, headers=h).json()["total"] == 2
    # deleting the patient hides its studies too
    client.delete(f"/api/v1/patients/{patient.id}", headers=h)
    assert client.get(f"/api/v1/studies/{listed['items'][1]['id']}", headers=h).status_code == 404
    actions = [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient.id))]
    assert actions.count("study.list") >= 3 and "study.delete" in actions and "study.read" in actions


def test_db_failure_during_create_leaves_no_blob_and_no_row(
    client: TestClient, db: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vitalens.service.ops import inputs as input_ops

    png = f.png_bytes(seed=99)
    original = input_ops.record_event

    def failing(**kwargs):  # the audit insert for the input fails after the blob is written
        if kwargs.get("action") == "input.upload":
            raise RuntimeError("database went away")
        return original(**kwargs)

    monkeypatch.setattr(input_ops, "record_event", failing)
    resp = _create(
        client, world.a.headers["clinician"], world.a.patient.id, files={"fundus_left": ("x.png", png, "image/png")}
    )
    assert resp.status_code == 500 and resp.json()["detail"].startswith("internal server error; quote request id")
    assert "database went away" not in resp.text  # logged, never shown
    assert not client.app.state.blobs.exists(
        f"sha256/{hashlib.sha256(png).hexdigest()[:2]}/"
        f"{hashlib.sha256(png).hexdigest()[2:4]}/{hashlib.sha256(png).hexdigest()}"
    )
    db.expire_all()
    assert db.scalar(select(Study).where(Study.patient_id == world.a.patient.id, Study.id != world.a.study.id)) is None
    assert db.scalar(select(Input).where(Input.content_sha256 == hashlib.sha256(png).hexdigest())) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b\x1f.png", "ab.png"),
        ("../../x/../y.jpg", "y.jpg"),
        ("e\u0301.png", "\u00e9.png"),  # NFC
        ("", "upload"),
        ("x" * 300 + ".png", "x" * 116 + ".png"),
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    from vitalens.service.ops.inputs import sanitize_filename

    assert sanitize_filename(raw) == clean
