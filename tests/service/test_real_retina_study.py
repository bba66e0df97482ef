"""A study with a real fundus photograph (APTOS) and a real OCT B-scan (Kermany) through the API with the bundled
models: ``fundus.dr``, ``oct.kermany4`` and ``retina.fusion`` all COMPLETE, the fusion finding beside the
single-modality ones, its virtual-pairs caveat in the result, and the PDF.

Skips with a reason while a bundled model or the shared images are absent.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from tests.conftest import shared_data_path
from tests.service.conftest import TEST_SECRET
from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.realdata]

MODELS = Path(os.environ.get("VITALENS_TEST_MODELS_DIR") or Path(__file__).resolve().parents[2] / "models")
ANALYZERS = ["fundus.dr", "oct.kermany4", "retina.fusion"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for folder in ("fundus-dr", "oct-kermany4", "retina-fusion"):
        if not (MODELS / folder / "card.json").is_file():
            pytest.skip(f"bundled model absent: {MODELS / folder}")
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=20)


def test_fundus_and_oct_study_gets_the_fusion_beside_each_modality(client, app, world, db_engine) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report text")
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough for the real models (the job code is the same)")
    photos = sorted(shared_data_path("fundus", "aptos2019", "train_images").glob("*.png"))
    scans = sorted(shared_data_path("oct").glob("**/CNV-*.jpeg"))
    if not photos or not scans:
        pytest.skip("APTOS photographs or Kermany CNV scans absent under the shared data")
    photo, scan = photos[0], scans[0]
    h = world.a.headers["clinician"]

    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-05-01", "age_years": "61"},
        files={
            "fundus_right": (photo.name, photo.read_bytes(), "image/png"),
            "oct": (scan.name, scan.read_bytes(), "image/jpeg"),
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    study = r.json()

    r = client.post(f"/api/v1/studies/{study['id']}/analyses", json={"analyzers": ANALYZERS}, headers=h)
    assert r.status_code == 202, r.text
    assert app.state.jobs.wait(300), "the analysis did not finish in 300 s"
    analysis = client.get(r.json()["href"], headers=h).json()

    assert analysis["status"] == "COMPLETE", (analysis["error"], analysis["stages"])
    stages = {s["name"]: s["status"] for s in analysis["stages"]}
    assert all(stages[name] == "COMPLETE" for name in ANALYZERS), stages
    by_analyzer: dict[str, list[dict[str, object]]] = {}
    for f in analysis["findings"]:
        by_analyzer.setdefault(str(f["analyzer"]), []).append(f)
    assert set(ANALYZERS) <= set(by_analyzer), set(by_analyzer)
    assert {str(f["code"]) for f in by_analyzer["oct.kermany4"]} == {"CNV", "DME", "DRUSEN", "NORMAL"}
    assert {"0", "1", "2", "3", "4", "RDR"} <= {str(f["code"]) for f in by_analyzer["fundus.dr"]}
    for f in analysis["findings"]:
        assert 0.0 <= float(f["probability"]) <= 1.0  # type: ignore[arg-type]

    # The virtual-pairs statement in the API result and on the results page (the card says it too).
    from vitalens.training.tasks.retina_fusion import VIRTUAL_PAIRS_NOTICE

    fusion_stage = next(s for s in analysis["stages"] if s["analyzer"] == "retina.fusion")
    assert VIRTUAL_PAIRS_NOTICE in fusion_stage["warnings"], fusion_stage
    page = client.get(f"/studies/{study['id']}", headers=h).text
    assert "Trained and tested on VIRTUAL pairs" in page

    r = client.get(f"/api/v1/studies/{study['id']}/report.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages))
    assert "virtual" in text.lower(), text[:1500]
    assert DECISION_SUPPORT_NOTICE.split(":")[0].lower() in text.lower()
