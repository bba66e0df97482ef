"""A plug-in analyzer's render blocks reach the results page and the PDF with no edit in web/ or reports/: its
human title and the name beneath, its findings, and a three-panel view (original | heat map alone | overlay)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.service._analysis_fakes import EchoAnalyzer
from tests.service.test_analyses_api import _add_fundus, _run
from tests.utils.registry import temporary_analyzer
from vitalens.analyzers import Findings, Narrative, ThreePanel
from vitalens.domain import InputName, Modality

pytestmark = pytest.mark.integration


def test_plugin_blocks_render_on_page_and_pdf(client, app, db, world) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the report")
    h = world.a.headers["clinician"]
    study = world.a.study
    ids = _add_fundus(app, db, study, value=200, size=96)
    render = (Findings(title="Brightness finding"), ThreePanel(title="Three panels", slot="fundus_left"), Narrative())
    with temporary_analyzer(
        "test.panels",
        EchoAnalyzer,
        title="Brightness → panels",
        modality=Modality.FUNDUS,
        inputs=(InputName.FUNDUS_LEFT,),
        render=render,
    ):
        analysis = _run(client, app, study.id, h, ["test.panels"])
        assert analysis["status"] == "COMPLETE", analysis["error"]
        (e,) = analysis["explanations"]
        page = client.get(f"/studies/{study.id}", headers=h).text
        pdf = client.get(f"/api/v1/studies/{study.id}/report.pdf", headers=h)
    assert ">Brightness → panels</h2>" in page and "<small>test.panels · test.echo-tiny version 0.0.1" in page
    assert "Brightness finding" in page and "Diabetic retinopathy" in page and "echo explanation" in page
    assert 'class="pair three-panel"' in page
    original = f"/api/v1/studies/{study.id}/inputs/{ids['fundus_left']}/content"
    for src in (original, f"/api/v1/explanations/{e['id']}/heatmap.png", e["overlay_href"]):
        assert src in page, src
    heat = client.get(f"/api/v1/explanations/{e['id']}/heatmap.png", headers=h)
    assert heat.status_code == 200
    img = Image.open(io.BytesIO(heat.content))
    assert img.size == (96, 96)  # in the input's pixels
    # the fake's constant 0.5 map, colour-coded: every pixel the colormap's middle colour
    assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) == 1
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Brightness → panels" in text and "test.panels · test.echo-tiny version 0.0.1" in text
    # the caption in clinical words: the eye, the explained finding's name, the method
    assert "Three panels" in text and "Left eye (OS): Diabetic retinopathy — constant" in text
    assert "Original Heat map Overlay" in text  # the three panels side by side, captioned
    images = [img for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages for img in page.images]
    # ReportLab stores a picture once however often it is drawn: the input (both thumbnails, the original panel),
    # the map alone and the overlay
    assert len(images) == 3
