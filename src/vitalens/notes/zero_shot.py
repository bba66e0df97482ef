"""Zero-shot mapping of a note to a study's condition labels by MiniLM similarity, calibrated to "the note mentions".

Why: the lexicon finds what it lists; a clinician writes "sugar has damaged the back of the eye". Each label is
described by its name and the lexicon's words for the concepts that *are* it; the note is cut into clauses; the best
clause–description cosine similarity is turned into a probability that the note mentions the label by a logistic
(Platt) fit on the project's evaluation set (``bench/data/notes_eval.jsonl``, dev split; ``bench/notes.py
--fit-calibration`` refits it). The output says what the note *mentions* — including a negated or family mention,
shown as such — never that the patient has the condition.

Example:
    >>> from vitalens.notes.zero_shot import map_note_to_labels
    >>> m = map_note_to_labels("father had MI", {"MI": "Myocardial infarction"}, analyzer="ecg.ptbxl")  # doctest: +SKIP
    >>> m[0].sentence, round(m[0].probability, 2)  # doctest: +SKIP
    ('father had MI', 0.93)
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from pydantic import BaseModel, Field

from vitalens.notes._lexicon import load_lexicon
from vitalens.notes._types import Modifier, NoteExtraction

__all__ = [
    "LabelMention",
    "Calibration",
    "load_calibration",
    "label_prompts",
    "note_segments",
    "raw_scores",
    "map_note_to_labels",
    "fit_calibration",
    "scores_from_vectors",
]

logger = logging.getLogger(__name__)

_CLAUSE_SPLIT = re.compile(r"(?<=[.;!?\n])\s+|,\s+|\n+")


class LabelMention(BaseModel):
    """How strongly the note mentions one label, and where."""

    code: str
    name: str
    probability: float = Field(ge=0.0, le=1.0, description="Calibrated P(the note mentions this label).")
    similarity: float = Field(description="Best clause–description cosine similarity (uncalibrated).")
    sentence: str = Field(description="The clause that matched best.")
    mentioned: bool = Field(
        description="A lexicon concept that is this label is in the note, or probability ≥ the calibration's threshold."
    )
    by_lexicon: bool = Field(default=False, description="A lexicon concept that *is* this label was found.")
    modifiers: list[Modifier] = Field(
        default_factory=list, description="ConText modifiers of the lexicon entities in that clause ('negated')."
    )

    def describe(self) -> str:
        """'The note mentions Myocardial infarction ("father had MI"; family)' — a mention, not a diagnosis."""
        extra = "; " + ", ".join(m.value for m in self.modifiers) if self.modifiers else ""
        return f'The note mentions {self.name} ("{self.sentence}"{extra})'


@dataclass(frozen=True)
class Calibration:
    """Platt scaling ``p = 1 / (1 + exp(-(slope * similarity + intercept)))`` and the reporting threshold."""

    slope: float
    intercept: float
    threshold: float = 0.5
    fitted_on: str = ""
    n: int = 0

    def probability(self, similarity: float) -> float:
        z = self.slope * similarity + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@lru_cache(maxsize=1)
def load_calibration() -> Calibration:
    """The bundled calibration (``data/zero_shot_calibration.json``)."""
    raw = json.loads(resources.files("vitalens.notes").joinpath("data", "zero_shot_calibration.json").read_text())
    return Calibration(
        slope=float(raw["slope"]),
        intercept=float(raw["intercept"]),
        threshold=float(raw.get("threshold", 0.5)),
        fitted_on=str(raw.get("fitted_on", "")),
        n=int(raw.get("n", 0)),
    )


def label_prompts(code: str, name: str, *, analyzer: str) -> list[str]:
    """Texts describing label ``code``: its name and the lexicon terms of the concepts that are it."""
    prompts = [name]
    for concept in load_lexicon().concepts_with_label(f"{analyzer}:{code}"):
        prompts.extend([concept.name, *concept.synonyms, *concept.abbreviations])
    return list(dict.fromkeys(p for p in prompts if p))


def note_segments(text: str) -> list[str]:
    """Clauses of the note (split at sentence ends, commas and line breaks), empty ones dropped."""
    return [s.strip(" .;") for s in _CLAUSE_SPLIT.split(text) if s and s.strip(" .;")]


@lru_cache(maxsize=64)
def _prompt_vectors(prompts: tuple[str, ...]) -> np.ndarray:
    """Label descriptions change only with the cards and the lexicon: embed each set once per process."""
    from vitalens.notes.embeddings import embed

    return embed(list(prompts))


def raw_scores(segments: list[str], labels: dict[str, str], *, analyzer: str) -> dict[str, tuple[float, int]]:
    """For each label code: (best cosine similarity over segments × prompts, index of the best segment)."""
    from vitalens.notes.embeddings import embed

    if not segments or not labels:
        return {}
    return scores_from_vectors(embed(segments), labels, analyzer=analyzer)


def scores_from_vectors(seg_vecs: np.ndarray, labels: dict[str, str], *, analyzer: str) -> dict[str, tuple[float, int]]:
    """``raw_scores`` on segments already embedded (lets a caller embed many notes in one batch)."""
    if not len(seg_vecs) or not labels:
        return {}
    prompts = {code: label_prompts(code, name, analyzer=analyzer) for code, name in labels.items()}
    flat = tuple(p for code in labels for p in prompts[code])
    prompt_vecs = _prompt_vectors(flat)
    sims = seg_vecs @ prompt_vecs.T  # (segments, prompts)
    out: dict[str, tuple[float, int]] = {}
    col = 0
    for code in labels:
        block = sims[:, col : col + len(prompts[code])]
        col += len(prompts[code])
        seg_idx, _ = np.unravel_index(int(np.argmax(block)), block.shape)
        out[code] = (float(block.max()), int(seg_idx))
    return out


def _lexicon_hit(label: str, extraction: NoteExtraction | None) -> tuple[str, list[Modifier]] | None:
    """The clause and modifiers of the first extracted entity whose concept is ``label``."""
    for entity in extraction.entities if extraction is not None else ():
        if label in entity.labels:
            return entity.sentence, list(entity.modifiers)
    return None


def _modifiers_in(segment: str, extraction: NoteExtraction | None) -> list[Modifier]:
    if extraction is None:
        return []
    found: dict[Modifier, None] = {}
    for entity in extraction.entities:
        if entity.text in segment:
            found.update(dict.fromkeys(entity.modifiers))
    return list(found)


def map_note_to_labels(
    text: str,
    labels: dict[str, str],
    *,
    analyzer: str,
    extraction: NoteExtraction | None = None,
    calibration: Calibration | None = None,
) -> list[LabelMention]:
    """Every label in ``labels`` (code → name) with its calibrated mention probability, most probable first.

    A label is ``mentioned`` when the lexicon finds a concept that is it (its clause and modifiers are then shown), or
    when the calibrated zero-shot probability reaches the threshold (the best clause is shown); the probability is
    always the zero-shot one.

    Args:
        text: the note.
        labels: the study's condition labels (from the analyzers' cards).
        analyzer: the analyzer the labels belong to (selects the lexicon's concepts for each label).
        extraction: the note's entities, to show the modifiers of the clause that matched.
        calibration: defaults to the bundled one.
    """
    calibration = calibration or load_calibration()
    segments = note_segments(text)
    scores = raw_scores(segments, labels, analyzer=analyzer)
    mentions = []
    for code, (similarity, idx) in scores.items():
        probability = calibration.probability(similarity)
        hit = _lexicon_hit(f"{analyzer}:{code}", extraction)
        sentence, modifiers = hit if hit is not None else (segments[idx], _modifiers_in(segments[idx], extraction))
        mentions.append(
            LabelMention(
                code=code,
                name=labels[code],
                probability=probability,
                similarity=similarity,
                sentence=sentence,
                mentioned=hit is not None or probability >= calibration.threshold,
                by_lexicon=hit is not None,
                modifiers=modifiers,
            )
        )
    return sorted(mentions, key=lambda m: (not m.mentioned, -m.probability))


def fit_calibration(similarities: list[float], targets: list[int]) -> tuple[float, float]:
    """Platt fit (slope, intercept) of ``targets`` on ``similarities`` (scikit-learn, lightly regularised)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(similarities, dtype=float).reshape(-1, 1)
    y = np.asarray(targets, dtype=int)
    model = LogisticRegression(C=100.0).fit(x, y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])
