"""The vocabulary of clinical-text extraction: entity types, ConText modifiers and extracted entities.

Why pydantic: the extraction is stored with a study, returned by the API and printed in the PDF, so one definition keeps
the three in step (like ``vitalens.domain``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = ["EntityType", "Modifier", "NoteEntity", "NoteExtraction"]


class EntityType(StrEnum):
    """What kind of thing a phrase names (the lexicon's ``type``)."""

    SYMPTOM = "symptom"
    FINDING = "finding"
    CONDITION = "condition"
    MEDICATION = "medication"
    BODY_SITE = "body_site"


class Modifier(StrEnum):
    """ConText assertion modifiers (Harkema et al., 2009), named as the report shows them."""

    NEGATED = "negated"
    HISTORICAL = "historical"
    FAMILY = "family"
    HYPOTHETICAL = "hypothetical"
    UNCERTAIN = "uncertain"


class NoteEntity(BaseModel):
    """One lexicon concept found in a note, with its assertion modifiers.

    ``start``/``end`` are character offsets into the note (``text == note[start:end]``); ``triggers`` names the words
    that set each modifier, so a reader can see why ("negated by 'No'").
    """

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    type: EntityType
    concept: str = Field(description="Canonical lexicon name, e.g. 'shortness of breath' for 'SOB'.")
    modifiers: list[Modifier] = Field(default_factory=list)
    triggers: dict[Modifier, str] = Field(default_factory=dict)
    sentence: str = ""
    labels: list[str] = Field(default_factory=list, description="Study labels this concept is ('ecg.ptbxl:MI').")

    @property
    def affirmed(self) -> bool:
        """Present, current, the patient's own and stated without doubt: no modifier at all."""
        return not self.modifiers

    def has(self, modifier: Modifier | str) -> bool:
        return Modifier(modifier) in self.modifiers

    def describe(self) -> str:
        """One line for reports: ``shortness of breath ("SOB")`` plus its modifiers in words."""
        words = f'{self.concept} ("{self.text}")' if self.text.lower() != self.concept else self.concept
        if not self.modifiers:
            return words
        return f"{words}: " + ", ".join(
            f"{m.value} ('{self.triggers[m]}')" if m in self.triggers else m.value for m in self.modifiers
        )


class NoteExtraction(BaseModel):
    """Everything extracted from one note."""

    text: str
    entities: list[NoteEntity] = Field(default_factory=list)
    lexicon_version: str = ""

    def of_type(self, entity_type: EntityType | str) -> list[NoteEntity]:
        return [e for e in self.entities if e.type == EntityType(entity_type)]

    @property
    def affirmed(self) -> list[NoteEntity]:
        return [e for e in self.entities if e.affirmed]
