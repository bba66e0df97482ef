"""Layout checks of a rendered PDF with pdfium (pypdfium2, a dev dependency): every page rendered to PNG for a
person to look at, and the character boxes pdfium itself computes (the glyphs' real outlines, not a font-metrics
estimate) checked for text drawn over other text, text drawn over a picture, and text off the page.

Why pdfium and not pypdf: pypdf only reports where a text run starts; its width has to be guessed from the font
metrics and misses kerning, word spacing and text rise. pdfium lays the page out as a viewer does and gives the box
of every glyph, and the placed box of every image.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: where the page images go (git-ignored ``test-artifacts/``), for a person to look at after the run
ARTIFACTS = Path(os.environ.get("VITALENS_PDF_ARTIFACTS", ROOT / "test-artifacts" / "pdf"))

Box = tuple[float, float, float, float]  # left, bottom, right, top (PDF points, origin bottom left)


@dataclass
class TextLine:
    """The glyphs of one text object on one line: a run as it was drawn (a table cell's line, a heading)."""

    text: str = ""
    chars: list[Box] = field(default_factory=list)
    #: font weight (700 bold) and size (pt) of its first glyph
    weight: int = 400
    size: float = 0.0

    @property
    def box(self) -> Box:
        return (
            min(c[0] for c in self.chars),
            min(c[1] for c in self.chars),
            max(c[2] for c in self.chars),
            max(c[3] for c in self.chars),
        )


def _overlap(a: Box, b: Box, slack: float) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > slack and min(a[3], b[3]) - max(a[1], b[1]) > slack


def page_lines(textpage: object) -> list[TextLine]:
    """The page's text as lines of its text objects, from pdfium's tight glyph boxes (blanks and the characters
    pdfium makes up between runs, which belong to no text object, are left out)."""
    lines: list[TextLine] = []
    current: dict[int, TextLine] = {}
    last: dict[int, Box] = {}
    for i in range(textpage.count_chars()):  # type: ignore[attr-defined]
        ch = textpage.get_text_range(i, 1)  # type: ignore[attr-defined]
        obj = textpage.get_textobj(i)  # type: ignore[attr-defined]
        if obj is None:
            continue
        if not ch.strip():  # a blank: kept in the line's text, no box
            line = current.get(ctypes.addressof(obj.raw.contents))
            if line is not None:
                line.text += " "
            continue
        box = tuple(float(v) for v in textpage.get_charbox(i))  # type: ignore[attr-defined]
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            continue
        key = ctypes.addressof(obj.raw.contents)
        prev = last.get(key)
        # lines are told apart on the loose boxes (the font's full height: a '.' and a '0' share a line)
        loose = tuple(float(v) for v in textpage.get_charbox(i, loose=True))  # type: ignore[attr-defined]
        height = loose[3] - loose[1]
        new_line = prev is None or abs((loose[1] + loose[3]) / 2 - (prev[1] + prev[3]) / 2) > 0.5 * height
        new_line = new_line or (prev is not None and loose[0] < prev[0] - 1.0)  # back to the left: the next line
        if new_line:
            import pypdfium2.raw as raw

            weight = int(raw.FPDFText_GetFontWeight(textpage.raw, i))  # type: ignore[attr-defined]
            size = float(raw.FPDFText_GetFontSize(textpage.raw, i))  # type: ignore[attr-defined]
            name = ctypes.create_string_buffer(128)
            flags = ctypes.c_int(0)
            raw.FPDFText_GetFontInfo(textpage.raw, i, name, 128, ctypes.byref(flags))  # type: ignore[attr-defined]
            if weight <= 0:  # the standard 14 fonts carry no weight: read it from the name ("Helvetica-Bold")
                weight = 700 if b"Bold" in name.value else 400
            current[key] = TextLine(weight=weight, size=size)
            lines.append(current[key])
        line = current[key]
        line.text += ch
        line.chars.append(box)  # type: ignore[arg-type]
        last[key] = loose  # type: ignore[assignment]
    return lines


def text_overlaps(lines: list[TextLine], slack: float = 0.4) -> list[str]:
    """Pairs of lines with a glyph of one drawn over a glyph of the other (by more than ``slack`` pt each way)."""
    out = []
    boxes = [line.box for line in lines]
    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            if not _overlap(boxes[i], boxes[j], slack):
                continue
            b = lines[j]
            if any(_overlap(ca, cb, slack) for ca in a.chars for cb in b.chars):
                out.append(f"{a.text[:50]!r} overlaps {b.text[:50]!r}")
    return out


def ends_with_heading(lines: list[TextLine], page_height: float, *, footer: float = 45.0, header: float = 55.0) -> str:
    """The text of the page's last body line when it is all bold (a heading left at the foot of a page, what it
    heads on the next), else ``""``. The running header and footer bands are left out."""
    body = [ln for ln in lines if footer < ln.box[1] and ln.box[3] < page_height - header]
    if not body:
        return ""
    lowest = min(ln.box[1] for ln in body)
    last = [ln for ln in body if ln.box[1] - lowest < 2.0]
    return " ".join(ln.text for ln in last) if all(ln.weight >= 600 for ln in last) else ""


def image_boxes(page: object) -> list[Box]:
    """The placed box of every image on the page (pictures, heat maps, the ECG sheet)."""
    import pypdfium2.raw as raw

    return [
        tuple(float(v) for v in obj.get_bounds())  # type: ignore[misc]
        for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE])  # type: ignore[attr-defined]
    ]


def layout_problems(pdf: bytes, *, name: str | None = None, scale: float = 1.5) -> tuple[list[str], list[Path]]:
    """Every overlap, text-on-picture, off-page glyph and heading left at the foot of a page in ``pdf``, each as
    ``page N: …``; with ``name``, each page is also rendered to ``ARTIFACTS/<name>-p<N>.png``.

    Returns:
        The problems found (empty: a clean layout) and the PNG files written.
    """
    import pypdfium2 as pdfium

    problems: list[str] = []
    written: list[Path] = []
    doc = pdfium.PdfDocument(pdf)
    try:
        for n, page in enumerate(doc, start=1):
            width, height = page.get_size()
            lines = page_lines(page.get_textpage())
            if not lines:
                problems.append(f"page {n}: no text")
            heading = ends_with_heading(lines, height) if n < len(doc) else ""
            if heading:
                problems.append(f"page {n}: ends with the heading {heading[:50]!r}")
            problems += [f"page {n}: {p}" for p in text_overlaps(lines)]
            images = image_boxes(page)
            for line in lines:
                for img in images:
                    if any(_overlap(c, img, 0.4) for c in line.chars):
                        problems.append(f"page {n}: {line.text[:50]!r} is drawn over a picture at {img}")
                        break
                lb = line.box
                if lb[0] < 0 or lb[1] < 0 or lb[2] > width or lb[3] > height:
                    problems.append(f"page {n}: {line.text[:50]!r} runs off the page ({lb})")
            for i, a in enumerate(images):
                for b in images[i + 1 :]:
                    if _overlap(a, b, 0.4):
                        problems.append(f"page {n}: two pictures overlap ({a}, {b})")
            if name is not None:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                path = ARTIFACTS / f"{name}-p{n}.png"
                page.render(scale=scale).to_pil().save(path)
                written.append(path)
    finally:
        doc.close()
    return problems, written
