"""ECG attributions reach the clinician: a job with the bundled ``ecg.ptbxl`` model on a 250 Hz upload stores each
map on the uploaded record's time axis, and the results page and the PDF both show the 12-lead sheet with it.

Before: the map was stored in the model's 100 Hz, cropped coordinates with no overlay, so neither the page nor the
PDF showed it. Skips while the bundled model is absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from tests.service.conftest import TEST_SECRET
from tests.service.test_studies import ecg_csv
from vitalens.config import Settings
from vitalens.reports.sections import Figure

MODELS = Path(__file__).resolve().parents[2] / "models"
FS, N = 250.0, 2750  # 11 s: resampled to 100 Hz and cropped to the card's central 10 s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if not (MODELS / "ecg-ptbxl" / "card.json").is_file():
        pytest.skip(f"bundled model absent: {MODELS / 'ecg-ptbxl'}")
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=5)


def test_ecg_map_is_on_the_records_axis_and_drawn_on_page_and_pdf(client, app, world, db_engine) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report's images")
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough (the job code is the same)")
    h = world.a.headers["clinician"]
    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-05-01", "age_years": "60"},
        files={"ecg": ("rest.csv", ecg_csv(N, FS), "text/csv")},
        headers=h,
    )
    assert r.status_code == 201, r.text
    study = r.json()
    r = client.post(f"/api/v1/studies/{study['id']}/analyses", json={"analyzers": ["ecg.ptbxl"]}, headers=h)
    assert r.status_code == 202, r.text
    assert app.state.jobs.wait(300), "the analysis did not finish in 300 s"
    analysis = client.get(r.json()["href"], headers=h).json()
    assert analysis["status"] == "COMPLETE", analysis["error"]
    explanations = [e for e in analysis["explanations"] if e["input_name"] == "ecg"]
    assert explanations, "ecg.ptbxl explains at least its most probable abnormal class"
    # Normal is the absence of the abnormal classes: stored without a tier (the API, FHIR and DICOM read it), while
    # each abnormal class keeps its own tier rather than the record's overall one
    tiers = {f["code"]: f["tier"] for f in analysis["findings"] if f["analyzer"] == "ecg.ptbxl"}
    assert tiers.pop("NORM") is None
    assert set(tiers) == {"MI", "STTC", "CD", "HYP"} and all(t in ("Low", "Moderate", "High") for t in tiers.values())

    from vitalens.store.models import Explanation

    with app.state.session_factory() as session:
        row = session.get(Explanation, explanations[0]["id"])
        heat = np.load(io.BytesIO(app.state.blobs.get(row.heatmap_blob_key)))
    assert heat.shape == (12, N)  # the uploaded record's 2750 samples, not the model's 1000
    assert heat[:, 150:2600].max() > 0 and 0.0 <= heat.min() <= heat.max() <= 1.0

    page = client.get(f"/studies/{study['id']}", headers=h)
    assert page.status_code == 200
    for e in explanations:
        assert e["overlay_href"] and e["overlay_href"] in page.text
        assert client.get(f"/api/v1/explanations/{e['id']}/heatmap.png", headers=h).status_code == 404  # no image
        png = client.get(e["overlay_href"], headers=h)
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

    sheet = client.get(f"/studies/{study['id']}/ecg.png?slot=ecg", headers=h)  # the plain sheet, as uploaded
    assert sheet.status_code == 200 and sheet.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"/studies/{study['id']}/ecg.png?slot=ecg" in page.text
    assert client.get(f"/studies/{study['id']}/ecg.png?slot=fundus_left", headers=h).status_code == 404

    pdf = client.get(f"/api/v1/studies/{study['id']}/report.pdf", headers=h)
    assert pdf.status_code == 200
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    images = [img for p in reader.pages for img in p.images]
    assert len(images) >= len(explanations)  # one attributed 12-lead sheet per explained class
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert "12-lead ECG" in text and "ecg.ptbxl" in text  # the contract's title, the name beneath
    labels = {f["code"]: f["label"] for f in analysis["findings"]}
    for e in explanations:  # drawn by the ecg_attribution block, captioned as the report captions maps
        caption = Figure(slot="ecg", target=e["target"], method=e["method"], label=labels[e["target"]]).caption
        assert " ".join(caption.split()) in text
