"""The analysis, annotation, feedback and report routes end to end on the app (in-process jobs), per backend:
202 + job, stages, PARTIAL, cross-site 404s, audit events, annotation versions, feedback, sign-off, PDF text,
readiness and metrics.
"""

from __future__ import annotations

import hashlib
import io

import pytest

from tests.service._analysis_fakes import jpeg_bytes
from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.store import AuditEvent, Input

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fake_analyzers")]


def _add_fundus(app, db, study, value: int = 200, size: int = 96) -> dict[str, str]:
    ids = {}
    for slot in ("fundus_left", "fundus_right"):
        data = jpeg_bytes(value, size)
        row = Input(
            study_id=study.id,
            slot=slot,
            modality="fundus",
            eye=slot.split("_")[1],
            filename=f"{slot}.jpg",
            content_sha256=hashlib.sha256(data).hexdigest(),
            media_type="image/jpeg",
            size_bytes=len(data),
            blob_key=app.state.blobs.put(data),
            width=size,
            height=size,
        )
        db.add(row)
        db.flush()
        ids[slot] = row.id
    study.age_years = 61
    db.commit()
    return ids


def _run(client, app, study_id, headers, analyzers):
    r = client.post(f"/api/v1/studies/{study_id}/analyses", json={"analyzers": analyzers}, headers=headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["job_id"] == body["id"] and body["status"] == "PENDING"
    if "retry-after" in r.headers:  # the poll hint, unless the fast fake already finished when it was computed
        assert 1 <= int(r.headers["retry-after"]) <= 30
    assert app.state.jobs.wait(30)
    r = client.get(body["href"], headers=headers)
    assert r.status_code == 200, r.text
    assert "retry-after" not in r.headers  # final: nothing to wait for
    return r.json()


def _events(db, action, record_id=None):
    q = db.query(AuditEvent).filter(AuditEvent.action == action)
    if record_id:
        q = q.filter(AuditEvent.record_id == record_id)
    db.expire_all()
    return q.count()


def test_analysis_lifecycle_review_signoff_and_report(client, app, db, world) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report text")
    h, other = world.a.headers["clinician"], world.b.headers["clinician"]
    study = world.a.study
    inputs = _add_fundus(app, db, study)

    # unknown analyzer: a 422 naming the field and the closest name (the route exists; the body is wrong)
    r = client.post(f"/api/v1/studies/{study.id}/analyses", json={"analyzers": ["test.ecko"]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "analyzers"
    assert r.json()["detail"].startswith("analyzers: Unknown analyzer 'test.ecko'. Did you mean 'test.echo'?")
    # another site's study is invisible
    r = client.post(f"/api/v1/studies/{study.id}/analyses", json={"analyzers": ["test.echo"]}, headers=other)
    assert r.status_code == 404

    a = _run(client, app, study.id, h, ["test.echo", "test.boom"])
    assert a["status"] == "PARTIAL" and "test.boom failed: RuntimeError: model exploded" in a["error"]
    assert [s["name"] for s in a["stages"]] == ["validate", "test.echo", "test.boom", "report"]
    # each stage in words for the page (an analyzer stage by its section title, from its contract)
    from vitalens.reports.sections import section_heading

    assert [s["title"] for s in a["stages"]] == [
        "Checking the inputs",
        section_heading("test.echo").title,
        section_heading("test.boom").title,
        "Writing the report",
    ]
    assert all(s["duration_ms"] is not None for s in a["stages"])
    assert a["stages"][1]["model_version"] == "0.0.1" and a["stages"][1]["demonstration"] is True
    assert a["notice"] == DECISION_SUPPORT_NOTICE
    finding = a["findings"][0]
    assert finding["code"] == "D" and finding["probability"] == pytest.approx(200 / 255, abs=0.01)
    overlay = client.get(a["explanations"][0]["overlay_href"], headers=h)
    assert overlay.status_code == 200 and overlay.content.startswith(b"\x89PNG")
    assert client.get(a["explanations"][0]["overlay_href"], headers=other).status_code == 404
    assert client.get(f"/api/v1/analyses/{a['id']}", headers=other).status_code == 404
    assert _events(db, "analysis.create", a["id"]) == 1 and _events(db, "analysis.read", a["id"]) >= 1

    # annotations: box, polygon, brush; out-of-image refused; versions on edit; cross-site 404
    url = f"/api/v1/inputs/{inputs['fundus_left']}/annotations"
    r = client.post(url, json={"shape": "box", "geometry": {"x0": 10, "y0": 10, "x1": 200, "y1": 40}}, headers=h)
    assert r.status_code == 422 and "outside the image 96x96" in r.json()["detail"]
    r = client.post(
        url,
        json={"shape": "box", "geometry": {"x0": 10, "y0": 10, "x1": 50, "y1": 40}, "label": "haemorrhage"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    box = r.json()
    assert (
        client.post(
            url, json={"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 5, "y1": 5}}, headers=other
        ).status_code
        == 404
    )
    r = client.post(url, json={"shape": "polygon", "geometry": {"points": [[1, 1], [30, 2], [9, 20]]}}, headers=h)
    assert r.status_code == 201
    r = client.post(
        url,
        json={
            "shape": "brush",
            "label": "drusen",
            "geometry": {"strokes": [{"points": [[20, 20], [30, 24]], "radius": 3}]},
        },
        headers=h,
    )
    assert r.status_code == 201 and r.json()["shape"] == "mask" and r.json()["has_mask"]
    brush = r.json()
    r = client.put(f"/api/v1/annotations/{box['id']}", json={"label": "microaneurysm"}, headers=h)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["root_id"] == box["id"]
    assert client.put(f"/api/v1/annotations/{box['id']}", json={"label": "x"}, headers=other).status_code == 404
    versions = client.get(f"/api/v1/annotations/{box['id']}/versions", headers=h).json()
    assert [(v["version"], v["label"], v["is_current"]) for v in versions] == [
        (1, "haemorrhage", False),
        (2, "microaneurysm", True),
    ]
    assert client.delete(f"/api/v1/annotations/{brush['id']}", headers=h).status_code == 204
    listed = client.get(f"/api/v1/studies/{study.id}/annotations", headers=h).json()
    assert sorted(x["shape"] for x in listed) == ["box", "polygon"]
    assert client.get(f"/api/v1/studies/{study.id}/annotations", headers=other).status_code == 404
    assert _events(db, "annotation.update", box["id"]) == 1 and _events(db, "annotation.delete") >= 1

    # feedback: correct needs corrected_positive; confirm; cross-site 404
    furl = f"/api/v1/findings/{finding['id']}/feedback"
    r = client.post(furl, json={"action": "correct"}, headers=h)
    assert r.status_code == 422 and "corrected_positive" in r.json()["detail"]
    assert client.post(furl, json={"action": "confirm"}, headers=other).status_code == 404
    r = client.post(furl, json={"action": "correct", "corrected_positive": False, "comment": "artefact"}, headers=h)
    assert r.status_code == 201 and r.json()["corrected_label"] == "D"
    fb = client.get(f"/api/v1/analyses/{a['id']}/feedback", headers=h).json()
    assert [x["action"] for x in fb] == ["correct"]

    # draft report, sign-off, signed report pinned
    assert client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=other).status_code == 404
    r = client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    r = client.post(f"/api/v1/studies/{study.id}/signoff", json={"note": "refer to eye clinic"}, headers=h)
    assert r.status_code == 201, r.text
    signed = r.json()
    assert client.post(f"/api/v1/studies/{study.id}/signoff", json={}, headers=h).status_code == 409
    pdf = client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content
    assert hashlib.sha256(pdf).hexdigest() == signed["content_sha256"]
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in (
        world.a.patient.pseudonym,
        "Diabetic retinopathy",
        "test.echo-tiny",
        "0.0.1",
        "DEMONSTRATION MODEL",
        "corrected to negative",
        "microaneurysm",
        "Signed off by",
        "refer to eye clinic",
        "test.boom",
        "model exploded",
        " ".join(DECISION_SUPPORT_NOTICE.split()),
    ):
        assert expected in text, expected
    fhir = client.get(f"/api/v1/studies/{study.id}/report.fhir.json", headers=h).json()
    assert fhir["status"] == "final" and fhir["subject"]["display"] == world.a.patient.pseudonym
    assert _events(db, "report.sign") >= 1 and _events(db, "report.read", study.id) >= 2


def test_failed_and_all_applicable(client, app, db, world) -> None:
    h = world.a.headers["clinician"]
    study = world.a.study
    r = client.post(f"/api/v1/studies/{study.id}/analyses", json={}, headers=h)
    assert r.status_code == 422 and "no analyzer applies" in r.json()["detail"]
    _add_fundus(app, db, study)
    assert _run(client, app, study.id, h, ["test.boom"])["status"] == "FAILED"
    r = client.post(
        f"/api/v1/studies/{study.id}/analyses", json={"analyzers": ["test.echo"], "job_key": "k-1"}, headers=h
    )
    again = client.post(
        f"/api/v1/studies/{study.id}/analyses", json={"analyzers": ["test.echo"], "job_key": "k-1"}, headers=h
    )
    assert r.status_code == 202 and again.json()["id"] == r.json()["id"]
    assert app.state.jobs.wait(30)


def test_job_keys_are_scoped_to_the_study_and_never_leak_across_sites(client, app, db, world) -> None:
    """Before: the same key on a second study of the site, or on another site's study, answered 500 (UNIQUE
    constraint failed: analyses.job_key), and the 202/500 difference told site B that site A had used the key."""
    from tests.utils import factories as f

    h, hb = world.a.headers["clinician"], world.b.headers["clinician"]
    second = f.create_study(db, patient=world.a.patient)
    for study in (world.a.study, second, world.b.study):
        _add_fundus(app, db, study)

    def submit(study, headers):
        return client.post(
            f"/api/v1/studies/{study.id}/analyses",
            json={"analyzers": ["test.echo"], "job_key": "visit-7"},
            headers=headers,
        )

    first = submit(world.a.study, h)
    assert first.status_code == 202
    assert submit(world.a.study, h).json()["id"] == first.json()["id"]  # same study: the same job (idempotent)
    reused = submit(second, h)
    assert (reused.status_code, reused.json()["detail"]) == (
        409,
        "job_key 'visit-7' was already used for another study of your site; use a new key",
    )
    other_site = submit(world.b.study, hb)  # another site's namespace: as if the key had never been used
    assert other_site.status_code == 202 and other_site.json()["id"] != first.json()["id"]
    assert app.state.jobs.wait(30)


def test_health_ready_metrics(client, app) -> None:
    assert client.get("/health").json()["status"] == "ok"
    r = client.get("/ready")
    body = r.json()
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] and body["checks"]["broker"]["backend"] == "inprocess"
    assert "analyzers" in body["checks"]["models"]
    assert r.status_code == (200 if body["ready"] else 503)
    text = client.get("/metrics").text
    assert "vitalens_http_requests_total" in text and 'route="/ready"' in text
    assert "vitalens_analyses_finished_total" in text
