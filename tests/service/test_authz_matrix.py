"""Cross-site authorisation matrix: a user of site A can neither read, list, change, annotate, report nor delete
site B's records through any route. Every ``/api/v1`` route with a record id in its path is walked automatically
(routes added later are covered too): for each role of site A, the answer for site B's real id must be exactly the
answer for an id that does not exist (same status, same text), and never a success, so ids do not leak.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from tests.utils.records import MISSING_ID, NOT_RECORDS, records_of

ROLES = ("clinician", "reviewer", "admin")
MISSING = MISSING_ID


def _site_b_records(db: Session, world: World) -> dict[str, str]:
    """A record of every kind at site B, by the path-parameter name that addresses it."""
    return records_of(db, world.b)


def _record_routes(app) -> list[tuple[str, str, list[str]]]:
    """Every (method, path, path parameters) of the API with a record id in its path, from the OpenAPI schema."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        params = [p for p in re.findall(r"{(\w+)}", path) if p not in NOT_RECORDS]
        if not path.startswith("/api/v1/") or not params:
            continue
        for method in sorted(operations):
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                routes.append((method.upper(), path, params))
    return routes


def _norm(text: str, url: str) -> str:
    """The response text with the ids of the request URL replaced by a placeholder."""
    for value in re.findall(r"[0-9a-f]{32}", url):
        text = text.replace(value, "<requested id>")
    return text


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]):
    if method in {"POST", "PUT", "PATCH"}:
        files = {"fundus_left": ("x.png", f.png_bytes(seed=1), "image/png")}
        if path.endswith("/inputs") or path.rstrip("/").endswith("studies"):
            return client.request(method, path, headers=headers, files=files)
        return client.request(method, path, headers=headers, json={})
    return client.request(method, path, headers=headers)


def test_every_record_route_hides_other_sites_records(client: TestClient, db: Session, world: World) -> None:
    ids = _site_b_records(db, world)
    routes = _record_routes(client.app)
    assert any(p == "/api/v1/patients/{patient_id}" for _, p, _ in routes)  # the walk found the routes
    unknown = sorted({p for _, _, params in routes for p in params if p not in ids})
    assert not unknown, f"add a site-B record for path parameters {unknown} in _site_b_records"
    failures = []
    for method, template, params in routes:
        real = template
        fake = template
        for name in params:
            real = real.replace(f"{{{name}}}", ids[name])
            fake = fake.replace(f"{{{name}}}", MISSING)
        for role in ROLES:
            headers = world.a.headers[role]
            got = _call(client, method, real, headers)
            ref = _call(client, method, fake, headers)
            # the requested id may be echoed back; anything else differing (another record's id, another record
            # type, another status) tells the caller that site B's record exists
            same = (got.status_code, _norm(got.text, real)) == (ref.status_code, _norm(ref.text, fake))
            if got.status_code < 400 or not same:
                failures.append(
                    f"{role} {method} {template}: B-id → {got.status_code} {got.text[:80]!r}, "
                    f"missing id → {ref.status_code} {ref.text[:80]!r}"
                )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/api/v1/patients/{patient_id}", "json"),
        ("PATCH", "/api/v1/patients/{patient_id}", "json"),
        ("DELETE", "/api/v1/patients/{patient_id}", "none"),
        ("GET", "/api/v1/studies/{study_id}", "none"),
        ("DELETE", "/api/v1/studies/{study_id}", "none"),
        ("POST", "/api/v1/studies/{study_id}/inputs", "files"),
        ("GET", "/api/v1/studies/{study_id}/inputs/{input_id}/content", "none"),
        ("GET", "/api/v1/studies?patient_id={patient_id}", "none"),
    ],
)
def test_clinician_of_site_a_gets_404_for_site_b(
    client: TestClient, db: Session, world: World, method: str, path: str, kind: str
) -> None:
    ids = _site_b_records(db, world)
    url = path.format(**ids)
    kwargs: dict = {"headers": world.a.headers["clinician"]}
    if kind == "json":
        kwargs["json"] = {"notes": "x"}
    elif kind == "files":
        kwargs["files"] = {"cxr": ("x.png", f.png_bytes(seed=2), "image/png")}
    resp = client.request(method, url, **kwargs)
    assert resp.status_code == 404, resp.text
    assert resp.json()["detail"] in {"patient not found", "study not found", "input not found"}
    # and site B's own clinician still sees it unchanged
    assert client.get(f"/api/v1/patients/{ids['patient_id']}", headers=world.b.headers["clinician"]).status_code == 200


def test_create_study_for_other_sites_patient_is_404(client: TestClient, world: World) -> None:
    resp = client.post(
        "/api/v1/studies",
        data={"patient_id": world.b.patient.id, "study_date": "2024-01-01"},
        headers=world.a.headers["clinician"],
    )
    assert resp.status_code == 404 and resp.json()["detail"] == "patient not found"


@pytest.mark.parametrize("role", ROLES)
def test_lists_never_show_other_sites_records(client: TestClient, world: World, role: str) -> None:
    h = world.a.headers[role]
    patients = client.get("/api/v1/patients", params={"limit": 200}, headers=h).json()["items"]
    studies = client.get("/api/v1/studies", params={"limit": 200}, headers=h).json()["items"]
    assert {p["site_id"] for p in patients} <= {world.a.site.id} and world.a.patient.id in {p["id"] for p in patients}
    assert {s["site_id"] for s in studies} <= {world.a.site.id} and world.b.study.id not in {s["id"] for s in studies}
    search = client.get("/api/v1/patients", params={"q": world.b.patient.pseudonym}, headers=h).json()
    assert world.b.patient.id not in {p["id"] for p in search["items"]}


def test_admin_cannot_reach_other_sites_users_or_audit(client: TestClient, world: World) -> None:
    h = world.a.headers["admin"]
    resp = client.get(f"/api/v1/users/{world.b.users['clinician'].id}", headers=h)
    assert resp.status_code == 404 and resp.json()["detail"] == "user not found"
    users = client.get("/api/v1/users", headers=h).json()
    assert {u["site_id"] for u in users} == {world.a.site.id}
    audit = client.get("/api/v1/audit-events", params={"patient_id": world.b.patient.id}, headers=h).json()
    assert audit["items"] == []
