"""The assistant's vocabulary: passages it retrieves, citations it gives, answers it returns."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from vitalens import DECISION_SUPPORT_NOTICE

__all__ = ["PassageKind", "Passage", "Citation", "AnswerTier", "Answer"]


class PassageKind(StrEnum):
    KNOWLEDGE = "knowledge"  # the bundled knowledge base (conditions, analyzers, formulas, ranges)
    STUDY = "study"  # this study's findings, measurements, model cards, review state, notes


class Passage(BaseModel):
    """One retrievable piece of text with where it comes from."""

    id: str = Field(description="Stable id, e.g. 'kb:eye-conditions#glaucoma' or 'study:finding:fundus.odir'.")
    kind: PassageKind
    title: str
    text: str
    source: str = Field(description="What to cite: a reference, or which part of this study.")
    anchor: str | None = Field(default=None, description="Where the UI links the citation (a page fragment).")


class Citation(BaseModel):
    """A numbered source of an answer ("[2]")."""

    number: int = Field(ge=1)
    passage_id: str
    kind: PassageKind
    title: str
    source: str
    anchor: str | None = None
    excerpt: str = ""


class AnswerTier(StrEnum):
    LLM = "llm"  # written by the configured language model from the retrieved sources
    TEMPLATE = "template"  # assembled from the retrieved passages (no language model configured or usable)
    REFUSAL = "refusal"  # a question the assistant does not answer (dosage, prescribing)


class Answer(BaseModel):
    question: str
    text: str
    tier: AnswerTier
    citations: list[Citation] = Field(default_factory=list)
    model: str | None = Field(default=None, description="The language model that wrote it, if any.")
    warnings: list[str] = Field(default_factory=list)
    decision_support_notice: str = DECISION_SUPPORT_NOTICE
