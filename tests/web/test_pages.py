"""Web pages without a browser: redirects, first-run set-up, per-site 404 pages, and the SVG charts' numbers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vitalens.web.charts import Bar, TimelinePoint, probability_bars_svg, timeline_svg

SECRET = "web-test-secret-0123456789-abcdefghijklmnopqrs"  # noqa: S105
PASSWORD = "correct horse battery"  # noqa: S105


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    from vitalens.config import Settings
    from vitalens.service.app import create_app

    settings = Settings(environment="test", secret_key=SECRET, data_dir=tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


def _login(client: TestClient, email: str) -> None:
    r = client.post("/api/v1/auth/session", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_first_run_setup_then_login_and_pages(client: TestClient) -> None:
    r = client.get("/worklist", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fworklist")
    assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
    r = client.post("/setup", json={"email": "a@x.example", "password": PASSWORD, "site_name": "North"})
    assert r.status_code == 201
    again = client.post("/setup", json={"email": "b@x.example", "password": PASSWORD, "site_name": "N2"})
    assert again.status_code == 409
    assert client.get("/setup", follow_redirects=False).headers["location"] == "/login"
    _login(client, "a@x.example")
    # the first account is the instance administrator: its home is the admin page, and it reads no patient record
    assert client.get("/", follow_redirects=False).headers["location"] == "/admin"
    for path in ("/glossary", "/admin"):
        assert client.get(path).status_code == 200, path
    for path in ("/worklist", "/studies/new"):
        refused = client.get(path)
        assert refused.status_code == 403 and "Not allowed" in refused.text, path
    csrf = {"X-CSRF-Token": client.cookies.get("vitalens_csrf")}
    body = {"email": "c@x.example", "password": PASSWORD, "role": "clinician"}
    assert client.post("/api/v1/users", json=body, headers=csrf).status_code == 201
    _login(client, "c@x.example")
    for path in ("/worklist", "/studies/new", "/glossary"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Decision support" in page.text
        assert "<script>" not in page.text  # the CSP allows no inline scripts
    assert client.get("/admin").status_code == 403
    from vitalens.web.views import missing_analyzer_slots

    new_page = client.get("/studies/new").text
    assert ("No analyzer yet: OCT" in new_page) == (not missing_analyzer_slots()["oct"])


def test_other_sites_study_is_a_404_page(client: TestClient) -> None:
    client.post("/setup", json={"email": "a@x.example", "password": PASSWORD, "site_name": "North"})
    _login(client, "a@x.example")
    csrf = {"X-CSRF-Token": client.cookies.get("vitalens_csrf")}
    south = client.post("/api/v1/sites", json={"name": "South"}, headers=csrf).json()
    for email, site in (("n@x.example", None), ("s@x.example", south["id"])):
        body = {"email": email, "password": PASSWORD, "role": "clinician", "site_id": site}
        assert client.post("/api/v1/users", json=body, headers=csrf).status_code == 201
    _login(client, "n@x.example")
    csrf = {"X-CSRF-Token": client.cookies.get("vitalens_csrf")}
    patient = client.post("/api/v1/patients", json={"pseudonym": "P-1"}, headers=csrf).json()
    study = client.post(
        "/api/v1/studies", data={"patient_id": patient["id"], "study_date": "2024-05-01"}, headers=csrf
    ).json()
    assert client.get(f"/studies/{study['id']}").status_code == 200
    assert client.get(f"/patients/{patient['id']}").status_code == 200
    _login(client, "s@x.example")
    for path in (f"/studies/{study['id']}", f"/studies/{study['id']}/print", f"/patients/{patient['id']}"):
        r = client.get(path)
        assert r.status_code == 404 and "Not found" in r.text, path
    assert "P-1" not in client.get("/worklist").text
    assert client.get("/admin").status_code == 403


def test_bars_sorted_with_threshold_positions() -> None:
    svg = probability_bars_svg(
        [Bar("A", 0.25, 0.5, False), Bar("B", 0.75, 0.5, True)], width=600, label_w=250, row_h=26
    )
    assert svg.index(">B</text>") < svg.index(">A</text>")  # highest first
    plot_w = 600 - 250 - 70
    assert f'width="{0.75 * plot_w:.1f}"' in svg and f'width="{0.25 * plot_w:.1f}"' in svg
    assert svg.count('class="threshold"') == 2 and f'x1="{250 + 0.5 * plot_w:.1f}"' in svg
    assert "75% ▲" in svg and "B 75% (threshold 50%, above)" in svg


def test_stacked_bars_put_each_label_above_a_full_width_bar() -> None:
    """The phone layout: no label column, each label on its own line above its bar, the same scale and ticks."""
    import re

    svg = probability_bars_svg(
        [Bar("A long finding name", 0.25, 0.5, False), Bar("B", 0.75, 0.5, True)], width=360, stacked=True
    )
    plot_w = 360 - 14 - 70  # a 14 px margin keeps the "0%" tick label on the chart
    assert 'class="chart bars stacked"' in svg and svg.index(">B</text>") < svg.index(">A long finding name</text>")
    assert f'width="{0.75 * plot_w:.1f}"' in svg and f'width="{0.25 * plot_w:.1f}"' in svg
    labels = [float(y) for y in re.findall(r'<text class="label" x="14" y="([0-9.]+)"', svg)]
    bars = [float(y) for y in re.findall(r'<rect class="bar [a-z]+" x="14" y="([0-9.]+)"', svg)]
    assert len(labels) == len(bars) == 2 and all(ly < by for ly, by in zip(labels, bars, strict=True))
    assert f'x1="{14 + 0.5 * plot_w:.1f}"' in svg and "75% ▲" in svg
    assert '<text class="axis" x="14.0"' in svg  # the 0% tick, centred 14 px in


def test_a_page_with_two_layouts_keeps_distinct_ids() -> None:
    import re
    from types import SimpleNamespace

    from vitalens.web.views import findings_chart_svg

    f = SimpleNamespace(label="Glaucoma", code="G", probability=0.6, threshold=0.5, positive=True, input_name=None)
    both = findings_chart_svg([f], value="Anomaly score") or ""
    assert 'class="chart bars bars-wide"' in both and 'class="chart bars stacked bars-narrow"' in both
    ids = re.findall(r' id="([^"]+)"', both)
    assert len(ids) == 4 and len(set(ids)) == 4
    assert both.count("<title id=") == 2 and "Anomaly score of each finding" in both


def test_timeline_links_each_point_and_handles_empty() -> None:
    assert "No analysed studies" in timeline_svg([])
    pts = [
        TimelinePoint("D", date(2024, 1, 1), 0.2, "/studies/a"),
        TimelinePoint("D", date(2024, 7, 1), 0.6, "/studies/b"),
    ]
    svg = timeline_svg(pts)
    assert svg.count('<circle class="pt"') == 2 and 'href="/studies/a"' in svg and 'href="/studies/b"' in svg
    assert "<polyline" in svg
