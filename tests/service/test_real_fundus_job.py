"""A job analysis through the API with the real bundled ``models/fundus-odir`` model on real ODIR photographs:
COMPLETE, 8 findings with the risk band, Grad-CAM overlays for every positive finding, and the band in the PDF.

Skips with a reason while the bundled model or the shared ODIR images are absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import shared_data_path
from tests.service.conftest import TEST_SECRET
from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.config import Settings
from vitalens.data.odir import ODIR_LABELS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.realdata]

#: The bundled models (``VITALENS_TEST_MODELS_DIR`` points the test at a freshly trained artifact instead).
MODELS = Path(os.environ.get("VITALENS_TEST_MODELS_DIR") or Path(__file__).resolve().parents[2] / "models")
PATIENT = "11"  # ODIR patient with diabetic and hypertensive retinopathy (both eyes), 60 years


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if not (MODELS / "fundus-odir" / "card.json").is_file():
        pytest.skip(f"bundled model absent: {MODELS / 'fundus-odir'} (trained separately; lands later)")
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=20)


def test_real_fundus_job_end_to_end(client, app, world, db_engine) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report text")
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough for the real model (the job code is the same)")
    images = shared_data_path("fundus", "odir", "images")
    left, right = images / f"{PATIENT}_left.jpg", images / f"{PATIENT}_right.jpg"
    if not (left.is_file() and right.is_file()):
        pytest.skip(f"ODIR images of patient {PATIENT} absent under {images}")
    h = world.a.headers["clinician"]

    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-05-01", "age_years": "60"},
        files={
            "fundus_left": (left.name, left.read_bytes(), "image/jpeg"),
            "fundus_right": (right.name, right.read_bytes(), "image/jpeg"),
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    study = r.json()

    r = client.post(f"/api/v1/studies/{study['id']}/analyses", json={"analyzers": ["fundus.odir"]}, headers=h)
    assert r.status_code == 202, r.text
    assert app.state.jobs.wait(300), "the analysis did not finish in 300 s"
    analysis = client.get(r.json()["href"], headers=h).json()

    assert analysis["status"] == "COMPLETE", analysis["error"]
    assert [s["name"] for s in analysis["stages"]] == ["validate", "fundus.odir", "report"]
    assert all(s["status"] == "COMPLETE" for s in analysis["stages"])
    findings = analysis["findings"]
    assert sorted(f["code"] for f in findings) == sorted(ODIR_LABELS)
    assert all(0.0 <= f["probability"] <= 1.0 and f["threshold"] is not None for f in findings)
    bands = {f["band"] for f in findings}
    assert len(bands) == 1 and None not in bands, bands  # one analysis band, on every finding
    band = bands.pop()

    positive = {f["code"] for f in findings if f["positive"]}
    explained = {(e["target"], e["input_name"]) for e in analysis["explanations"]}
    for code in positive:
        assert {(code, "fundus_left"), (code, "fundus_right")} <= explained, (code, explained)
    assert all("cam" in e["method"].lower() for e in analysis["explanations"])
    for e in analysis["explanations"][:2]:
        png = client.get(e["overlay_href"], headers=h)
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

    r = client.get(f"/api/v1/studies/{study['id']}/report.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    import io

    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    text = re.sub(r"\s+", " ", text)
    assert f"band: {band}".lower() in text.lower(), text[:800]  # the summary line: "Eyes → heart: Band: Medium"
    assert DECISION_SUPPORT_NOTICE.split(":")[0].lower() in text.lower()
