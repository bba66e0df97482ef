"""Entering a study: the analysis plan before submitting, a resubmission with the same key completes the study it
created (never a duplicate), and a saved study's inputs can be completed (PATCH) and the analysis run again."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.store.models import AuditEvent, Input, Study

KEY = "form-5f0c2b6e-0d1e-4c59-a7a9-0d3b2f1c9e77"


def _submit(client: TestClient, world: World, files: dict | None = None, **data: str):
    form = {"patient_id": world.a.patient.id, "study_date": "2024-03-01", "submission_key": KEY, **data}
    return client.post("/api/v1/studies", data=form, files=files or {}, headers=world.a.headers["clinician"])


def _studies(db: Session, world: World) -> list[Study]:
    db.expire_all()
    return list(db.scalars(select(Study).where(Study.patient_id == world.a.patient.id)).all())


def test_resubmission_completes_the_study_instead_of_duplicating_it(client: TestClient, db: Session, world: World):
    before = len(_studies(db, world))
    left = f.png_bytes(160, 140, seed=1)
    r = _submit(client, world, files={"fundus_left": ("l.png", left, "image/png")})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["age_years"] is None
    # the clinician adds the age and the right eye and submits the same form again
    right = f.png_bytes(160, 140, seed=2)
    r = _submit(
        client,
        world,
        age_years="63",
        files={"fundus_left": ("l.png", left, "image/png"), "fundus_right": ("r.png", right, "image/png")},
    )
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["id"] == first["id"] and again["age_years"] == 63.0
    assert sorted(i["slot"] for i in again["inputs"]) == ["fundus_left", "fundus_right"]
    assert len(_studies(db, world)) == before + 1
    # the unchanged left eye was not stored again; one live input per slot
    rows = db.scalars(select(Input).where(Input.study_id == first["id"])).all()
    assert sorted(i.slot for i in rows) == ["fundus_left", "fundus_right"]
    # an empty age box on a third submission keeps the stored age
    r = _submit(client, world, files={})
    assert r.status_code == 200 and r.json()["age_years"] == 63.0
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "study.update")).all()
    assert sum(1 for e in events if e.record_id == first["id"] and e.detail.get("resubmitted")) == 2


def test_submission_key_checks(client: TestClient, world: World) -> None:
    r = _submit(client, world, submission_key="short")
    assert r.status_code == 422 and r.json()["field"] == "submission_key"
    assert _submit(client, world).status_code == 201
    # the same key for another patient of the site is a conflict; another site's key space is its own
    other = client.post(
        "/api/v1/patients", json={"pseudonym": "P-OTHER-1", "sex": "female"}, headers=world.a.headers["clinician"]
    ).json()
    r = _submit(client, world, patient_id=other["id"])
    assert r.status_code == 409 and "another patient" in r.json()["detail"]
    form = {"patient_id": world.b.patient.id, "study_date": "2024-03-01", "submission_key": KEY}
    assert client.post("/api/v1/studies", data=form, headers=world.b.headers["clinician"]).status_code == 201


def test_patch_completes_a_saved_study(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["clinician"]
    sid = _submit(client, world).json()["id"]
    r = client.patch(f"/api/v1/studies/{sid}", json={"age_years": 58.5, "description": "follow-up"}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["age_years"], r.json()["description"]) == (58.5, "follow-up")
    # only what is sent changes; null clears the age; bad values are 422 naming the field
    r = client.patch(f"/api/v1/studies/{sid}", json={"description": "second visit"}, headers=h)
    assert r.json()["age_years"] == 58.5
    assert client.patch(f"/api/v1/studies/{sid}", json={"age_years": None}, headers=h).json()["age_years"] is None
    r = client.patch(f"/api/v1/studies/{sid}", json={"age_years": 121}, headers=h)
    assert r.status_code == 422
    r = client.patch(f"/api/v1/studies/{sid}", json={"study_date": "2999-01-01"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "study_date"
    r = client.patch(f"/api/v1/studies/{sid}", json={"colour": "blue"}, headers=h)
    assert r.status_code == 422
    assert (
        client.patch(f"/api/v1/studies/{sid}", json={"age_years": 50}, headers=world.b.headers["clinician"]).status_code
        == 404
    )
    r = client.patch(f"/api/v1/studies/{sid}", json={"age_years": 50}, headers=world.a.headers["reviewer"])
    assert r.status_code == 403


def test_analysis_plan_names_what_each_analyzer_lacks(client: TestClient, world: World) -> None:
    from vitalens.analyzers import get_spec, list_analyzers

    h = world.a.headers["clinician"]
    r = client.get("/api/v1/analysis-plan", params={"slots": ["fundus_left", "fundus_right"]}, headers=h)
    assert r.status_code == 200, r.text
    plan = r.json()
    names = {e["name"] for e in plan["will_run"]} | {e["name"] for e in plan["cannot_run"]}
    assert names == set(list_analyzers())
    needs_age = [n for n in list_analyzers() if "age" in get_spec(n).inputs]
    if not needs_age:
        pytest.skip("no registered analyzer requires the age")
    by_name = {e["name"]: e for e in plan["cannot_run"]}
    for name in needs_age:
        assert "age" in by_name[name]["missing"] and by_name[name]["title"] == (get_spec(name).title or name)
    # with the age given, those that needed only the age now run
    r = client.get("/api/v1/analysis-plan", params={"slots": ["fundus_left", "fundus_right", "age"]}, headers=h)
    will = {e["name"] for e in r.json()["will_run"]}
    assert all(n in will for n in needs_age if set(get_spec(n).missing({"fundus_left", "fundus_right"})) == {"age"})
    r = client.get("/api/v1/analysis-plan", params={"slots": ["fundus_leftt"]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "slots" and "fundus_left" in r.json()["detail"]
    # a saved study's plan reads its stored inputs
    sid = _submit(client, world, age_years="61").json()["id"]
    plan = client.get(f"/api/v1/studies/{sid}/analysis-plan", headers=h).json()
    assert "age" in plan["slots"]
    assert client.get(f"/api/v1/studies/{sid}/analysis-plan", headers=world.b.headers["clinician"]).status_code == 404


def test_study_page_offers_to_complete_a_study_that_cannot_be_analysed(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    sid = _submit(client, world).json()["id"]
    page = client.get(f"/studies/{sid}", headers=h).text
    assert 'id="complete-age"' in page and "Save and analyse" in page and "needs" in page
    client.patch(f"/api/v1/studies/{sid}", json={"age_years": 61}, headers=h)
    page = client.get(f"/studies/{sid}", headers=h).text
    assert 'id="complete-age"' not in page and "Analyse now" in page
