"""``extract_entities``: free text → lexicon concepts with their ConText modifiers.

Example:
    >>> from vitalens.notes import extract_entities
    >>> [(e.concept, [m.value for m in e.modifiers]) for e in extract_entities("No chest pain").entities]
    [('chest pain', ['negated'])]
"""

from __future__ import annotations

import logging
from typing import Any

from vitalens.errors import InputError
from vitalens.notes._context import CATEGORY_TO_MODIFIER
from vitalens.notes._lexicon import load_lexicon
from vitalens.notes._pipeline import get_pipeline, pipeline_lock
from vitalens.notes._types import EntityType, Modifier, NoteEntity, NoteExtraction

__all__ = ["extract_entities", "MAX_NOTE_CHARS"]

logger = logging.getLogger(__name__)

#: Longest note accepted (characters): a long discharge letter fits, a pasted document dump does not.
MAX_NOTE_CHARS = 20_000

_MODIFIER_ORDER = list(Modifier)


def _entity(span: Any, labels: dict[str, tuple[str, ...]]) -> NoteEntity:
    rule = span._.target_rule
    concept = (rule.metadata or {}).get("concept", span.text.lower()) if rule is not None else span.text.lower()
    found: dict[Modifier, str] = {}
    for mod in span._.modifiers:
        modifier = CATEGORY_TO_MODIFIER.get(mod.category.upper())
        if modifier is not None and modifier not in found:
            start, end = mod.modifier_span
            found[modifier] = span.doc[start:end].text
    if Modifier.FAMILY in found:  # "history" of a relative is family history: historical is the patient's own past
        found.pop(Modifier.HISTORICAL, None)
    modifiers = sorted(found, key=_MODIFIER_ORDER.index)
    return NoteEntity(
        text=span.text,
        start=span.start_char,
        end=span.end_char,
        type=EntityType(span.label_.lower()),
        concept=concept,
        modifiers=modifiers,
        triggers={m: found[m] for m in modifiers},
        sentence=span.sent.text.strip(),
        labels=list(labels.get(concept, ())),
    )


def extract_entities(text: str) -> NoteExtraction:
    """Find the lexicon's concepts in ``text`` and set their modifiers (negated, historical, family, hypothetical,
    uncertain).

    Raises:
        InputError: the note is longer than ``MAX_NOTE_CHARS`` or not text.
    """
    if not isinstance(text, str):
        raise InputError(f"the note must be text, got {type(text).__name__}", field="note")
    if len(text) > MAX_NOTE_CHARS:
        raise InputError(f"the note has {len(text)} characters; at most {MAX_NOTE_CHARS} are accepted", field="note")
    lexicon = load_lexicon()
    labels = {c.name: c.labels for c in lexicon.concepts}
    nlp = get_pipeline()
    with pipeline_lock:  # spaCy pipelines are not promised thread-safe; extraction takes milliseconds
        doc = nlp(text)
        entities = [_entity(span, labels) for span in doc.ents]
    return NoteExtraction(text=text, entities=entities, lexicon_version=lexicon.version)
