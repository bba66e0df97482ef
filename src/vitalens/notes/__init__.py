"""Clinical text: symptom and finding extraction with ConText modifiers (medspaCy), zero-shot label mapping.

Decision support only: what a note *mentions* is reported, never read as a diagnosis.
"""

from __future__ import annotations

from vitalens.notes._lexicon import Concept, Lexicon, load_lexicon
from vitalens.notes._types import EntityType, Modifier, NoteEntity, NoteExtraction
from vitalens.notes.extract import MAX_NOTE_CHARS, extract_entities

__all__ = [
    "Concept",
    "EntityType",
    "Lexicon",
    "MAX_NOTE_CHARS",
    "Modifier",
    "NoteEntity",
    "NoteExtraction",
    "extract_entities",
    "load_lexicon",
]
