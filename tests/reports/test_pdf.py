"""The PDF report renders and its text carries what a clinician signs: pseudonym, findings, models, notice."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.domain import Measurement
from vitalens.reports import (
    ReportAnalysis,
    ReportAnnotation,
    ReportFigure,
    ReportFinding,
    ReportImage,
    ReportInput,
    ReportSignoff,
    StudyReport,
    build_study_report,
)

pypdf = pytest.importorskip("pypdf", reason="pypdf (dev dependency) is needed to read the PDF text")


def _png(h: int = 40, w: int = 60) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def report() -> StudyReport:
    return StudyReport(
        study_id="st-123",
        pseudonym="P-7F3A",
        site="North Clinic",
        age_years=57,
        sex="female",
        inputs=[
            ReportInput(
                name="fundus_left",
                kind="image/png 60x40",
                image=ReportImage(title="fundus_left", data=_png()),
                overlays=[ReportImage(title="Grad-CAM D", data=_png(), caption="diabetic retinopathy")],
            )
        ],
        analyses=[
            ReportAnalysis(
                analyzer="fundus.odir",
                model_name="fundus-odir-demo",
                model_version="0.3.1",
                demonstration=True,
                trained_on="ODIR-5K (real, 3500 patients)",
                band="Medium",
                proxies={"hypertension": 0.41},
                findings=[
                    ReportFinding(
                        code="D",
                        name="Diabetic retinopathy",
                        probability=0.83,
                        threshold=0.4,
                        positive=True,
                        review="confirmed",
                    ),
                    ReportFinding(
                        code="G",
                        name="Glaucoma",
                        probability=0.12,
                        threshold=0.3,
                        positive=False,
                        review="corrected",
                        corrected_positive=True,
                        review_note="cup/disc 0.7",
                    ),
                ],
            ),
            ReportAnalysis(
                analyzer="ecg.intervals",
                model_name="ecg-intervals",
                model_version="1.0.0",
                demonstration=False,
                measurements=[
                    Measurement(
                        name="QTc (Bazett)", value=452.0, unit="ms", reference_low=350, reference_high=450, flag="high"
                    ),
                    Measurement(name="AVR", value=0.454368, unit="1", reference_low=0.6, reference_high=0.8),
                    Measurement(name="fractal dimension", value=1.34731, unit="1", reference_low=1.387),
                ],
            ),
            ReportAnalysis(
                analyzer="ecg.ptbxl",
                model_name="ecg-ptbxl-demo",
                model_version="0.1.0",
                tier="Moderate",
                findings=[ReportFinding(code="MI", name="Myocardial infarction", probability=0.4, positive=True)],
                figures=[
                    ReportFigure(
                        slot="ecg", target="MI", method="saliency", image=ReportImage(title="sheet", data=_png(80, 160))
                    )
                ],
            ),
        ],
        annotations=[
            ReportAnnotation(input_name="fundus_left", kind="box", label="haemorrhage", author="dr.a", version=2)
        ],
        signoff=ReportSignoff(
            clinician="Dr Ada", signed_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC), note="refer to ophthalmology"
        ),
    )


def test_pdf_text_carries_every_section(report: StudyReport) -> None:
    pdf = build_study_report(report)
    assert pdf.startswith(b"%PDF-")
    text = " ".join(_text(pdf).split())
    for expected in (
        "P-7F3A",
        "st-123",
        "Diabetic retinopathy",
        "0.830",
        "Glaucoma",
        "corrected to positive",
        "fundus-odir-demo",
        "0.3.1",
        "DEMONSTRATION MODEL",
        "Demonstration models",
        "ecg-intervals",
        "1.0.0",
        "QTc (Bazett)",
        "452",
        "350–450",
        "0.4544",  # four significant digits: an AVR is not rounded to 0.5, nor its reference to 1–1
        "0.6–0.8",
        "1.347",
        "≥ 1.387",
        "Medium",
        "Moderate",
        "Hypertension proxy",
        "0.41",
        "Eyes → heart",  # the contracts' human titles, the analyzer name and model version beneath
        "fundus.odir · fundus-odir-demo version 0.3.1",
        "ECG intervals",
        "12-lead ECG",
        "12-lead ECG: Myocardial infarction — saliency",  # the attribution sheet drawn by the ecg_attribution block
        "haemorrhage",
        "Signed off by Dr Ada",
        "refer to ophthalmology",
        "Grad-CAM D",
    ):
        assert expected in text, expected
    notice = " ".join(DECISION_SUPPORT_NOTICE.split())
    assert notice in text


def test_unsigned_report_says_draft_and_no_demo_banner() -> None:
    report = StudyReport(
        study_id="s2",
        pseudonym="P-1",
        analyses=[ReportAnalysis(analyzer="ecg.ptbxl", demonstration=False, model_version="2")],
    )
    text = " ".join(_text(build_study_report(report)).split())
    assert "Not signed off" in text
    assert "Demonstration models" not in text
    assert "DEMONSTRATION MODEL" not in text


def test_broken_image_does_not_break_the_report(report: StudyReport) -> None:
    report.inputs[0].overlays.append(ReportImage(title="broken", data=b"not an image"))
    assert build_study_report(report).startswith(b"%PDF-")
