"""The project-curated lexicon (``data/lexicon.yaml``) and its translation into medspaCy target rules.

Why a lexicon and not a statistical NER: no clinical NER model can be had offline here (no scispaCy model), and a
reviewed term list says exactly what is found and why; its synonyms and abbreviations are the recall.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vitalens.notes._types import EntityType

__all__ = ["Concept", "Lexicon", "load_lexicon", "DEFAULT_LEXICON"]

logger = logging.getLogger(__name__)

DEFAULT_LEXICON = "lexicon.yaml"


@dataclass(frozen=True)
class Concept:
    """One lexicon entry: a canonical name, its type, the phrases that name it and the study labels it is."""

    name: str
    type: EntityType
    synonyms: tuple[str, ...]
    abbreviations: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    plural: bool = True
    name_is_term: bool = True

    def phrases(self) -> list[str]:
        """Case-insensitive phrases: the name (unless ``name_is_term`` is off), the synonyms and, for symptoms and
        findings, a naive plural of each."""
        names = [self.name.lower()] if self.name_is_term else []
        out = dict.fromkeys([*names, *(s.lower() for s in self.synonyms)])
        if self.plural and self.type in (EntityType.SYMPTOM, EntityType.FINDING):
            for phrase in list(out):
                last = phrase.split()[-1]
                if last.isalpha() and len(last) > 3 and not last.endswith("s"):
                    out.setdefault(phrase + "s")
        return list(out)


@dataclass(frozen=True)
class Lexicon:
    concepts: tuple[Concept, ...]
    version: str = ""
    by_name: dict[str, Concept] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({c.name: c for c in self.concepts})

    def __getitem__(self, name: str) -> Concept:
        return self.by_name[name]

    def __len__(self) -> int:
        return len(self.concepts)

    def concepts_with_label(self, label: str) -> list[Concept]:
        """Concepts that *are* the study label ``label`` (``"ecg.ptbxl:MI"``)."""
        return [c for c in self.concepts if label in c.labels]

    def target_rules(self) -> list[Any]:
        """medspaCy ``TargetRule`` objects: phrases on lower-cased tokens, abbreviations on exact text."""
        from medspacy.ner import TargetRule

        rules: list[Any] = []
        for concept in self.concepts:
            label = concept.type.value.upper()
            meta = {"concept": concept.name}
            rules.extend(TargetRule(p, label, attributes=None, metadata=meta) for p in concept.phrases())
            rules.extend(TargetRule(a, label, pattern=[{"TEXT": a}], metadata=meta) for a in concept.abbreviations)
        return rules


def _parse(raw: dict[str, Any], source: str) -> Lexicon:
    concepts = []
    for name, entry in (raw.get("concepts") or {}).items():
        words = [name, *(entry.get("synonyms") or ()), *(entry.get("abbrev") or ())]
        if not all(isinstance(w, str) for w in words):  # YAML reads bare yes/no/on as booleans
            raise ValueError(f"{source}: concept {name!r} has a term that is not a string; quote it: {words}")
        try:
            concept_type = EntityType(entry["type"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{source}: concept '{name}' needs a type in {[t.value for t in EntityType]}") from exc
        concepts.append(
            Concept(
                name=str(name),
                type=concept_type,
                synonyms=tuple(str(s) for s in entry.get("synonyms") or ()),
                abbreviations=tuple(str(a) for a in entry.get("abbrev") or ()),
                labels=tuple(str(lbl) for lbl in entry.get("labels") or ()),
                plural=bool(entry.get("plural", True)),
                name_is_term=bool(entry.get("name_is_term", True)),
            )
        )
    return Lexicon(concepts=tuple(concepts))


@lru_cache(maxsize=4)
def load_lexicon(path: Path | None = None) -> Lexicon:
    """The bundled lexicon, or one at ``path`` (same YAML layout); its version is the file's sha256 prefix."""
    if path is None:
        text = resources.files("vitalens.notes").joinpath("data", DEFAULT_LEXICON).read_text(encoding="utf-8")
        source = DEFAULT_LEXICON
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    lexicon = _parse(yaml.safe_load(text) or {}, source)
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    logger.debug("lexicon %s: %d concepts (version %s)", source, len(lexicon), version)
    return Lexicon(concepts=lexicon.concepts, version=version)
