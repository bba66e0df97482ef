"""A deleted patient is gone from every route, page, list and export: every route of the OpenAPI document (and every
web page) with a record id in its path is walked with the deleted patient's ids.

Before: after ``DELETE /patients/{id}`` (204) the patient's analyses, overlays, annotations and their versions,
feedback, ``report.pdf`` and ``report.fhir.json`` still answered 200 and new feedback, annotations and analyses were
accepted, because ``ops/analyses.scoped_study`` did not check the patient's deletion.

The walk is "found before, gone after": for each route, the request with the patient's real ids must be answered
differently from one with made-up ids while the patient lives (so the route really reaches the record and the body
is valid), and exactly like the made-up ids once the patient is deleted.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.service.conftest import World, _site_world
from tests.utils import factories as f
from tests.utils.records import MISSING_ID, NOT_RECORDS, records_of
from vitalens.config import Settings

ROLES = ("clinician", "reviewer", "admin")

#: A body that the route accepts when the record is visible (so a refusal can only come from the scoping).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/patients/{patient_id}"): {"json": {"notes": "seen again"}},
    ("POST", "/api/v1/studies/{study_id}/inputs"): {"files": {"cxr": ("x.png", b"", "image/png")}},
    ("POST", "/api/v1/studies/{study_id}/analyses"): {"json": {"analyzers": ["fundus.odir"]}},
    ("POST", "/api/v1/inputs/{input_id}/annotations"): {
        "json": {"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 9, "y1": 9}, "label": "x"}
    },
    ("PUT", "/api/v1/annotations/{annotation_id}"): {"json": {"label": "edited"}},
    ("POST", "/api/v1/findings/{finding_id}/feedback"): {"json": {"action": "confirm"}},
    ("POST", "/api/v1/studies/{study_id}/signoff"): {"json": {"note": "ok", "acknowledge_unreviewed": True}},
    ("POST", "/api/v1/studies/{study_id}/amendments"): {"json": {"reason": "re-graded"}},
    ("POST", "/api/v1/studies/{study_id}/assistant"): {"json": {"question": "What do the findings mean?"}},
    ("PUT", "/api/v1/studies/{study_id}/notes"): {"json": {"notes": "chest pain for 2 days"}},
}


def _with_files(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "files" in kwargs:  # a real image each call (the tuple's bytes are a placeholder)
        return {"files": {"cxr": ("x.png", f.png_bytes(seed=3, mode="L"), "image/png")}}
    return kwargs


def patient_routes(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path, parameters) of every route with a patient record's id in its path: the OpenAPI document's,
    and the web pages (which are left out of the document)."""
    from vitalens.web.routes import router as web_router

    out = []
    operations = [(path, set(ops)) for path, ops in app.openapi()["paths"].items()]
    operations += [(r.path, {m.lower() for m in r.methods}) for r in web_router.routes if isinstance(r, APIRoute)]
    for path, methods in operations:
        params = [p for p in re.findall(r"{(\w+)}", path) if p not in NOT_RECORDS]
        if not params or params == ["user_id"]:  # users are not patient records (see the cross-site matrix)
            continue
        if path == "/dicomweb/studies/{study_uid}":  # STOW: the UID names a study to store into, not one to read
            methods = methods - {"post"}
        for method in sorted(m.upper() for m in methods if m.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}):
            out.append((method, path, params))
    return out


def _url(template: str, params: list[str], ids: dict[str, str]) -> str:
    for name in params:
        template = template.replace(f"{{{name}}}", ids.get(name, MISSING_ID))
    return template


def _call(client: TestClient, method: str, template: str, url: str, headers: dict[str, str]) -> Any:
    kwargs = _with_files(BODIES.get((method, template), {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}))
    return client.request(method, url, headers=headers, **kwargs)


def _norm(text: str, url: str) -> str:
    for value in re.findall(r"[0-9a-f]{32}", url):
        text = text.replace(value, "<id>")
    return text


def test_every_route_and_page_forgets_a_deleted_patient(
    client: TestClient, db: Session, world: World, settings: Settings
) -> None:
    app = client.app
    blobs = app.state.blobs
    routes = patient_routes(app)
    assert ("GET", "/api/v1/studies/{study_id}/report.fhir.json", ["study_id"]) in routes
    assert ("GET", "/studies/{study_id}", ["study_id"]) in routes  # web pages are walked too
    missing = sorted({p for _, _, params in routes for p in params} - set(records_of(db, world.a, blobs)))
    assert not missing, f"add a record for path parameters {missing} in tests/utils/records.py"
    clinician = world.a.headers["clinician"]

    # while the patient lives, each route reaches the record (its answer differs from a made-up id's)
    unreached = []
    for method, template, params in routes:
        fresh = _site_world(db, settings)  # a fresh patient per route: DELETE and sign-off change state
        ids = records_of(db, fresh, blobs)
        real = _call(client, method, template, _url(template, params, ids), fresh.headers["clinician"])
        fake = _call(client, method, template, _url(template, params, {}), fresh.headers["clinician"])
        if (real.status_code, _norm(real.text, _url(template, params, ids))) == (
            fake.status_code,
            _norm(fake.text, _url(template, params, {})),
        ):
            unreached.append(f"{method} {template}: {real.status_code} {real.text[:100]!r}")
    assert not unreached, "the walk must reach the record before deletion:\n" + "\n".join(unreached)

    # delete the patient through the API, then every route answers as for ids that never existed
    ids = records_of(db, world.a, blobs)
    assert client.delete(f"/api/v1/patients/{ids['patient_id']}", headers=world.a.headers["admin"]).status_code == 204
    leaks = []
    for method, template, params in routes:
        for role in ROLES:
            headers = world.a.headers[role]
            real_url, fake_url = _url(template, params, ids), _url(template, params, {})
            got = _call(client, method, template, real_url, headers)
            ref = _call(client, method, template, fake_url, headers)
            if got.status_code < 400 or (got.status_code, _norm(got.text, real_url)) != (
                ref.status_code,
                _norm(ref.text, fake_url),
            ):
                leaks.append(f"{role} {method} {template}: {got.status_code} {got.text[:100]!r} vs {ref.status_code}")
    assert not leaks, "a deleted patient's record answered:\n" + "\n".join(leaks)

    # and no list shows it
    for role in ROLES:
        h = world.a.headers[role]
        studies = client.get("/api/v1/studies", params={"limit": 200}, headers=h).json()["items"]
        assert ids["study_id"] not in {s["id"] for s in studies}
        patients = client.get("/api/v1/patients", params={"limit": 200}, headers=h).json()["items"]
        assert ids["patient_id"] not in {p["id"] for p in patients}
        by_patient = client.get("/api/v1/studies", params={"patient_id": ids["patient_id"]}, headers=h)
        assert (by_patient.status_code, by_patient.json()["detail"]) == (404, "patient not found")
    worklist = client.get("/worklist", headers=clinician)
    assert worklist.status_code == 200 and world.a.patient.pseudonym not in worklist.text
