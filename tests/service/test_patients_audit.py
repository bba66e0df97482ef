"""Every read and write of a patient record leaves an AuditEvent naming the actor, the record and the patient."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.store.models import AuditEvent


def test_walk_patient_record_routes_each_audited(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["clinician"]
    actor = world.a.users["clinician"]
    pid = client.post("/api/v1/patients", json={"pseudonym": f"AU-{f.random_suffix()}"}, headers=h).json()["id"]
    study = client.post(
        "/api/v1/studies",
        data={"patient_id": pid, "study_date": "2024-01-02"},
        files={"fundus_left": ("l.png", f.png_bytes(seed=21), "image/png")},
        headers=h,
    ).json()
    sid, iid = study["id"], study["inputs"][0]["id"]
    walk = [
        ("GET", f"/api/v1/patients/{pid}", {}, "patient.read"),
        ("GET", "/api/v1/patients", {"params": {"q": "AU-"}}, "patient.list"),
        ("PATCH", f"/api/v1/patients/{pid}", {"json": {"notes": "n"}}, "patient.update"),
        ("GET", f"/api/v1/studies/{sid}", {}, "study.read"),
        ("GET", "/api/v1/studies", {"params": {"patient_id": pid}}, "study.list"),
        ("POST", f"/api/v1/studies/{sid}/inputs", {"files": {"cxr": ("c.png", f.png_bytes(seed=22))}}, "input.upload"),
        ("GET", f"/api/v1/studies/{sid}/inputs/{iid}/content", {}, "input.download"),
        ("DELETE", f"/api/v1/studies/{sid}", {}, "study.delete"),
        ("DELETE", f"/api/v1/patients/{pid}", {}, "patient.delete"),
    ]
    for method, url, kwargs, action in walk:
        db.expire_all()
        before = db.scalar(select(func.max(AuditEvent.id))) or 0
        resp = client.request(method, url, headers=h, **kwargs)
        assert resp.status_code < 300, (method, url, resp.text)
        db.expire_all()
        new = db.scalars(select(AuditEvent).where(AuditEvent.id > before)).all()
        mine = [e for e in new if e.action == action and e.patient_id == pid]
        assert mine, f"{method} {url} left no {action} event (got {[e.action for e in new]})"
        assert all(e.actor_id == actor.id and e.site_id == world.a.site.id and e.ip for e in mine)
    creates = db.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == pid)).all()
    assert {"patient.create", "study.create", "input.upload"} <= set(creates)
