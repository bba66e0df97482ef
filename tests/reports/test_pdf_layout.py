"""The PDF a clinician hands over: a summary first, clinical words, signer and amendments, and no text drawn over
other text or over a picture on any page. Two measures: every text run's box estimated from pypdf's positions and
the font metrics, and every glyph's box as pdfium lays the page out (``tests/reports/pdf_layout.py``), each page
rendered to ``test-artifacts/pdf/*.png`` for a person to look at."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from tests.reports.test_pdf import _png
from vitalens.domain import Measurement
from vitalens.reports import (
    ReportAnalysis,
    ReportAnnotation,
    ReportFigure,
    ReportFinding,
    ReportImage,
    ReportInput,
    ReportSignoff,
    ReportVersion,
    StudyReport,
    build_study_report,
)

pypdf = pytest.importorskip("pypdf", reason="pypdf (dev dependency) reads the text runs of each page")


def _boxes(pdf: bytes) -> list[list[tuple[float, float, float, float, str]]]:
    """Per page, the box (x0, y0, x1, y1, text) of every text run: position from the text and page matrices, width
    from the font's metrics (ReportLab's standard fonts), height from the font size."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    pages = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        runs: list[tuple[float, float, float, float, str]] = []
        starts: list[tuple[float, float]] = []

        def visit(text, cm, tm, font, size, runs=runs, starts=starts):  # noqa: ANN001
            if not text.strip() or font is None:
                return
            a, b, c, d, e, f = (float(v) for v in tm)
            ca, cb, cc, cd, ce, cf = (float(v) for v in cm)
            x = e * ca + f * cc + ce
            y = e * cb + f * cd + cf
            scale = (a**2 + b**2) ** 0.5 * (ca**2 + cb**2) ** 0.5
            name = str(font.get("/BaseFont", "/Helvetica")).lstrip("/")
            try:
                width = stringWidth(text.rstrip("\n"), name, 1.0) * size * scale
            except KeyError:
                width = stringWidth(text.rstrip("\n"), "Helvetica", 1.0) * size * scale
            height = size * scale
            if runs and starts[-1] == (round(x, 1), round(y, 1)):
                # a run continuing the previous one on its line (a font change): pypdf reports the line's start
                x = runs[-1][2]
            else:
                starts.append((round(x, 1), round(y, 1)))
            runs.append((x, y - 0.2 * height, x + width, y + 0.75 * height, text.strip()))

        page.extract_text(visitor_text=visit)
        pages.append(runs)
    return pages


def _overlaps(runs: list[tuple[float, float, float, float, str]], slack: float = 0.6) -> list[str]:
    out = []
    for i, (ax0, ay0, ax1, ay1, at) in enumerate(runs):
        for bx0, by0, bx1, by1, bt in runs[i + 1 :]:
            if min(ax1, bx1) - max(ax0, bx0) > slack and min(ay1, by1) - max(ay0, by0) > slack:
                out.append(f"{at[:40]!r} overlaps {bt[:40]!r}")
    return out


@pytest.fixture
def full_report() -> StudyReport:
    long_name = "Rhythm regularity (RR coefficient of variation)"
    return StudyReport(
        study_id="0f" * 16,
        pseudonym="P-7F3A",
        site="North Clinic",
        study_created_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        age_years=63,
        sex="female",
        inputs=[
            ReportInput(
                name=slot,
                kind="image/png 60x40 px",
                image=ReportImage(title=slot, data=_png()),
                overlays=[ReportImage(title=f"Grad-CAM {c}", data=_png(), caption="fundus.odir") for c in "DCGAH"],
            )
            for slot in ("fundus_right", "fundus_left")
        ],
        analyses=[
            ReportAnalysis(
                analyzer="fundus.odir",
                model_name="fundus-odir-effnet",
                model_version="0.4.0",
                demonstration=True,
                band="Medium",
                proxies={"hypertension": 0.69, "diabetes": 0.41, "atherosclerotic": 0.3, "overall": 0.5},
                findings=[
                    ReportFinding(code="N", name="Normal", probability=0.71, threshold=0.18, positive=True),
                    ReportFinding(
                        code="D",
                        name="Diabetic retinopathy",
                        probability=0.83,
                        threshold=0.56,
                        positive=True,
                        review="corrected",
                        corrected_positive=False,
                        review_note="artefact from a dirty lens " * 4,
                    ),
                ],
                # four maps per eye: a row of three and a short row, with their captions
                figures=[
                    ReportFigure(
                        slot=slot, target=code, method="grad-cam", image=ReportImage(title=code, data=_png(60, 60))
                    )
                    for slot in ("fundus_left", "fundus_right")
                    for code in ("N", "D", "A", "O")
                ],
            ),
            ReportAnalysis(
                analyzer="ecg.ptbxl",
                model_name="ecg-ptbxl-se-resnet1d-small",
                model_version="0.1.0",
                demonstration=False,
                tier="High",
                findings=[
                    ReportFinding(
                        code="CD",
                        name="Conduction disturbance",
                        probability=0.92,
                        threshold=0.36,
                        positive=True,
                        tier="High",
                    ),
                    ReportFinding(
                        code="NORM", name="Normal ECG", probability=0.03, threshold=0.44, positive=False, tier="High"
                    ),
                ],
                figures=[
                    ReportFigure(
                        slot="ecg",
                        target="CD",
                        method="saliency",
                        image=ReportImage(title="sheet", data=_png(120, 400)),
                    )
                ],
            ),
            ReportAnalysis(
                analyzer="ecg.intervals",
                model_name="neurokit2-delineation",
                model_version="0.2.1",
                demonstration=False,
                measurements=[
                    Measurement(name="QRS duration", value=65.0, unit="ms", reference_high=110.0, flag="normal"),
                    Measurement(
                        name="QTc (Bazett)", value=472.04, unit="ms", reference_low=340, reference_high=450, flag="high"
                    ),
                    Measurement(name=long_name, value=0.0412, unit="ratio", reference_high=0.1, flag="normal"),
                ],
            ),
        ],
        annotations=[
            ReportAnnotation(
                input_name="fundus_left",
                kind="box",
                label="haemorrhage",
                note="inferior arcade",
                author="a.very.long.clinician.email.address@north-clinic.example.org",
                version=12,
            )
        ],
        signoff=ReportSignoff(
            clinician="Dr A. Clinician",
            signed_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
            note="Refer to ophthalmology.",
            version=2,
            amends="ab" * 16,
            amendment_reason="diabetic retinopathy re-graded",
            finding_count=2,
            reviewed_count=1,
            history=[ReportVersion(version=1, clinician="Dr B", signed_at=datetime(2026, 11, 30, 12, tzinfo=UTC))],
        ),
    )


def test_no_text_box_overlaps_another_on_any_page(full_report: StudyReport) -> None:
    pages = _boxes(build_study_report(full_report))
    assert pages and all(pages)
    problems = [f"page {i + 1}: {p}" for i, runs in enumerate(pages) for p in _overlaps(runs)]
    assert not problems, "\n".join(problems)


def test_the_checker_sees_an_overlap() -> None:
    """The overlap check itself finds text drawn on text (so a pass means something)."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("Helvetica", 10)
    c.drawString(100, 700, "Rhythm regularity")
    c.drawString(150, 702, "0.0412")
    c.drawString(100, 600, "apart")
    c.save()
    (runs,) = _boxes(buf.getvalue())
    assert _overlaps(runs) == ["'Rhythm regularity' overlaps '0.0412'"]


def test_summary_comes_first_in_clinical_words(full_report: StudyReport) -> None:
    pages = pypdf.PdfReader(io.BytesIO(build_study_report(full_report))).pages
    text = " ".join(" ".join(p.extract_text() for p in pages).split())
    summary = text.index("Summary")
    assert summary < text.index("Inputs") and summary < text.index("Findings")
    head = text[summary : text.index("Inputs")]
    assert "Band: Medium" in head
    assert "QTc (Bazett) 472 ms (high; reference 340–450 ms)" in head
    assert "Findings reviewed: 1 of 2" in head
    assert "Diabetic retinopathy: corrected to negative" in head
    assert "Right eye (OD)" in text and "fundus_right:" not in text
    assert "Amended after signing. Reason: diabetic retinopathy re-graded" in text
    assert "≤ 110" in text  # a one-sided range is printed as one-sided


def test_regions_are_drawn_where_the_clinician_drew_them() -> None:
    import numpy as np
    from PIL import Image

    from vitalens.reports.regions import Region, draw_regions

    buf = io.BytesIO()
    Image.new("RGB", (100, 80), (0, 0, 0)).save(buf, format="PNG")
    out = np.asarray(
        Image.open(
            io.BytesIO(
                draw_regions(
                    buf.getvalue(),
                    [
                        Region("box", {"x0": 10, "y0": 20, "x1": 60, "y1": 70}, "haemorrhage", 1),
                        Region("mask", {}, "drusen", 2),  # not an outline shape: skipped
                    ],
                )
            )
        )
    )
    assert out.shape == (80, 100, 3)
    assert tuple(out[45, 10]) == (0, 200, 255) and tuple(out[70, 35]) == (0, 200, 255)  # the box's edges
    assert tuple(out[45, 35]) == (0, 0, 0)  # its inside is left as it was


pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (dev dependency) renders the pages and boxes the glyphs")


def test_every_page_is_rendered_and_no_glyph_lies_on_text_or_a_picture(full_report: StudyReport) -> None:
    import numpy as np
    from PIL import Image

    from tests.reports.pdf_layout import layout_problems

    pdf = build_study_report(full_report)
    problems, pngs = layout_problems(pdf, name="full-report")
    assert problems == [], "\n".join(problems)
    assert len(pngs) == len(pypdf.PdfReader(io.BytesIO(pdf)).pages) >= 3
    for path in pngs:
        with Image.open(path) as im:
            assert im.size == (round(595.28 * 1.5), round(841.89 * 1.5))
            inked = int((np.asarray(im.convert("L")) < 200).sum())
            assert inked > 0.005 * im.size[0] * im.size[1], f"{path.name} is nearly blank"


def test_the_pdfium_checker_sees_text_on_text_on_pictures_and_a_stranded_heading() -> None:
    """The checker finds each defect it is there to find (so a pass means something)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from tests.reports.pdf_layout import layout_problems

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595.28, 841.89))
    c.setFont("Helvetica", 10)
    c.drawString(100, 700, "Rhythm regularity")
    c.drawString(150, 702, "0.0412")
    c.drawString(100, 650, "kept apart")
    c.drawImage(ImageReader(io.BytesIO(_png())), 100, 400, width=120, height=80)
    c.drawString(130, 440, "on the picture")
    c.setFont("Helvetica-Bold", 12)
    c.drawString(100, 120, "Left eye (OS)")
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(100, 700, "the pictures the heading was for")
    c.save()
    problems, _ = layout_problems(buf.getvalue())
    assert problems == [
        "page 1: ends with the heading 'Left eye (OS)'",
        "page 1: 'Rhythm regularity' overlaps '0.0412'",
        "page 1: 'on the picture' is drawn over a picture at (100.0, 400.0, 220.0, 480.0)",
    ]


def test_pictures_keep_clinical_captions_and_normal_has_no_tier(full_report: StudyReport) -> None:
    doc = pdfium.PdfDocument(build_study_report(full_report))
    text = " ".join(" ".join(page.get_textpage().get_text_range().split()) for page in doc)
    assert "Left eye (OS): Diabetic retinopathy — Grad-CAM" in text
    assert "12-lead ECG: Conduction disturbance — saliency" in text
    assert "(grad-cam)" not in text and ": N (" not in text
    # the Normal ECG row: 'not normal', and no tier (a tier grades an abnormal finding)
    assert "NORM Normal ECG 0.030 0.440 not normal — unreviewed" in text
    # the eight maps stand in three equal columns (a short last row keeps the others' widths)
    import pypdfium2.raw as raw

    lefts = sorted(
        {
            round(obj.get_bounds()[0])
            for page in doc
            for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE])
            if obj.get_bounds()[2] - obj.get_bounds()[0] < 200
        }
    )
    assert len(lefts) == 3 and lefts[1] - lefts[0] == pytest.approx(lefts[2] - lefts[1], abs=1)
