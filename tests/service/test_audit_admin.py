"""The audit trail for administrators: filters by user, patient, action and time (API and page), the CSV export
(itself audited, formula cells neutralised), and site scoping."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.service.conftest import World
from vitalens.service.ops.audit import CSV_COLUMNS, _safe_cell
from vitalens.store.models import AuditEvent


def _seed(db: Session, world: World) -> None:
    """Known events at known times on site a (and one on site b)."""
    a, b = world.a, world.b
    clin, rev = a.users["clinician"], a.users["reviewer"]
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    rows = [
        (clin, "patient.read", a.patient.id, t0),
        (clin, "report.sign", a.patient.id, t0 + timedelta(days=1)),
        (rev, "report.read", a.patient.id, t0 + timedelta(days=2)),
        (rev, "study.read", None, t0 + timedelta(days=3)),
    ]
    for actor, action, patient_id, at in rows:
        db.add(
            AuditEvent(
                at=at,
                actor_id=actor.id,
                actor_email=actor.email,
                site_id=a.site.id,
                action=action,
                record_type=action.split(".")[0],
                record_id="=HYPERLINK(1)" if action == "study.read" else "r1",
                patient_id=patient_id,
            )
        )
    db.add(
        AuditEvent(at=t0, actor_id=b.users["clinician"].id, site_id=b.site.id, action="report.sign", record_type="r")
    )
    db.commit()


def _actions(client: TestClient, headers: dict, **params: str) -> list[str]:
    params = {"at_from": "2026-10-01T00:00:00Z", "at_to": "2026-12-01T00:00:00Z", **params}
    r = client.get("/api/v1/audit-events", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_filters_by_user_patient_action_and_time(client: TestClient, db: Session, world: World) -> None:
    _seed(db, world)
    h = world.a.headers["admin"]
    assert _actions(client, h) == ["study.read", "report.read", "report.sign", "patient.read"]  # newest first
    clin = world.a.users["clinician"]
    assert _actions(client, h, actor=clin.email.split("@")[0].upper()) == ["report.sign", "patient.read"]
    assert _actions(client, h, actor=clin.id) == ["report.sign", "patient.read"]
    assert _actions(client, h, patient=world.a.patient.pseudonym.lower()) == [
        "report.read",
        "report.sign",
        "patient.read",
    ]
    assert _actions(client, h, patient=world.a.patient.id) == ["report.read", "report.sign", "patient.read"]
    assert _actions(client, h, action="report.") == ["report.read", "report.sign"]
    assert _actions(client, h, action="report.*") == ["report.read", "report.sign"]
    assert _actions(client, h, action="report.sign") == ["report.sign"]
    # the window is inclusive at both ends, to the second
    assert _actions(client, h, at_from="2026-11-02T12:00:00Z", at_to="2026-11-03T12:00:00Z") == [
        "report.read",
        "report.sign",
    ]
    # another site's patient by pseudonym finds nothing here; clinicians may not read the trail
    assert _actions(client, h, patient=world.b.patient.pseudonym) == []
    assert client.get("/api/v1/audit-events", headers=world.a.headers["clinician"]).status_code == 403


def test_csv_export_matches_the_filters_and_is_audited(client: TestClient, db: Session, world: World) -> None:
    _seed(db, world)
    h = world.a.headers["admin"]
    r = client.get(
        "/api/v1/audit-events.csv",
        params={"action": "report.", "at_from": "2026-10-01T00:00:00Z", "at_to": "2026-12-01T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[5] for row in rows[1:]] == ["report.sign", "report.read"]  # oldest first, site a only
    assert rows[1][1] == "2026-11-02T12:00:00+00:00"
    r = client.get("/api/v1/audit-events.csv", params={"action": "study.read"}, headers=h)
    assert list(csv.reader(io.StringIO(r.text)))[1][7] == "'=HYPERLINK(1)"  # a formula is never run by a spreadsheet
    db.expire_all()
    exports = (
        db.query(AuditEvent)
        .filter(AuditEvent.action == "audit.export", AuditEvent.actor_id == world.a.users["admin"].id)
        .order_by(AuditEvent.id)
        .all()
    )
    assert len(exports) == 2 and exports[0].detail["rows"] == 2 and exports[0].detail["action"] == "report."
    assert client.get("/api/v1/audit-events.csv", headers=world.a.headers["reviewer"]).status_code == 403


def test_safe_cell() -> None:
    assert [_safe_cell(v) for v in ("=1+1", "+x", "-2", "@a", "ok", 5)] == ["'=1+1", "'+x", "'-2", "'@a", "ok", 5]


def test_audit_page(client: TestClient, db: Session, world: World) -> None:
    _seed(db, world)
    h = world.a.headers["admin"]
    page = client.get("/admin/audit", params={"action": "report.", "at_to": "2026-11-30"}, headers=h)
    assert page.status_code == 200
    assert "2 events." in page.text and "report.sign" in page.text and "patient.read" not in page.text
    assert 'href="/api/v1/audit-events.csv?action=report.&amp;at_to=2026-11-30"' in page.text
    bad = client.get("/admin/audit", params={"at_from": "yesterday"}, headers=h)
    assert bad.status_code == 200 and "Not a date or time: From" in bad.text
    assert "No event matches" in client.get("/admin/audit", params={"actor": "nobody-at-all"}, headers=h).text
    assert client.get("/admin/audit", headers=world.a.headers["clinician"]).status_code == 403
    assert 'href="/admin/audit"' in client.get("/admin", headers=h).text


def test_worklist_search_without_a_match_says_so(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    page = client.get("/worklist", params={"q": "zz-no-such-patient"}, headers=h).text
    assert "No patient matches “zz-no-such-patient”" in page and "No patients yet" not in page
    assert world.a.patient.pseudonym in client.get("/worklist", headers=h).text
