"""Site administrators and the instance administrator (the model of Orthanc/OHIF deployments: one operator of the
installation, one administrator per clinic).

Before: an admin of site A created a clinician at site B (``POST /users {"site_id": B}`` → 201) and through that
account read B's patients.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.service.conftest import World, bearer
from tests.utils import factories as f
from vitalens.config import Settings
from vitalens.service.ops import INSTANCE_WIDE, PERMISSIONS
from vitalens.service.ops.users import bootstrap_admin
from vitalens.store.models import User

PASSWORD = "a-long-enough-password-1"  # noqa: S105 - test accounts


def _body(email: str, role: str = "clinician", site_id: str | None = None) -> dict[str, object]:
    return {"email": email, "password": PASSWORD, "role": role, "site_id": site_id}


@pytest.fixture
def instance_headers(db: Session, world: World, settings: Settings) -> dict[str, str]:
    return bearer(f.create_user(db, site=world.a.site, role="instance_admin"), settings)


def test_site_admin_cannot_create_a_user_at_another_site(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["admin"]
    resp = client.post("/api/v1/users", json=_body("spy@example.org", site_id=world.b.site.id), headers=h)
    assert (resp.status_code, resp.json()["detail"]) == (404, "site not found")  # like a site that does not exist
    ghost = client.post("/api/v1/users", json=_body("spy@example.org", site_id="f" * 32), headers=h)
    assert (ghost.status_code, ghost.json()["detail"]) == (404, "site not found")
    assert db.query(User).filter(User.email == "spy@example.org").count() == 0
    own = client.post("/api/v1/users", json=_body("new@example.org", role="admin"), headers=h)
    assert own.status_code == 201 and own.json()["site_id"] == world.a.site.id


def test_site_admin_cannot_create_or_manage_an_instance_admin(
    client: TestClient, db: Session, world: World, settings: Settings
) -> None:
    h = world.a.headers["admin"]
    resp = client.post("/api/v1/users", json=_body("root@example.org", role="instance_admin"), headers=h)
    assert (resp.status_code, resp.json()["detail"]) == (
        403,
        "only an instance administrator may create an instance administrator",
    )
    operator = f.create_user(db, site=world.a.site, role="instance_admin")
    off = client.post(f"/api/v1/users/{operator.id}/deactivate", headers=h)
    assert (off.status_code, off.json()["detail"]) == (
        403,
        "only an instance administrator may manage an instance administrator",
    )


def test_site_admin_manages_sites_no_more(client: TestClient, world: World) -> None:
    h = world.a.headers["admin"]
    resp = client.post("/api/v1/sites", json={"name": "Rogue clinic"}, headers=h)
    assert (resp.status_code, resp.json()["detail"]) == (403, "role 'admin' may not site manage")
    assert [s["id"] for s in client.get("/api/v1/sites", headers=h).json()] == [world.a.site.id]
    other = client.get("/api/v1/users", params={"site_id": world.b.site.id}, headers=h)
    assert (other.status_code, other.json()["detail"]) == (404, "site not found")
    audit = client.get("/api/v1/audit-events", params={"site_id": world.b.site.id}, headers=h)
    assert (audit.status_code, audit.json()["detail"]) == (404, "site not found")


def test_instance_admin_runs_every_site_and_reads_no_patient(
    client: TestClient, db: Session, world: World, instance_headers: dict[str, str]
) -> None:
    h = instance_headers
    created = client.post("/api/v1/users", json=_body("b-admin@example.org", "admin", world.b.site.id), headers=h)
    assert created.status_code == 201 and created.json()["site_id"] == world.b.site.id
    site = client.post("/api/v1/sites", json={"name": f"Clinic {f.random_suffix()}"}, headers=h)
    assert site.status_code == 201
    listed = {u["site_id"] for u in client.get("/api/v1/users", headers=h).json()}
    assert {world.a.site.id, world.b.site.id} <= listed
    only_b = client.get("/api/v1/users", params={"site_id": world.b.site.id}, headers=h).json()
    assert {u["site_id"] for u in only_b} == {world.b.site.id}
    assert client.get(f"/api/v1/users/{world.b.users['clinician'].id}", headers=h).status_code == 200
    audit = client.get("/api/v1/audit-events", params={"site_id": world.b.site.id}, headers=h).json()
    assert {e["action"] for e in audit["items"]} >= {"user.create"}
    # no patient record, not even at its own site
    for url in (
        "/api/v1/patients",
        f"/api/v1/patients/{world.a.patient.id}",
        f"/api/v1/studies/{world.a.study.id}",
        "/api/v1/studies",
    ):
        resp = client.get(url, headers=h)
        assert resp.status_code == 403, (url, resp.text)
        assert resp.json()["detail"] in {
            "role 'instance_admin' may not patient read",
            "role 'instance_admin' may not study read",
        }
    assert client.get("/worklist", headers=h).status_code == 403
    assert client.get("/", headers=h, follow_redirects=False).headers["location"] == "/admin"


def test_permission_table_grants_no_patient_permission_to_the_instance_admin() -> None:
    clinical = {p for p in PERMISSIONS if p.split(".")[0] not in {"user", "site", "audit"}}
    assert {p for p in clinical if "instance_admin" in PERMISSIONS[p]} == set()
    assert {p for p, roles in PERMISSIONS.items() if "instance_admin" in roles} == set(INSTANCE_WIDE)
    assert PERMISSIONS["site.manage"] == frozenset({"instance_admin"})


def test_bootstrap_creates_the_instance_admin_once(tmp_path: Path) -> None:
    from tests.utils.databases import migrated_engine
    from vitalens.service.ops import Conflict
    from vitalens.store import make_session_factory

    with migrated_engine("sqlite", tmp_path) as engine, make_session_factory(engine)() as session:
        first = bootstrap_admin(session=session, email="first@example.org", password=PASSWORD, site_name="First")
        assert (first.role, first.site.name) == ("instance_admin", "First")
        with pytest.raises(Conflict, match="an admin exists already"):
            bootstrap_admin(session=session, email="second@example.org", password=PASSWORD, site_name="First")
        # an installation upgraded from before instance admins (site admins only) gets one from the CLI, once
        session.delete(first)
        session.add(User(site_id=first.site_id, email="old@example.org", role="admin", password_hash="x"))
        session.commit()
        with pytest.raises(Conflict):
            bootstrap_admin(session=session, email="web@example.org", password=PASSWORD, site_name="First")
        cli = bootstrap_admin(
            session=session, email="cli@example.org", password=PASSWORD, site_name="First", allow_site_admins=True
        )
        assert cli.role == "instance_admin"
