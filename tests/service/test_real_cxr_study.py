"""A real chest radiograph (COVID-19 Radiography sample) through the API with the bundled ``cxr.anomaly`` model:
``POST /api/v1/predict/cxr.anomaly`` answers the score, what the model was fitted on and the Grad-CAM; a study's job
reaches the results page and the PDF in the three-panel view (original | heat map | overlay); a real fundus
photograph sent as a chest X-ray is refused, never scored.

Skips with a reason while the bundled model, its quality gate or the shared images are absent.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from tests.conftest import shared_data_path
from tests.service.conftest import TEST_SECRET
from vitalens.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.realdata]

MODELS = Path(os.environ.get("VITALENS_TEST_MODELS_DIR") or Path(__file__).resolve().parents[2] / "models")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for folder in ("cxr-anomaly", "quality-cxr"):
        if not (MODELS / folder / "card.json").is_file():
            pytest.skip(f"bundled model absent: {MODELS / folder}")
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=20)


def _first(pattern: str, *parts: str) -> Path:
    found = sorted(shared_data_path(*parts).glob(pattern))
    if not found:
        pytest.skip(f"no {pattern} under the shared data {'/'.join(parts)}")
    return found[0]


def test_predict_scores_a_real_radiograph_and_refuses_a_fundus_photograph(client, world, db_engine) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough for the real model (the route is the same)")
    h = world.a.headers["clinician"]
    film = _first("COVID/images/*.png", "cxr", "covid19_radiography_sample")
    r = client.post(
        "/api/v1/predict/cxr.anomaly",
        files={"cxr": (film.name, film.read_bytes(), "image/png")},
        data={"explain": "true"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (finding,) = body["findings"]
    assert finding["code"] == "anomaly" and 0.0 <= finding["probability"] <= 1.0 and finding["calibrated"] is False
    extras = body["extras"]
    assert extras["score_is_probability"] is False and extras["trained_on_normal_images_only"] is True
    assert extras["labelled_images_seen"]["scorer"] == 0 and extras["labelled_images_seen"]["vae"] == 0
    assert "fitted on 300 normal radiographs only" in body["explanation"]
    assert "images" in body["trained_on"] and "patients" not in body["trained_on"]
    (exp,) = body["explanations"]
    assert exp["method"] == "grad-cam" and exp["overlay_png_base64"]

    photo = _first("train_images/*.png", "fundus", "aptos2019")
    refused = client.post(
        "/api/v1/predict/cxr.anomaly", files={"cxr": (photo.name, photo.read_bytes(), "image/png")}, headers=h
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "cxr"
    assert re.search(r"chest radiograph|colour", refused.json()["detail"]), refused.json()


def test_a_study_shows_the_three_panels_on_the_page_and_in_the_pdf(client, app, world, db_engine) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report text")
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough for the real model (the job code is the same)")
    film = _first("Viral Pneumonia/images/*.png", "cxr", "covid19_radiography_sample")
    h = world.a.headers["clinician"]
    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-05-01"},
        files={"cxr": (film.name, film.read_bytes(), "image/png")},
        headers=h,
    )
    assert r.status_code == 201, r.text
    study = r.json()
    r = client.post(f"/api/v1/studies/{study['id']}/analyses", json={"analyzers": ["cxr.anomaly"]}, headers=h)
    assert r.status_code == 202, r.text
    assert app.state.jobs.wait(300), "the analysis did not finish in 300 s"
    analysis = client.get(r.json()["href"], headers=h).json()
    assert analysis["status"] == "COMPLETE", (analysis["error"], analysis["stages"])
    assert [f["code"] for f in analysis["findings"]] == ["anomaly"]

    page = client.get(f"/studies/{study['id']}", headers=h).text
    assert 'class="pair three-panel"' in page and "Grad-CAM over the CLAHE-enhanced radiograph" in page
    assert "normal radiographs only" in page
    assert '<th scope="col">Anomaly score</th>' in page and '<th scope="col">Probability</th>' not in page

    r = client.get(f"/api/v1/studies/{study['id']}/report.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages))
    assert "Grad-CAM over the CLAHE-enhanced radiograph" in text and "Original Heat map Overlay" in text
    assert "normal radiographs only" in text
