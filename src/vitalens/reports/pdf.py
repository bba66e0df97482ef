"""The study report as a PDF (ReportLab platypus): what a clinician signs and files.

Why ReportLab: it is pure Python (no browser, no system fonts), so the same report renders on a laptop, an API
replica or a worker. The builder only formats a :class:`~vitalens.reports.StudyReport`; every number and label
comes from the store, and the decision-support notice is printed on every page.

Example:
    >>> from vitalens.reports import StudyReport, build_study_report
    >>> pdf = build_study_report(StudyReport(study_id="s1", pseudonym="P-7F3A"))
    >>> pdf[:5]
    b'%PDF-'
"""

from __future__ import annotations

import io
import logging
from typing import Any
from xml.sax.saxutils import escape

from vitalens.reports._model import ReportAnalysis, ReportImage, StudyReport

__all__ = ["build_study_report"]

logger = logging.getLogger(__name__)

_THUMB_CM = 5.5
#: width of a signal's sheet (an A4 page less the margins)
_SHEET_CM = 18.0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _image(img: ReportImage, max_cm: float = _THUMB_CM) -> Any:
    """A platypus Image scaled to fit ``max_cm`` × ``max_cm``, keeping the aspect ratio; None if undecodable."""
    from reportlab.lib.units import cm
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Image

    try:
        reader = ImageReader(io.BytesIO(img.data))
        w, h = reader.getSize()
    except Exception as exc:  # noqa: BLE001 - a broken picture must not break the report
        logger.warning("report image %r could not be decoded: %s", img.title, exc)
        return None
    scale = min(max_cm * cm / w, max_cm * cm / h)
    return Image(io.BytesIO(img.data), width=w * scale, height=h * scale)


def _analysis_flowables(a: ReportAnalysis, styles: Any) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    out: list[Any] = []
    demo = " — DEMONSTRATION MODEL, not for clinical use" if a.demonstration else ""
    out.append(Paragraph(escape(f"{a.analyzer} ({a.status})"), styles["Heading3"]))
    out.append(
        Paragraph(
            escape(
                f"Model: {a.model_name or '—'} version {a.model_version or '—'}{demo}. "
                f"Trained on: {a.trained_on or '—'}."
            ),
            styles["BodyText"],
        )
    )
    if a.error:
        lead = "Not analysed" if a.error.startswith("refused by the quality gate") else "Failed"
        out.append(Paragraph(escape(f"{lead}: {a.error}"), styles["BodyText"]))
    for q in a.quality:
        if q.verdict != "pass":
            out.append(
                Paragraph(escape(f"Input quality — {q.slot} ({q.gate}), {q.verdict}: {q.message}"), styles["BodyText"])
            )
    checked = sorted({f"{q.slot} ({q.gate})" for q in a.quality if q.verdict == "pass"})
    if checked:
        out.append(Paragraph(escape(f"Input quality passed: {', '.join(checked)}."), styles["BodyText"]))
    for w in a.warnings:
        if not w.startswith("input quality ("):  # the gate verdicts are printed above
            out.append(Paragraph(escape(f"Note: {w}"), styles["BodyText"]))
    summary = []
    if a.band:
        summary.append(f"Cardiovascular risk band: {a.band}")
    if a.tier:
        summary.append(f"Risk tier: {a.tier}")
    if summary:
        out.append(Paragraph(escape(". ".join(summary) + "."), styles["BodyText"]))
    if a.findings:
        rows = [["Code", "Finding", "Probability", "Threshold", "Result", "Tier", "Clinician review"]]
        for f in a.findings:
            review = "unreviewed"
            if f.review == "confirmed":
                review = "confirmed"
            elif f.review == "corrected":
                review = f"corrected to {'positive' if f.corrected_positive else 'negative'}"
            if f.review_note:
                review += f" ({f.review_note})"
            rows.append(
                [
                    f.code,
                    Paragraph(escape(f.name), styles["BodyText"]),
                    _fmt(f.probability, 3),
                    _fmt(f.threshold, 3),
                    "positive" if f.positive else "negative",
                    f.tier or "—",
                    Paragraph(escape(review), styles["BodyText"]),
                ]
            )
        table = Table(rows, colWidths=[1.3 * cm, 4.2 * cm, 2 * cm, 2 * cm, 1.7 * cm, 1.7 * cm, 4 * cm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        out += [Spacer(1, 0.2 * cm), table]
    if a.proxies:
        rows = [["Proxy", "Value"]] + [[k, _fmt(v, 3)] for k, v in sorted(a.proxies.items())]
        table = Table(rows, colWidths=[6 * cm, 3 * cm])
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("FONTSIZE", (0, 0), (-1, -1), 8)]))
        out += [Spacer(1, 0.2 * cm), Paragraph("Proxies", styles["Heading4"]), table]
    if a.measurements:
        rows = [["Measurement", "Value", "Unit", "Reference", "Flag"]]
        for m in a.measurements:
            ref = f"{_fmt(m.reference_low, 0)}–{_fmt(m.reference_high, 0)}"
            rows.append([m.name, _fmt(m.value, 1), m.unit, ref, m.flag or "—"])
        table = Table(rows, colWidths=[5 * cm, 2.5 * cm, 2 * cm, 3 * cm, 2 * cm])
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("FONTSIZE", (0, 0), (-1, -1), 8)]))
        out += [Spacer(1, 0.2 * cm), Paragraph("Measurements", styles["Heading4"]), table]
    if a.explanation:
        out += [Spacer(1, 0.2 * cm), Paragraph(escape(a.explanation), styles["BodyText"])]
    return out


def build_study_report(report: StudyReport) -> bytes:
    """Render ``report`` as a PDF.

    Args:
        report: the study's pseudonym, inputs with overlays, analyses (findings, proxies, tiers,
            measurements, model names/versions, demonstration flag), annotations and sign-off.

    Returns:
        The PDF file as bytes (A4, the decision-support notice in the header of every page).
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
        topMargin=2.2 * cm,
        bottomMargin=1.8 * cm,
        title=f"vitalens study report {report.study_id}",
        author="vitalens",
        subject=report.notice,
    )

    def _on_page(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 8)
        canvas.setFillColor(colors.darkred)
        canvas.drawString(1.5 * cm, A4[1] - 1.2 * cm, report.notice[:140])
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.black)
        canvas.drawString(1.5 * cm, 1.0 * cm, f"vitalens study {report.study_id} — patient {report.pseudonym}")
        canvas.drawRightString(A4[0] - 1.5 * cm, 1.0 * cm, f"page {canvas.getPageNumber()}")
        canvas.restoreState()

    story: list[Any] = [
        Paragraph("vitalens screening report", styles["Title"]),
        Paragraph(escape(report.notice), styles["BodyText"]),
        Spacer(1, 0.3 * cm),
    ]
    head = [
        ["Patient (pseudonym)", report.pseudonym],
        ["Study", report.study_id],
        ["Site", report.site or "—"],
        ["Study created", report.study_created_at.isoformat(timespec="minutes") if report.study_created_at else "—"],
        ["Report generated", report.generated_at.isoformat(timespec="minutes")],
        ["Age (years)", _fmt(report.age_years, 0)],
        ["Sex", report.sex or "—"],
    ]
    table = Table(head, colWidths=[4.5 * cm, 12 * cm])
    table.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 9), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey)]))
    story.append(table)
    if report.any_demonstration:
        story += [
            Spacer(1, 0.2 * cm),
            Paragraph(
                "<b>Demonstration models:</b> at least one model behind this report was trained on synthetic or "
                "small data (demonstration) and is not validated for clinical use.",
                styles["BodyText"],
            ),
        ]

    if report.inputs:
        story.append(Paragraph("Inputs and explanations", styles["Heading2"]))
        for inp in report.inputs:
            story.append(Paragraph(escape(f"{inp.name}: {inp.kind}"), styles["Heading4"]))
            if inp.image is None and inp.overlays:
                # a signal drawn as a sheet (the 12-lead ECG with its attribution): full width, or it is unreadable
                for img in inp.overlays:
                    flow = _image(img, max_cm=_SHEET_CM)
                    if flow is not None:
                        caption = img.title + (f" — {img.caption}" if img.caption else "")
                        story += [flow, Paragraph(escape(caption), styles["BodyText"])]
                continue
            cells = []
            captions = []
            for img in ([inp.image] if inp.image else []) + inp.overlays:
                flow = _image(img)
                if flow is not None:
                    cells.append(flow)
                    captions.append(
                        Paragraph(escape(img.title + (f" — {img.caption}" if img.caption else "")), styles["BodyText"])
                    )
            for i in range(0, len(cells), 3):
                row = Table([cells[i : i + 3], captions[i : i + 3]])
                row.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
                story.append(row)

    story.append(Paragraph("Findings", styles["Heading2"]))
    if not report.analyses:
        story.append(Paragraph("No analysis has been run for this study.", styles["BodyText"]))
    for analysis in report.analyses:
        story += _analysis_flowables(analysis, styles)

    story.append(Paragraph("Clinician annotations", styles["Heading2"]))
    if report.annotations:
        rows = [["Input", "Kind", "Label", "Note", "Author", "Version"]]
        for an in report.annotations:
            rows.append(
                [
                    an.input_name,
                    an.kind,
                    Paragraph(escape(an.label), styles["BodyText"]),
                    Paragraph(escape(an.note or ""), styles["BodyText"]),
                    an.author or "—",
                    str(an.version),
                ]
            )
        table = Table(rows, colWidths=[2.6 * cm, 1.8 * cm, 3.5 * cm, 5 * cm, 2.6 * cm, 1.4 * cm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ]
            )
        )
        story.append(table)
    else:
        story.append(Paragraph("No annotations.", styles["BodyText"]))

    story.append(Paragraph("Sign-off", styles["Heading2"]))
    if report.signoff:
        s = report.signoff
        text = f"Signed off by {s.clinician} on {s.signed_at.isoformat(timespec='minutes')}."
        if s.note:
            text += f" Note: {s.note}"
        story.append(Paragraph(escape(text), styles["BodyText"]))
    else:
        story.append(Paragraph("Not signed off: this report is a draft.", styles["BodyText"]))

    story += [Spacer(1, 0.4 * cm), Paragraph(f"<b>{escape(report.notice)}</b>", styles["BodyText"])]
    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)
    return buf.getvalue()
