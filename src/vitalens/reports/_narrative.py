"""The report's narrative paragraph and the clinician's note, as PDF flowables (a section of their own).

Why verbatim: the narrative is the template paragraph over the stored findings (never a language model's wording,
so a signed PDF says exactly what the numbers say), and the note is the clinician's own text, printed as written —
line breaks kept, markup escaped.
"""

from __future__ import annotations

import logging
from typing import Any
from xml.sax.saxutils import escape

from vitalens.reports._model import StudyReport

__all__ = ["narrative_flowables"]

logger = logging.getLogger(__name__)


def narrative_flowables(report: StudyReport, styles: Any) -> list[Any]:
    """ "Narrative" (the narrative paragraph; the clinical summary opens the report) and "Clinician's note"
    sections; nothing for what the report lacks."""
    from reportlab.platypus import Paragraph

    out: list[Any] = []
    if report.narrative:
        out += [Paragraph("Narrative", styles["Heading2"]), Paragraph(escape(report.narrative), styles["BodyText"])]
    if report.clinician_note:
        out.append(Paragraph("Clinician's note", styles["Heading2"]))
        for para in (p.strip() for p in report.clinician_note.split("\n")):
            if para:
                out.append(Paragraph(escape(para), styles["BodyText"]))
    return out
