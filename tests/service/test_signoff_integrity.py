"""Sign-off integrity: a signed study is read-only, changes go through an amendment with a reason, every signed
version stays retrievable as signed, sign-off with unreviewed findings needs confirmation and records the counts,
and a site setting can require every positive finding to be reviewed."""

from __future__ import annotations

import hashlib
import io

import pytest

from tests.service.test_analyses_api import _add_fundus, _events, _run
from vitalens.store import Report

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fake_analyzers")]


def _analysed(client, app, db, world, value: int = 200):
    h = world.a.headers["clinician"]
    study = world.a.study
    inputs = _add_fundus(app, db, study, value=value)
    a = _run(client, app, study.id, h, ["test.echo"])
    return h, study, inputs, a


def _text(pdf: bytes) -> str:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report text")
    return " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).split())


def test_unreviewed_findings_need_confirmation_and_the_count_is_recorded(client, app, db, world) -> None:
    h, study, _, a = _analysed(client, app, db, world)
    assert len(a["findings"]) == 1 and a["findings"][0]["positive"] is True
    r = client.post(f"/api/v1/studies/{study.id}/signoff", json={"note": "n"}, headers=h)
    assert r.status_code == 409
    assert r.json()["detail"].startswith("1 of 1 findings are unreviewed (1 positive)")
    assert db.query(Report).filter(Report.study_id == study.id).count() == 0  # nothing signed, nothing half-written
    r = client.post(f"/api/v1/studies/{study.id}/signoff", json={"acknowledge_unreviewed": True}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["version"], body["finding_count"], body["reviewed_count"]) == (1, 1, 0)
    assert body["snapshot_sha256"] and body["amends_id"] is None
    text = _text(client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content)
    assert "Findings reviewed before signing: 0 of 1." in text
    assert "report version 1" in text


def test_setting_requires_every_positive_finding_reviewed(client, app, db, world) -> None:
    h, study, _, a = _analysed(client, app, db, world)
    before = app.state.settings
    app.state.settings = before.model_copy(update={"signoff_require_positive_review": True})
    try:
        r = client.post(f"/api/v1/studies/{study.id}/signoff", json={"acknowledge_unreviewed": True}, headers=h)
        assert r.status_code == 409
        assert "1 positive finding(s) are unreviewed" in r.json()["detail"]
        fid = a["findings"][0]["id"]
        assert client.post(f"/api/v1/findings/{fid}/feedback", json={"action": "confirm"}, headers=h).status_code == 201
        r = client.post(f"/api/v1/studies/{study.id}/signoff", json={}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["reviewed_count"] == 1
    finally:
        app.state.settings = before


def test_signed_study_is_read_only_until_an_amendment_with_a_reason(client, app, db, world) -> None:
    h, study, inputs, a = _analysed(client, app, db, world)
    fid = a["findings"][0]["id"]
    assert client.post(f"/api/v1/findings/{fid}/feedback", json={"action": "confirm"}, headers=h).status_code == 201
    v1 = client.post(f"/api/v1/studies/{study.id}/signoff", json={"note": "first"}, headers=h).json()
    v1_pdf = client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content
    assert hashlib.sha256(v1_pdf).hexdigest() == v1["content_sha256"]

    # every write that would change the report is refused with the signer and the way out
    writes = [
        ("post", f"/api/v1/findings/{fid}/feedback", {"action": "correct", "corrected_positive": False}),
        ("post", f"/api/v1/studies/{study.id}/analyses", {"analyzers": ["test.echo"]}),
        (
            "post",
            f"/api/v1/inputs/{inputs['fundus_left']}/annotations",
            {"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 9, "y1": 9}, "label": "haemorrhage"},
        ),
    ]
    for method, url, body in writes:
        r = getattr(client, method)(url, json=body, headers=h)
        assert r.status_code == 409, (url, r.text)
        assert "is read-only; open an amendment with a reason" in r.json()["detail"]
    hist = client.get(f"/api/v1/studies/{study.id}/reports", headers=h).json()
    assert hist["state"] == "signed" and hist["drifted"] is False and [x["version"] for x in hist["items"]] == [1]

    # an amendment needs a reason; a second one cannot be opened while one is open
    url = f"/api/v1/studies/{study.id}/amendments"
    r = client.post(url, json={"reason": "  x "}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = client.post(url, json={"reason": "finding re-graded on a second look"}, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["version"], r.json()["amends_id"]) == ("draft", 2, v1["id"])
    assert client.post(url, json={"reason": "again and again"}, headers=h).status_code == 409
    assert _events(db, "report.amend", r.json()["id"]) == 1

    # amending: the signed v1 is still what the report serves; the change is accepted now
    assert client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content == v1_pdf
    r = client.post(
        f"/api/v1/findings/{fid}/feedback", json={"action": "correct", "corrected_positive": False}, headers=h
    )
    assert r.status_code == 201
    v2 = client.post(f"/api/v1/studies/{study.id}/signoff", json={"note": "second"}, headers=h)
    assert v2.status_code == 201, v2.text
    v2 = v2.json()
    assert (v2["version"], v2["amends_id"], v2["amendment_reason"]) == (
        2,
        v1["id"],
        "finding re-graded on a second look",
    )
    assert v2["snapshot_sha256"] != v1["snapshot_sha256"]

    # both versions stay retrievable exactly as signed; the current one says it was amended and why
    assert client.get(f"/api/v1/studies/{study.id}/reports/1.pdf", headers=h).content == v1_pdf
    v2_pdf = client.get(f"/api/v1/studies/{study.id}/reports/2.pdf", headers=h).content
    assert hashlib.sha256(v2_pdf).hexdigest() == v2["content_sha256"]
    assert client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h).content == v2_pdf
    text = _text(v2_pdf)
    assert "Amended after signing. Reason: finding re-graded on a second look" in text
    assert "Version 1: signed by" in text and "corrected to negative" in text
    assert client.get(f"/api/v1/studies/{study.id}/reports/3.pdf", headers=h).status_code == 404
    assert (
        client.get(f"/api/v1/studies/{study.id}/reports/1.pdf", headers=world.b.headers["clinician"]).status_code == 404
    )
    hist = client.get(f"/api/v1/studies/{study.id}/reports", headers=h).json()
    assert hist["state"] == "signed" and [x["version"] for x in hist["items"]] == [1, 2]
    fhir = client.get(f"/api/v1/studies/{study.id}/report.fhir.json", headers=h).json()
    assert fhir["status"] == "amended"


def test_amendment_of_an_unsigned_study_is_refused(client, app, db, world) -> None:
    h, study, _, _ = _analysed(client, app, db, world)
    r = client.post(f"/api/v1/studies/{study.id}/amendments", json={"reason": "nothing signed yet"}, headers=h)
    assert r.status_code == 409 and "not signed off" in r.json()["detail"]
    r = client.post(
        f"/api/v1/studies/{study.id}/amendments",
        json={"reason": "another site"},
        headers=world.b.headers["clinician"],
    )
    assert r.status_code == 404


def test_the_page_shows_the_signer_the_count_and_the_amendment_history(client, app, db, world) -> None:
    h, study, _, a = _analysed(client, app, db, world)
    page = client.get(f"/studies/{study.id}", headers=h).text
    assert "0 of 1 findings reviewed; 1 positive finding not reviewed." in page
    assert 'id="ack-unreviewed"' in page and 'data-action="confirm"' in page
    client.post(
        f"/api/v1/studies/{study.id}/signoff",
        json={"note": "see eye clinic", "acknowledge_unreviewed": True},
        headers=h,
    )
    page = client.get(f"/studies/{study.id}", headers=h).text
    assert "after reviewing 0 of 1 findings" in page and "Note: see eye clinic" in page
    assert "Signed off by <strong>" in page and "(report version 1)" in page
    assert 'data-action="confirm"' not in page and "signed: amend to change" in page  # read-only
    assert 'id="amend"' in page and 'id="signoff"' not in page
    client.post(f"/api/v1/studies/{study.id}/amendments", json={"reason": "second look at the photo"}, headers=h)
    page = client.get(f"/studies/{study.id}", headers=h).text
    assert "Amendment (version 2) open: second look at the photo" in page and 'data-action="confirm"' in page
    assert "Sign the amended report" in page
    fid = a["findings"][0]["id"]
    client.post(f"/api/v1/findings/{fid}/feedback", json={"action": "correct", "corrected_positive": False}, headers=h)
    assert client.post(f"/api/v1/studies/{study.id}/signoff", json={}, headers=h).status_code == 201
    page = client.get(f"/studies/{study.id}", headers=h).text
    assert "Amended after signing" in page and "amended because: second look at the photo" in page
    assert f"/api/v1/studies/{study.id}/reports/1.pdf" in page and f"/api/v1/studies/{study.id}/reports/2.pdf" in page
    assert "after reviewing 1 of 1 findings" in page


def test_print_view_has_the_images_the_signer_and_no_navigation(client, app, db, world) -> None:
    h, study, _, a = _analysed(client, app, db, world)
    client.post(
        f"/api/v1/studies/{study.id}/signoff",
        json={"note": "see eye clinic", "acknowledge_unreviewed": True},
        headers=h,
    )
    page = client.get(f"/studies/{study.id}/print", headers=h).text
    assert '<nav aria-label="Main">' not in page and 'class="top"' not in page
    assert (
        "Signed off by <strong>" in page
        and "after reviewing 0 of 1 findings" in page
        and "Note: see eye clinic" in page
    )
    assert page.count('/content" alt="Original:') == 2  # both eyes
    assert 'scope="rowgroup"' in page  # the review grouped by section
    assert '<nav aria-label="Main">' in client.get(f"/studies/{study.id}", headers=h).text


def test_timeline_has_one_panel_per_section_and_badges_per_study(client, app, db, world) -> None:
    h, study, _, _ = _analysed(client, app, db, world)
    page = client.get(f"/patients/{world.a.patient.id}", headers=h).text
    assert page.count('class="card timeline-panel"') == 1 and 'data-analyzer="test.echo"' in page
    assert f'href="/studies/{study.id}"' in page
