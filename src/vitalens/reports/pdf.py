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
from vitalens.reports._narrative import narrative_flowables

__all__ = ["build_study_report"]

logger = logging.getLogger(__name__)

_THUMB_CM = 5.5
#: width of a signal's sheet (an A4 page less the margins)
_SHEET_CM = 18.0
#: a part of a section shorter than this is kept on one page (about a third of the frame)
_KEEP_CM = 9.0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _sig(value: float) -> str:
    """Four significant digits: a QTc of 452 ms, a fractal dimension of 1.347 and an AVR of 0.4544 all keep theirs
    (a fixed one decimal would print the AVR as 0.5 and its reference 1.387–1.487 as 1–1)."""
    return f"{value:.4g}"


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


def _grid(rows: list[list[Any]], widths: list[float] | None = None, *, header: bool = True) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey))
    table.setStyle(TableStyle(style))
    return table


def _review_text(f: Any) -> str:
    review = "unreviewed"
    if f.review == "confirmed":
        review = "confirmed"
    elif f.review == "corrected":
        review = f"corrected to {'positive' if f.corrected_positive else 'negative'}"
    elif f.review:
        review = str(f.review)
    if f.review_note:
        review += f" ({f.review_note})"
    return review


def _cell_style(styles: Any) -> Any:
    """Table text that wraps inside its column (long words and e-mails break instead of running over)."""
    from reportlab.lib.styles import ParagraphStyle

    return ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8, leading=9.5, splitLongWords=True)


def _measure_text(m: Any) -> str:
    """``QTc (Bazett) 472 ms (high; reference 340–450 ms)`` — a flagged measurement in one line."""
    unit = f" {m.unit}" if m.unit and m.unit not in ("1", "ratio") else ""
    ref = _reference(m, unit)
    value = "not measured" if m.value is None else f"{_sig(m.value)}{unit}"
    return f"{m.name} {value} ({m.flag}" + (f"; reference {ref})" if ref else ")")


def _reference(m: Any, unit: str = "") -> str:
    """``340–450`` or one-sided ``≤ 110`` / ``≥ 60`` (four significant digits), ``unit`` appended; ``""`` without
    a range."""
    if m.reference_low is not None and m.reference_high is not None:
        return f"{_sig(m.reference_low)}–{_sig(m.reference_high)}{unit}"
    if m.reference_high is not None:
        return f"≤ {_sig(m.reference_high)}{unit}"
    if m.reference_low is not None:
        return f"≥ {_sig(m.reference_low)}{unit}"
    return ""


def _picture_grid(cells: list[tuple[Any, Any]], columns: int = 3) -> list[Any]:
    """Pictures with their captions, ``columns`` to a row of equal columns (a short last row keeps the width of
    the others); each picture and its caption share one cell, so a page break never parts them, and each row is a
    table of its own, so a long grid flows over pages instead of leaving one half empty."""
    from reportlab.lib.units import cm
    from reportlab.platypus import Table, TableStyle

    out: list[Any] = []
    for i in range(0, len(cells), columns):  # one table a row: a page may break between rows, never inside one
        row: list[Any] = [[img, caption] for img, caption in cells[i : i + columns]]
        table = Table([row + [""] * (columns - len(row))], colWidths=[_SHEET_CM / columns * cm] * columns)
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
        out.append(table)
    return out


def _summary_flowables(report: StudyReport, styles: Any) -> list[Any]:
    """The clinical summary that opens the report: per section its band or tier, the positive findings as the
    clinician left them, the out-of-range measurements, and how many findings were reviewed."""
    from reportlab.platypus import Paragraph

    from vitalens.reports.sections import analyzer_blocks, section_heading

    out: list[Any] = [Paragraph("Summary", styles["Heading2"])]
    total = reviewed = 0
    for a in report.analyses:
        normal = {getattr(b, "normal", None) for b in analyzer_blocks(a.analyzer)} - {None}
        title = section_heading(a.analyzer, a.model_name, a.model_version).title
        facts = [f"{label}: {value}" for label, value in (("Band", a.band), ("Tier", a.tier)) if value]
        for f in a.findings:
            total += 1
            reviewed += 1 if f.review else 0
            if f.code in normal or not (f.positive or f.final_positive):
                continue
            facts.append(f"{f.name}: {_review_text(f)}")
        facts += [_measure_text(m) for m in a.measurements if m.flag in ("low", "high")]
        if a.error:
            facts.append(f"not completed ({a.error})")
        text = "; ".join(facts) if facts else "no positive finding, nothing out of range"
        out.append(Paragraph(f"<b>{escape(title)}</b>: {escape(text)}", styles["BodyText"]))
    s = report.signoff
    if s is not None and s.finding_count is not None and s.reviewed_count is not None:
        total, reviewed = s.finding_count, s.reviewed_count
    if total:
        out.append(Paragraph(escape(f"Findings reviewed: {reviewed} of {total}."), styles["BodyText"]))
    if s is not None:
        signed = f"Signed off by {s.clinician} on {s.signed_at.isoformat(timespec='minutes')} (version {s.version})"
        out.append(Paragraph(escape(signed + (", amended after signing." if s.amends else ".")), styles["BodyText"]))
    else:
        out.append(Paragraph("Not signed off: this report is a draft.", styles["BodyText"]))
    return out


def _findings_table(part: Any, styles: Any) -> Any:
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph

    per_input = any(getattr(f, "input_name", None) for f in part.findings)
    head = ["Code", "Finding"] + (["Input"] if per_input else []) + [part.value, "Threshold", "Result"]
    head += (["Tier"] if part.tiers or any(f.tier for f in part.findings) else []) + ["Clinician review"]
    from vitalens.reports.sections import slot_title

    rows: list[list[Any]] = [head]
    cell = _cell_style(styles)
    for f in part.findings:
        result = "positive" if f.positive else "negative"
        if f.code == part.normal:
            result = "no abnormality" if f.positive else "not normal"
        row: list[Any] = [f.code, Paragraph(escape(f.name), cell)]
        if per_input:
            row.append(Paragraph(escape(slot_title(f.input_name)), cell))
        row += [_fmt(f.probability, 3), _fmt(f.threshold, 3), Paragraph(escape(result), cell)]
        if "Tier" in head:  # a tier grades an abnormal finding: the "normal" output has none
            row.append("—" if f.code == part.normal else f.tier or "—")
        row.append(Paragraph(escape(_review_text(f)), cell))
        rows.append(row)
    fixed = {"Code": 1.3, "Input": 2.2, part.value: 1.9, "Threshold": 1.9, "Result": 2.2, "Tier": 1.6}
    free = 18.0 - sum(fixed.get(h, 0.0) for h in head)
    widths = [fixed.get(h, free / 2) * cm for h in head]
    return _grid(rows, widths)


def _part_flowables(part: Any, figures: dict[int, ReportImage], styles: Any) -> list[Any]:
    """One resolved render block (:class:`~vitalens.reports.sections.Part`) as flowables."""
    from reportlab.lib.units import cm
    from reportlab.platypus import KeepTogether, Paragraph, Spacer

    out: list[Any] = []
    if part.title and part.kind != "summary":
        out.append(Paragraph(escape(part.title), styles["Heading4"]))
    if part.kind == "summary":
        text = ". ".join(f"{b.label}: {b.value}" + (f" ({b.definition})" if b.definition else "") for b in part.badges)
        out.append(Paragraph(escape(text + "."), styles["BodyText"]))
    elif part.kind == "narrative":
        out.append(Paragraph(escape(part.text), styles["BodyText"]))
    elif part.kind == "findings":
        out.append(_findings_table(part, styles))
    elif part.kind == "measurements":
        cell = _cell_style(styles)
        rows: list[list[Any]] = [["Measurement", "Value", "Unit", "Reference", "Flag"]]
        for m in part.measurements:
            value = "not measured" if m.value is None else _sig(m.value)
            unit = "" if m.unit == "1" else m.unit
            rows.append([Paragraph(escape(m.name), cell), value, unit, _reference(m) or "—", m.flag or "—"])
        out.append(_grid(rows, [7.5 * cm, 2.5 * cm, 2.2 * cm, 3.6 * cm, 2.2 * cm]))
    elif part.kind == "three_panel":
        for fig in part.figures:
            f = fig.ref
            panels = [(p, t) for p, t in ((f.original, "Original"), (f.heat, "Heat map"), (f.image, "Overlay")) if p]
            flows = [(_image(p, max_cm=_THUMB_CM), t) for p, t in panels]
            flows = [(fl, t) for fl, t in flows if fl is not None]
            if flows:
                out += _picture_grid([(fl, Paragraph(escape(t), styles["BodyText"])) for fl, t in flows])
                out.append(Paragraph(escape(fig.caption), styles["BodyText"]))
    elif part.kind in ("overlays", "ecg_attribution"):
        wide = part.kind == "ecg_attribution"
        cells = []
        for fig in part.figures:
            img = figures.get(id(fig.ref))
            flow = _image(img, max_cm=_SHEET_CM if wide else _THUMB_CM) if img is not None else None
            if flow is None:
                continue
            caption = Paragraph(escape(fig.caption), styles["BodyText"])
            if wide:
                flow.keepWithNext = 1  # the sheet and its caption on one page
                out += [flow, caption]
            else:
                cells.append((flow, caption))
        out += _picture_grid(cells)
    else:  # classes, scores, table, entities: columns × rows
        small = _cell_style(styles)
        rows = [list(part.columns)]
        for r, row in enumerate(part.rows):
            cells = []
            for c, cell in enumerate(row):
                text = escape(cell)
                if (r, c) in part.marked:
                    text = f"<b>{text} (most probable)</b>"
                cells.append(Paragraph(text, small))
            rows.append(cells)
        out.append(_grid(rows))
    if part.note:
        out.append(Paragraph(escape(part.note), styles["BodyText"]))
    out.append(Spacer(1, 0.15 * cm))
    # a short part is never split (its title, table and note stay together); a long one flows on (moving it whole
    # would leave most of a page empty), its title kept with what follows it by the heading style
    height = sum(f.wrap(_SHEET_CM * cm, 1e6)[1] for f in out)
    return [KeepTogether(out)] if height < _KEEP_CM * cm else out


def _analysis_flowables(a: ReportAnalysis, styles: Any) -> list[Any]:
    """One analyzer's section: its human title, its name and model version in small type, then its render blocks."""
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, Spacer

    from vitalens.reports.sections import Figure, analyzer_blocks, resolve_blocks, section_heading, slot_title

    out: list[Any] = []
    heading = section_heading(a.analyzer, a.model_name, a.model_version)
    title = a.title or heading.title
    status = "" if a.status == "COMPLETE" else f" ({a.status})"
    out.append(Paragraph(escape(title + status), styles["Heading3"]))
    out.append(Paragraph(f"<font size=7>{escape(heading.subtitle)}</font>", styles["BodyText"]))
    demo = " — DEMONSTRATION MODEL, not for clinical use" if a.demonstration else ""
    out.append(
        Paragraph(
            escape(
                f"Model: {a.model_name or '—'} version {a.model_version or '—'}{demo}. "
                f"Trained on: {a.trained_on or '—'}."
            ),
            styles["BodyText"],
        )
    )
    for line in out[1:]:  # the title, its small type and the model line stay with what follows them
        line.keepWithNext = 1
    if a.error:
        lead = "Not analysed" if a.error.startswith("refused by the quality gate") else "Failed"
        out.append(Paragraph(escape(f"{lead}: {a.error}"), styles["BodyText"]))
    for q in a.quality:
        if q.verdict != "pass":
            line = f"Input quality — {slot_title(q.slot)} ({q.gate}), {q.verdict}: {q.message}"
            out.append(Paragraph(escape(line), styles["BodyText"]))
    checked = sorted({f"{slot_title(q.slot)} ({q.gate})" for q in a.quality if q.verdict == "pass"})
    if checked:
        out.append(Paragraph(escape(f"Input quality passed: {', '.join(checked)}."), styles["BodyText"]))
    for w in a.warnings:
        if not w.startswith("input quality ("):  # the gate verdicts are printed above
            out.append(Paragraph(escape(f"Note: {w}"), styles["BodyText"]))
    figures = [Figure(slot=f.slot, target=f.target, method=f.method, ref=f) for f in a.figures]
    images = {id(f): f.image for f in a.figures}
    result = {
        "band": a.band,
        "tier": a.tier,
        "proxies": a.proxies,
        "explanation": a.explanation,
        "extras": a.extras,
    }
    parts = resolve_blocks(
        analyzer_blocks(a.analyzer), result=result, findings=a.findings, measurements=a.measurements, figures=figures
    )
    out.append(Spacer(1, 0.15 * cm))
    for part in parts:
        out += _part_flowables(part, images, styles)
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
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from vitalens.reports.sections import slot_title

    styles = getSampleStyleSheet()
    for name in ("Heading2", "Heading3", "Heading4"):  # a heading never ends a page: it moves with what it heads
        styles[name].keepWithNext = 1
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

    story += _summary_flowables(report, styles)
    if report.inputs:
        story.append(Paragraph("Inputs", styles["Heading2"]))
        drawn_later = {f.slot for a in report.analyses for f in a.figures}
        for inp in report.inputs:
            head = Paragraph(escape(f"{slot_title(inp.name)} — {inp.kind}"), styles["Heading4"])
            if inp.image is None and inp.overlays:
                # a signal drawn as a sheet (the 12-lead ECG with its attribution): full width, or it is unreadable
                for k, img in enumerate(inp.overlays):
                    flow = _image(img, max_cm=_SHEET_CM)
                    if flow is not None:
                        caption = img.title + (f" — {img.caption}" if img.caption else "")
                        story.append(
                            KeepTogether(
                                ([head] if k == 0 else []) + [flow, Paragraph(escape(caption), styles["BodyText"])]
                            )
                        )
                continue
            cells = []
            for img in ([inp.image] if inp.image else []) + inp.overlays:
                flow = _image(img)
                if flow is not None:
                    text = img.title + (f" — {img.caption}" if img.caption else "")
                    cells.append((flow, Paragraph(escape(text), styles["BodyText"])))
            if not cells:
                where = "drawn with its findings below" if inp.name in drawn_later else "not drawn in this report"
                story.append(KeepTogether([head, Paragraph(escape(f"This input is {where}."), styles["BodyText"])]))
                continue
            story += [head, *_picture_grid(cells)]

    story += narrative_flowables(report, styles)
    story.append(Paragraph("Findings", styles["Heading2"]))
    if not report.analyses:
        story.append(Paragraph("No analysis has been run for this study.", styles["BodyText"]))
    for analysis in report.analyses:
        story += _analysis_flowables(analysis, styles)

    story.append(Paragraph("Clinician annotations", styles["Heading2"]))
    if report.annotations:
        rows = [["Input", "Kind", "Label", "Note", "Author", "Version"]]
        cell = _cell_style(styles)
        for an in report.annotations:
            rows.append(
                [
                    Paragraph(escape(slot_title(an.input_name)), cell),
                    an.kind,
                    Paragraph(escape(an.label), cell),
                    Paragraph(escape(an.note or ""), cell),
                    Paragraph(escape(an.author or "—"), cell),
                    str(an.version),
                ]
            )
        story.append(_grid(rows, [2.6 * cm, 1.4 * cm, 3.4 * cm, 4.6 * cm, 4.6 * cm, 1.4 * cm]))
    else:
        story.append(Paragraph("No annotations.", styles["BodyText"]))

    story.append(Paragraph("Sign-off", styles["Heading2"]))
    if report.signoff:
        s = report.signoff
        text = (
            f"Signed off by {s.clinician} on {s.signed_at.isoformat(timespec='minutes')} (report version {s.version})."
        )
        if s.finding_count is not None and s.reviewed_count is not None:
            text += f" Findings reviewed before signing: {s.reviewed_count} of {s.finding_count}."
        if s.note:
            text += f" Note: {s.note}"
        story.append(Paragraph(escape(text), styles["BodyText"]))
        if s.amends:
            story.append(
                Paragraph(escape(f"Amended after signing. Reason: {s.amendment_reason or '—'}"), styles["BodyText"])
            )
        for h in s.history:
            line = f"Version {h.version}: signed by {h.clinician} on {h.signed_at.isoformat(timespec='minutes')}"
            story.append(
                Paragraph(escape(line + (f"; amended because: {h.reason}" if h.reason else "")), styles["BodyText"])
            )
    else:
        story.append(Paragraph("Not signed off: this report is a draft.", styles["BodyText"]))

    story += [Spacer(1, 0.4 * cm), Paragraph(f"<b>{escape(report.notice)}</b>", styles["BodyText"])]
    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)
    return buf.getvalue()
