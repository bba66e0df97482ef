"""Safety rules that hold whatever a model writes or a note says.

* No dosage or prescribing advice: questions asking for it are refused before any model sees them, and an answer that
  contains a dose is replaced by the refusal.
* The study's text is data: when it goes into a prompt it is wrapped as a numbered source, with every sequence that
  could close the wrapper or imitate a chat role defused, so a hostile note ("ignore previous instructions...") can
  only ever be quoted, not obeyed. The system instructions are a constant: nothing in a study reaches them.
* Every language-model answer must cite at least one of the sources it was given, and only those.
"""

from __future__ import annotations

import re

__all__ = [
    "DOSAGE_REFUSAL",
    "asks_for_dosage",
    "contains_dosage",
    "defuse",
    "redact_doses",
    "cited_numbers",
]

DOSAGE_REFUSAL = (
    "I can't give dosage, prescribing or treatment advice. Doses and treatment choices come from the prescriber, the "
    "product's prescribing information and local guidelines; vitalens reports screening findings only."
)

_DOSE_UNITS = (
    r"(?:mg|milligrams?|mcg|µg|micrograms?|g|grams?|ml|millilitres?|milliliters?|units?|iu|tablets?|pills?|"
    r"capsules?|puffs?|drops?)"
)
_DOSAGE_QUESTION = re.compile(
    r"\b(?:dos(?:e|es|age|ing)|how\s+(?:much|many)\s+(?:\w+\s+){0,3}(?:should|to|can|do)\b|prescri(?:be|ption)|"
    r"titrat\w*|what\s+strength|mg\s+of|"
    r"how\s+often\s+(?:should|to)\s+(?:\w+\s+){0,2}(?:take|give|use))",
    re.IGNORECASE,
)
_DOSAGE_TEXT = re.compile(
    rf"\b\d+(?:[.,]\d+)?\s*{_DOSE_UNITS}\b(?:\s*(?:/|per)\s*(?:day|kg|hour|h|dose))?"
    r"(?:\s*(?:once|twice|bd|bid|tds|tid|qds|qid|od|nocte|daily|a\s+day|at\s+night))?|"
    r"\b(?:once|twice|three\s+times|four\s+times|\d+\s+times)\s+(?:a|per)\s+day\b|\bevery\s+\d+\s+hours\b|"
    r"\b(?:take|give|start(?:\s+on)?|increase\s+to|reduce\s+to)\s+\d+",
    re.IGNORECASE,
)
# Sequences a note could use to close a source block or pose as a chat turn.
_BREAKOUT = re.compile(
    r"</?\s*source[^>]*>|<\|[^|]*\|>|\[/?(?:INST|SYS)\]|<<\s*/?SYS\s*>>|\b(?:system|assistant|user|developer)\s*:",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\[(\d{1,2})\]")


def asks_for_dosage(question: str) -> bool:
    """True when the question asks how much of a medicine to give, or for a prescription."""
    return bool(_DOSAGE_QUESTION.search(question))


def contains_dosage(text: str) -> bool:
    """True when the text states a dose ("40 mg", "twice a day", "take 2")."""
    return bool(_DOSAGE_TEXT.search(text))


def redact_doses(text: str) -> tuple[str, int]:
    """The text with every dose expression replaced by "[dose omitted]", and how many were replaced.

    A note may record "furosemide 40 mg"; an answer quoting it must still not read as dosing advice.
    """
    return _DOSAGE_TEXT.subn("[dose omitted]", text)


def defuse(text: str) -> str:
    """The text with wrapper-closing tags and chat-role markers neutralised (shown in brackets, never acted on)."""
    return _BREAKOUT.sub(lambda m: "[" + re.sub(r"[<>|]", "", m.group(0)).strip() + "]", text)


def cited_numbers(text: str) -> set[int]:
    """The source numbers an answer cites ("[1]", "[3]")."""
    return {int(n) for n in _CITATION.findall(text)}
