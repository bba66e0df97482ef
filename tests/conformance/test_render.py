"""Every registered analyzer, through the job pipeline onto the results page, the PDF and the FHIR report.

Parametrised over ``list_analyzers()`` (as timm tests every model in ``list_models()``): an analyzer added later is
tested without an edit here. For each: a study of synthetic inputs made from its slots' declarations is analysed by
the job pipeline with the bundled models; its section carries the contract's human title with the analyzer name
beneath, on the page, in the PDF and in the FHIR DiagnosticReport; each finding is rendered; every explanation map is
in the coordinates of its input (image height × width, or the ECG's samples) and drawn on the page and in the PDF.

An analyzer without a bundled model, or one reading a slot the study form does not carry, skips with the reason;
the note (a text slot the study keeps) goes in the form's text field.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from tests.conformance._inputs import synthetic_upload
from tests.service.conftest import TEST_SECRET
from vitalens.analyzers import create_analyzer, get_contract, list_analyzers
from vitalens.config import Settings
from vitalens.reports.sections import Figure

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = Path(__file__).resolve().parents[2] / "models"


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=20)


#: A clinician's note for analyzers of a free-text slot (written with ``PUT /api/v1/studies/{id}/{slot}``).
NOTE = "Chest pain on exertion for two weeks, no fever. Smoker. Father had a myocardial infarction at 55."


def _uploads(name: str, analyzer: object) -> tuple[dict[str, tuple[str, bytes, str]], dict[str, str]]:
    """The synthetic files of every file slot ``name`` reads (all of each any-of group), and the texts of its
    free-text slots."""
    from vitalens.slots import SlotKind

    contract = get_contract(name)
    files, texts = {}, {}
    for i, use in enumerate(contract.uses):
        spec = use.spec
        if spec.source != "upload":
            continue  # age / sex: study and patient fields
        if spec.kind == SlotKind.TEXT:
            texts[spec.name] = NOTE
        elif spec.is_file:
            gates = tuple(contract.quality_gates.get(spec.name, ()))
            files[spec.name] = synthetic_upload(
                spec, contract.limits_for(spec.name), gates=gates, analyzer=analyzer, seed=i
            )
        elif use.required or use.any_of:
            pytest.skip(f"{name} reads {spec.name} ({spec.kind}), which no study route carries")
    return files, texts


def _study_text(name: str) -> dict[str, str]:
    """The study form's text fields for the free-text slots ``name`` reads that a study keeps itself (the note)."""
    from vitalens.slots import SlotKind

    return {
        use.spec.attribute: "Chest pain for two days, no fever. Father had MI."
        for use in get_contract(name).uses
        if use.spec.source == "study" and use.spec.kind == SlotKind.TEXT
    }


@pytest.mark.parametrize("name", list_analyzers())
def test_analyzer_renders_on_page_pdf_and_fhir(name: str, client, app, world, db_engine) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report")
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough: the rendering does not depend on it")
    contract = get_contract(name)
    analyzer = create_analyzer(name, models_dir=MODELS)
    availability = analyzer.availability()
    if not availability.ready:
        pytest.skip(availability.reason)
    files, texts = _uploads(name, analyzer)
    h = world.a.headers["clinician"]
    r = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-05-01", "age_years": "60", **_study_text(name)},
        files=files,
        headers=h,
    )
    assert r.status_code == 201, r.text
    study = r.json()
    inputs = {i["slot"]: i for i in study["inputs"]}
    for slot, text in texts.items():
        put = client.put(f"/api/v1/studies/{study['id']}/{slot}", json={slot: text}, headers=h)
        assert put.status_code == 200, put.text
    r = client.post(f"/api/v1/studies/{study['id']}/analyses", json={"analyzers": [name]}, headers=h)
    assert r.status_code == 202, r.text
    assert app.state.jobs.wait(600), "the analysis did not finish in 600 s"
    analysis = client.get(r.json()["href"], headers=h).json()
    stage = next(s for s in analysis["stages"] if s["name"] == name)
    assert stage["status"] == "COMPLETE", stage.get("error") or analysis["error"]
    findings = [f for f in analysis["findings"] if f["analyzer"] == name]

    # explanations: in the coordinates of their input, each with its picture
    from vitalens.store.models import Explanation

    explained = [e for e in analysis["explanations"] if e["analyzer"] == name]
    with app.state.session_factory() as session:
        for e in explained:
            row = session.get(Explanation, e["id"])
            assert row.overlay_blob_key, f"{name} explanation {e['target']} on {e['input_name']} has no picture"
            if row.heatmap_blob_key is None:
                continue
            heat = np.load(io.BytesIO(app.state.blobs.get(row.heatmap_blob_key)))
            inp = inputs[e["input_name"]]
            if inp["width"] and inp["height"]:
                assert heat.shape[:2] == (inp["height"], inp["width"]), (e["target"], heat.shape)
            else:  # a signal: its time axis is the record's
                assert heat.shape[-1] == inp["meta"]["n_samples"], (e["target"], heat.shape)

    # the results page: the human title, the name and version beneath, each finding, each map
    page = client.get(f"/studies/{study['id']}", headers=h)
    assert page.status_code == 200
    html = page.text
    assert f">{escape(contract.title)}</h2>" in html
    beneath = f"{name} · {stage['model_name']}" if stage.get("model_name") else name
    assert f"<small>{escape(beneath)}" in html
    for f in findings:
        assert escape(f["label"]) in html, f["label"]
    for e in explained:
        assert e["overlay_href"] in html, e

    # the PDF: the same title and name beneath, each finding's name, each map's caption
    pdf = client.get(f"/api/v1/studies/{study['id']}/report.pdf", headers=h)
    assert pdf.status_code == 200
    text = _norm(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages))
    assert contract.title in text and name in text
    for f in findings:
        assert _norm(f["label"]) in text, f["label"]
    labels = {f["code"]: f["label"] for f in findings}
    for e in explained:  # the caption the report code writes (Figure.caption), with the explained finding's name
        figure = Figure(slot=e["input_name"], target=e["target"], method=e["method"], label=labels.get(e["target"], ""))
        assert _norm(figure.caption) in text, e

    # FHIR: a Device naming the title, one Observation per finding under the title
    fhir = client.get(f"/api/v1/studies/{study['id']}/report.fhir.json", headers=h)
    assert fhir.status_code == 200, fhir.text
    contained = fhir.json()["contained"]
    devices = [d for d in contained if d["resourceType"] == "Device" and name in d["type"]["text"]]
    assert devices and contract.title in devices[0]["type"]["text"]
    observations = [
        o
        for o in contained
        if o["resourceType"] == "Observation" and o.get("device", {}).get("reference") == f"#{devices[0]['id']}"
    ]
    assert len([o for o in observations if o.get("interpretation") and "valueQuantity" in o]) >= len(findings)
    assert all(o["category"][0]["text"] == contract.title for o in observations)
