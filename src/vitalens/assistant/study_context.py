"""A study as the assistant and the narrative see it: its results, review state and notes, turned into passages.

Why a plain type and not the ORM rows: the assistant must not reach into the database (the service builds this from
rows it has already authorised), and the CLI, the API and the tests can build one from analyzer results alone.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field

from vitalens.assistant._types import Passage, PassageKind
from vitalens.domain import AnalysisResult, Finding, Measurement

__all__ = ["FindingReview", "StudyFacts", "study_passages", "format_finding", "format_measurement"]

_NOTE_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


class FindingReview(BaseModel):
    """A clinician's verdict on one finding."""

    analyzer: str
    code: str
    action: str = Field(description="'confirm', 'correct' or 'reject'.")
    corrected_positive: bool | None = None
    comment: str = ""
    reviewer: str = ""
    at: datetime | None = None


class StudyFacts(BaseModel):
    """What is known about one study: analyzer results, the clinicians' review and their note."""

    study_id: str
    description: str = ""
    results: list[AnalysisResult] = Field(default_factory=list)
    reviews: list[FindingReview] = Field(default_factory=list)
    signed_by: str | None = None
    signed_at: datetime | None = None
    notes: str = ""


def format_finding(finding: Finding) -> str:
    """'Diabetic retinopathy: probability 0.72 (threshold 0.41), positive' — only numbers the analyzer computed."""
    parts = [f"probability {finding.probability:.2f}"]
    if finding.threshold is not None:
        parts.append(f"threshold {finding.threshold:.2f}")
    text = (
        f"{finding.name}: "
        + ", ".join(parts)
        + (", above its threshold" if finding.positive else ", below its threshold")
    )
    if finding.tier is not None:
        text += f", tier {finding.tier.value}"
    return text


def format_measurement(m: Measurement) -> str:
    """'QTc_bazett_ms: 452 ms (reference 340–450 ms, high)' or 'PR_ms: not computed'."""
    if m.value is None:
        return f"{m.name}: not computed"
    ref = ""
    if m.reference_low is not None or m.reference_high is not None:
        ref = f" (reference {m.reference_text()}" + (f", {m.flag})" if m.flag else ")")
    elif m.flag:
        ref = f" ({m.flag})"
    return f"{m.name}: {m.value:g} {m.unit}{ref}".replace("  ", " ")


def _result_passages(result: AnalysisResult) -> list[Passage]:
    who = f"{result.analyzer} ({result.model.name} {result.model.version}"
    who += ", demonstration model)" if result.demonstration else ")"
    out = []
    if result.findings:
        lines = [format_finding(f) for f in result.findings]
        if result.band is not None:
            lines.append(f"cardiovascular proxy band {result.band.value}")
        if result.proxies:
            lines.append("proxies " + ", ".join(f"{k} {v:.2f}" for k, v in result.proxies.items()))
        if result.tier is not None:
            lines.append(f"overall tier {result.tier.value}")
        out.append(
            Passage(
                id=f"study:findings:{result.analyzer}",
                kind=PassageKind.STUDY,
                title=f"Findings of {result.analyzer}",
                text=f"{who}. " + "; ".join(lines) + (f". {result.explanation}" if result.explanation else ""),
                source=f"this study: findings of {result.analyzer}",
                anchor=f"#result-{result.analyzer}",
            )
        )
    if result.measurements:
        out.append(
            Passage(
                id=f"study:measurements:{result.analyzer}",
                kind=PassageKind.STUDY,
                title=f"Measurements of {result.analyzer}",
                text=f"{who}. " + "; ".join(format_measurement(m) for m in result.measurements),
                source=f"this study: measurements of {result.analyzer}",
                anchor=f"#result-{result.analyzer}",
            )
        )
    card = result.card or {}
    if card:
        data = card.get("training_data") or {}
        trained = data.get("description") or result.trained_on
        text = (
            f"Model {card.get('name', result.model.name)} {card.get('version', result.model.version)} for "
            f"{result.analyzer}. Intended use: {card.get('intended_use', '')} "
            f"Limitations: {card.get('limitations', '')} "
            f"Trained on: {trained}. Thresholds chosen by: {card.get('threshold_method', 'not stated')}. "
            f"Calibration: {card.get('calibration', 'not stated')}."
            + (" This is a demonstration model, not for clinical use." if result.demonstration else "")
        )
        out.append(
            Passage(
                id=f"study:card:{result.analyzer}",
                kind=PassageKind.STUDY,
                title=f"Model card of {result.analyzer}",
                text=" ".join(text.split()),
                source=f"this study: model card of {result.analyzer}",
                anchor=f"#card-{result.analyzer}",
            )
        )
    if result.warnings:
        out.append(
            Passage(
                id=f"study:warnings:{result.analyzer}",
                kind=PassageKind.STUDY,
                title=f"Warnings of {result.analyzer}",
                text="; ".join(result.warnings),
                source=f"this study: warnings of {result.analyzer}",
                anchor=f"#result-{result.analyzer}",
            )
        )
    return out


def _review_passage(facts: StudyFacts) -> Passage:
    if facts.reviews:
        lines = []
        for r in facts.reviews:
            line = f"{r.analyzer} {r.code}: {r.action}"
            if r.corrected_positive is not None:
                line += f" (corrected to {'positive' if r.corrected_positive else 'negative'})"
            if r.reviewer:
                line += f" by {r.reviewer}"
            lines.append(line)
        text = "Clinician review: " + "; ".join(lines) + "."
    else:
        text = "No finding of this study has been reviewed by a clinician yet."
    text += f" Signed off by {facts.signed_by}." if facts.signed_by else " The report is not signed."
    return Passage(
        id="study:review",
        kind=PassageKind.STUDY,
        title="Review state",
        text=text,
        source="this study: review state",
        anchor="#review",
    )


def _note_passages(notes: str, *, max_chars: int = 400) -> list[Passage]:
    chunks: list[str] = []
    current = ""
    for sentence in (s.strip() for s in _NOTE_SENTENCE.split(notes) if s.strip()):
        if current and len(current) + len(sentence) + 1 > max_chars:
            chunks.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        chunks.append(current)
    return [
        Passage(
            id=f"study:note:{i}",
            kind=PassageKind.STUDY,
            title="Clinician's note",
            text=chunk,
            source="this study: clinician's note",
            anchor="#notes",
        )
        for i, chunk in enumerate(chunks, 1)
    ]


def study_passages(facts: StudyFacts) -> list[Passage]:
    """Every passage of one study: findings, measurements, model cards and warnings per analyzer, the review state,
    and the note in chunks of a few sentences."""
    passages: list[Passage] = []
    for result in facts.results:
        passages.extend(_result_passages(result))
    passages.append(_review_passage(facts))
    passages.extend(_note_passages(facts.notes))
    return passages
