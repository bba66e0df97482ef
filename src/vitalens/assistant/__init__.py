"""The study assistant: retrieval-grounded answers with citations, the narrative paragraph, optional LLM tiers.

Decision support only: answers come from sources and cite them; no dosage advice; a study's text is data, never
instructions.
"""

from __future__ import annotations

from vitalens.assistant._types import Answer, AnswerTier, Citation, Passage, PassageKind
from vitalens.assistant.answer import MAX_QUESTION_CHARS, SYSTEM_PROMPT, answer_question, build_messages, stream_answer
from vitalens.assistant.knowledge import knowledge_passages, knowledge_version
from vitalens.assistant.llm import LLMConfig, LLMUnavailable
from vitalens.assistant.narrative import Narrative, build_narrative, narrative_sentences, verify_rephrase
from vitalens.assistant.study_context import FindingReview, StudyFacts, study_passages

__all__ = [
    "Answer",
    "AnswerTier",
    "Citation",
    "FindingReview",
    "LLMConfig",
    "LLMUnavailable",
    "MAX_QUESTION_CHARS",
    "Narrative",
    "Passage",
    "PassageKind",
    "SYSTEM_PROMPT",
    "StudyFacts",
    "answer_question",
    "build_messages",
    "build_narrative",
    "knowledge_passages",
    "knowledge_version",
    "narrative_sentences",
    "stream_answer",
    "study_passages",
    "verify_rephrase",
]
