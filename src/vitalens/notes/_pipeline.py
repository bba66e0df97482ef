"""The spaCy pipeline behind ``extract_entities``: medspaCy tokenizer, note-aware sentences, targets, ConText.

Why our own sentence splitter: clinical notes break lines without full stops and write "?MI"; spaCy's sentencizer would
split after every "?" and never at a line break. Semicolons end a clause as firmly as a full stop.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

from vitalens.notes._context import context_rules
from vitalens.notes._lexicon import Lexicon, load_lexicon

__all__ = ["build_pipeline", "get_pipeline", "pipeline_lock"]

logger = logging.getLogger(__name__)

_SENTENCE_END = frozenset({".", "!", ";"})
pipeline_lock = threading.Lock()


def _mark_sentences(doc: Any) -> Any:
    """Sentence starts after '.', '!', ';', a line break, and a '?' that closes a question (attached to its word)."""
    for i, token in enumerate(doc):
        if i == 0:
            token.is_sent_start = True
            continue
        prev = doc[i - 1]
        ends = prev.text in _SENTENCE_END or "\n" in prev.text or "\n" in prev.whitespace_
        if prev.text == "?" and i >= 2 and not doc[i - 2].whitespace_ and prev.whitespace_:
            ends = True
        token.is_sent_start = bool(ends)
    return doc


def build_pipeline(lexicon: Lexicon | None = None) -> Any:
    """A fresh pipeline on ``lexicon`` (the bundled one by default)."""
    import medspacy  # noqa: F401  (registers the medspaCy factories)
    import spacy
    from medspacy.custom_tokenizer import create_medspacy_tokenizer
    from spacy.language import Language

    if not Language.has_factory("vitalens_note_sentences"):
        Language.component("vitalens_note_sentences", func=_mark_sentences)
    nlp = spacy.blank("en")
    nlp.tokenizer = create_medspacy_tokenizer(nlp)
    nlp.add_pipe("vitalens_note_sentences")
    matcher = nlp.add_pipe("medspacy_target_matcher")
    matcher.add((lexicon or load_lexicon()).target_rules())
    context = nlp.add_pipe("medspacy_context", config={"rules": None, "span_attrs": None})
    context.add(context_rules())
    logger.info("notes pipeline built: %s", nlp.pipe_names)
    return nlp


@lru_cache(maxsize=1)
def get_pipeline() -> Any:
    """The process's pipeline on the bundled lexicon (built once, ~1 s)."""
    return build_pipeline()
