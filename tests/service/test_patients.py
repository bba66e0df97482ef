"""Patients API: create, list (paginated, filtered, searched), read, update, soft-delete; audit on every access;
hostile text stored verbatim and returned inert (JSON, never HTML)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.store.models import AuditEvent, Patient

HOSTILE = [
    "Robert'); DROP TABLE patients;--",
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "1 OR 1=1; --",
    "名前 ünïcødé 🙂",
]


def _events(db: Session, patient_id: str) -> list[str]:
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id))
    return [e.action for e in rows]


def test_create_read_update_delete_with_audit(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["clinician"]
    created = client.post(
        "/api/v1/patients", json={"pseudonym": "MRN-77", "year_of_birth": 1970, "sex": "male"}, headers=h
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    assert created.json()["site_id"] == world.a.site.id
    assert client.get(f"/api/v1/patients/{pid}", headers=h).json()["pseudonym"] == "MRN-77"
    patched = client.patch(f"/api/v1/patients/{pid}", json={"sex": "female"}, headers=h)
    assert patched.status_code == 200 and patched.json()["sex"] == "female" and patched.json()["year_of_birth"] == 1970
    assert client.delete(f"/api/v1/patients/{pid}", headers=h).status_code == 204
    gone = client.get(f"/api/v1/patients/{pid}", headers=h)
    assert gone.status_code == 404 and gone.json()["detail"] == "patient not found"
    assert _events(db, pid) == ["patient.create", "patient.read", "patient.update", "patient.delete"]
    row = db.get(Patient, pid)
    assert row is not None and row.deleted_at is not None and row.deleted_by_id == world.a.users["clinician"].id
    event = db.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid)).first()
    assert event is not None and event.actor_id == world.a.users["clinician"].id and event.ip == "testclient"
    assert event.request_id and event.site_id == world.a.site.id


def test_duplicate_pseudonym_conflicts(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    resp = client.post("/api/v1/patients", json={"pseudonym": world.a.patient.pseudonym}, headers=h)
    assert resp.status_code == 409 and "exists at your site" in resp.json()["detail"]


def test_reviewer_cannot_create_or_delete(client: TestClient, world: World) -> None:
    h = world.a.headers["reviewer"]
    resp = client.post("/api/v1/patients", json={"pseudonym": "R-1"}, headers=h)
    assert resp.status_code == 403 and resp.json()["detail"] == "role 'reviewer' may not patient create"
    assert client.delete(f"/api/v1/patients/{world.a.patient.id}", headers=h).status_code == 403
    assert client.get(f"/api/v1/patients/{world.a.patient.id}", headers=h).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pseudonym": ""}, "pseudonym"),
        ({"pseudonym": "x", "year_of_birth": 1800}, "year_of_birth"),
        ({"pseudonym": "x", "sex": "robot"}, "sex"),
        ({"pseudonym": "a\x00b"}, "pseudonym"),
    ],
)
def test_invalid_patient_fields(client: TestClient, world: World, body: dict, field: str) -> None:
    resp = client.post("/api/v1/patients", json=body, headers=world.a.headers["clinician"])
    assert resp.status_code == 422
    assert field in str(resp.json()["detail"])


def test_pagination_filter_search(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["clinician"]
    tag = f.random_suffix()
    for i in range(5):
        f.create_patient(
            db, site=world.a.site, pseudonym=f"PG-{tag}-{i}", year_of_birth=1950 + i, sex="male" if i % 2 else "female"
        )
    f.create_patient(db, site=world.b.site, pseudonym=f"PG-{tag}-other-site")
    page1 = client.get("/api/v1/patients", params={"q": f"pg-{tag}", "limit": 2}, headers=h).json()
    page3 = client.get("/api/v1/patients", params={"q": f"pg-{tag}", "limit": 2, "offset": 4}, headers=h).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1
    females = client.get("/api/v1/patients", params={"q": tag, "sex": "female"}, headers=h).json()
    assert sorted(p["pseudonym"] for p in females["items"]) == [f"PG-{tag}-0", f"PG-{tag}-2", f"PG-{tag}-4"]
    born = client.get("/api/v1/patients", params={"q": tag, "born_from": 1951, "born_to": 1952}, headers=h).json()
    assert sorted(p["year_of_birth"] for p in born["items"]) == [1951, 1952]
    # LIKE wildcards in the search are literal
    assert client.get("/api/v1/patients", params={"q": "%"}, headers=h).json()["total"] == 0
    too_big = client.get("/api/v1/patients", params={"limit": 1000}, headers=h)
    assert too_big.status_code == 422
    listed = page1["items"][0]["id"]
    assert "patient.list" in _events(db, listed)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_stored_verbatim_and_returned_as_json(
    client: TestClient, db: Session, world: World, text: str
) -> None:
    h = world.a.headers["clinician"]
    resp = client.post("/api/v1/patients", json={"pseudonym": f"H-{f.random_suffix()}", "notes": text}, headers=h)
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "application/json"
    pid = resp.json()["id"]
    assert client.get(f"/api/v1/patients/{pid}", headers=h).json()["notes"] == text
    db.expire_all()
    assert db.get(Patient, pid).notes == text  # type: ignore[union-attr]
    # search with SQL metacharacters is a plain substring search
    found = client.get("/api/v1/patients", params={"q": "'); DROP"}, headers=h)
    assert found.status_code == 200
    assert db.scalar(select(Patient).where(Patient.id == pid)) is not None  # table intact


def test_hostile_pseudonym_round_trips(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    pseudo = "<script>x</script>'--"
    resp = client.post("/api/v1/patients", json={"pseudonym": pseudo}, headers=h)
    assert resp.status_code == 201 and resp.json()["pseudonym"] == pseudo
    listed = client.get("/api/v1/patients", params={"q": "<script>"}, headers=h).json()
    assert [p["pseudonym"] for p in listed["items"]] == [pseudo]
