"""ConText rules for the five modifiers, and the comma-list rule that decides how far a modifier reaches.

Why a list rule: ConText scopes run to the end of the sentence, and clinical notes string clauses together with commas
("No chest pain, father had MI, SOB for 3 days"). Cutting every scope at a comma would break the commonest negation of
all ("No fever, chills or night sweats"). So a modifier may reach past a comma only along a *list*: everything after
the first comma between it and the target must be other findings, conjunctions or list words, and when words other
than the list stand between the trigger and the list ("Mother has diabetes, hypertension and glaucoma") the list must
be a coordinated one (an "and"/"or" joins it).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from vitalens.notes._types import Modifier

__all__ = ["CATEGORY_TO_MODIFIER", "context_rules", "reaches_along_lists"]

logger = logging.getLogger(__name__)

#: ConText category → the modifier the report names.
CATEGORY_TO_MODIFIER: dict[str, Modifier] = {
    "NEGATED": Modifier.NEGATED,
    "HISTORICAL": Modifier.HISTORICAL,
    "FAMILY": Modifier.FAMILY,
    "HYPOTHETICAL": Modifier.HYPOTHETICAL,
    "UNCERTAIN": Modifier.UNCERTAIN,
}

#: Punctuation that separates clauses inside one sentence.
_CLAUSE_BREAKS = frozenset({",", "(", ")", "-", "–", ":"})
#: Words that join list items.
_CONJUNCTIONS = frozenset({"and", "or", "nor", "&", "/", "and/or"})
#: Words that may stand inside a list of findings without ending it ("no fever, any new cough or recent weight loss").
_LIST_WORDS = (
    _CONJUNCTIONS
    | _CLAUSE_BREAKS
    | frozenset(
        {
            "any",
            "other",
            "new",
            "recent",
            "significant",
            "associated",
            "a",
            "an",
            "the",
            "no",
            "either",
            "neither",
            "of",
            "obvious",
            "definite",
            "evidence",
            "signs",
            "sign",
            "symptoms",
            "history",
        }
    )
)


#: Words that tie a medication to what it treats ("AF on apixaban", "angina relieved by GTN").
_MEDICATION_LINKS = frozenset({"on", "taking", "with", "by", "using", "uses"})


def _entity_tokens(doc: Any) -> set[int]:
    return {i for ent in doc.ents for i in range(ent.start, ent.end)}


def _is_list_token(token: Any, entity_tokens: set[int]) -> bool:
    return token.i in entity_tokens or token.lower_ in _LIST_WORDS


def _coordinated_after(doc: Any, target: Any, entity_tokens: set[int]) -> bool:
    """True when a conjunction joins ``target`` to a following finding in the same sentence."""
    saw_conjunction = False
    for token in doc[target.end : target.sent.end]:
        if token.i in entity_tokens:
            return saw_conjunction
        if token.lower_ in _CONJUNCTIONS:
            saw_conjunction = True
        elif token.lower_ not in _LIST_WORDS:
            return False
    return False


def _treats_another_finding(target: Any, between: list[Any], entity_tokens: set[int]) -> bool:
    """ "History of AF on apixaban": the drug is taken now for the finding before it, so the finding's modifier stays
    with the finding ("previously on warfarin" and "not on any anticoagulant" still reach the drug)."""
    if target.label_ != "MEDICATION" or len(between) < 2:
        return False
    return between[-1].lower_ in _MEDICATION_LINKS and any(t.i in entity_tokens for t in between[:-1])


def reaches_along_lists(target: Any, modifier: Any, _span_between: Any) -> bool:
    """medspaCy ``on_modifies`` callback: may ``modifier`` modify ``target`` across the words between them?

    Also keeps a finding's modifier off the medication taken for it (``_treats_another_finding``)."""
    doc = target.doc
    forward = modifier.end <= target.start
    lo, hi = (modifier.end, target.start) if forward else (target.end, modifier.start)
    between = list(doc[lo:hi])
    entity_tokens = _entity_tokens(doc)
    if forward and _treats_another_finding(target, between, entity_tokens):
        return False
    if not any(t.text in _CLAUSE_BREAKS for t in between):
        return True
    if not forward:  # backward triggers reach back only over a coordinated list ("cough, fever and chills were denied")
        return all(_is_list_token(t, entity_tokens) for t in between) and any(
            t.lower_ in _CONJUNCTIONS for t in between
        )
    first_break = next(i for i, t in enumerate(between) if t.text in _CLAUSE_BREAKS)
    head, tail = between[:first_break], between[first_break:]
    if not all(_is_list_token(t, entity_tokens) for t in tail):
        return False
    if all(_is_list_token(t, entity_tokens) for t in head):
        return True
    return any(t.lower_ in _CONJUNCTIONS for t in tail) or _coordinated_after(doc, target, entity_tokens)


@lru_cache(maxsize=1)
def _raw_rules() -> list[dict[str, Any]]:
    text = resources.files("vitalens.notes").joinpath("data", "context_rules.yaml").read_text(encoding="utf-8")
    return list((yaml.safe_load(text) or {}).get("rules") or [])


def context_rules() -> list[Any]:
    """The bundled ConText rules as medspaCy ``ConTextRule`` objects, each with the list rule attached."""
    from medspacy.context import ConTextRule

    rules: list[Any] = []
    seen: dict[str, str] = {}
    for entry in _raw_rules():
        category, direction = str(entry["category"]).upper(), str(entry["direction"]).upper()
        if category not in CATEGORY_TO_MODIFIER and category != "TERMINATE":
            raise ValueError(f"context_rules.yaml: unknown category {category}")
        # Body sites carry no assertion: "no pain in the left arm" negates the pain, not the arm.
        common: dict[str, Any] = {"direction": direction, "excluded_types": {"BODY_SITE"}}
        if direction not in ("TERMINATE", "PSEUDO"):
            common["on_modifies"] = reaches_along_lists
        if entry.get("max_scope"):
            common["max_scope"] = int(entry["max_scope"])
        if "pattern" in entry:
            rules.append(ConTextRule(str(entry["literal"]), category, pattern=entry["pattern"], **common))
        for literal in entry.get("literals") or ():
            if not isinstance(literal, str):  # YAML reads a bare `no` as False: the rule would silently vanish
                raise ValueError(f"context_rules.yaml: trigger {literal!r} is not a string; quote it")
            key = literal.lower()
            if key in seen:  # the matcher keeps one of two rules on the same words: make it one rule on purpose
                raise ValueError(f"context_rules.yaml: trigger {literal!r} appears twice ({seen[key]}, {category})")
            seen[key] = category
            rules.append(ConTextRule(literal, category, **common))
    return rules
