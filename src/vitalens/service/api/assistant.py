"""Assistant routes: ask about a study (server-sent events or JSON), read back one's conversations, the narrative
paragraph, and the bundled knowledge base the citations point into.

``POST /api/v1/studies/{id}/assistant`` with ``Accept: text/event-stream`` streams the answer as it is written:
``sources`` (the numbered citations), ``delta`` (text), then ``final`` (the checked answer, which replaces whatever the
deltas said, with its tier: ``llm``, ``template`` — said so in its text — or ``refusal``) or ``error``. Any other
``Accept`` gets the final answer as one JSON object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.service.api._access import AUTHENTICATED, permission
from vitalens.service.deps import CurrentUser, SessionDep, SettingsDep
from vitalens.service.ops import assistant as ops

__all__ = ["router", "AskRequest", "ConversationPublic", "MessagePublic", "NarrativePublic", "KnowledgePassage"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["assistant"])


class AskRequest(BaseModel):
    question: str = Field(max_length=4000, description="At most 1000 characters once trimmed.")
    conversation_id: str | None = Field(default=None, max_length=64, description="Continue this conversation.")


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    position: int
    role: str
    text: str
    tier: str | None
    model: str | None
    citations: list[dict[str, Any]]
    warnings: list[str]
    created_at: datetime


class ConversationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    study_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[MessagePublic] = Field(default_factory=list)
    decision_support_notice: str = DECISION_SUPPORT_NOTICE


class NarrativePublic(BaseModel):
    text: str
    tier: str
    template_text: str
    model: str | None
    warnings: list[str]
    decision_support_notice: str = DECISION_SUPPORT_NOTICE


class KnowledgePassage(BaseModel):
    id: str
    title: str
    text: str
    source: str
    anchor: str | None


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        name = event["event"]
        data = {k: v for k, v in event.items() if k != "event"}
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/studies/{study_id}/assistant", openapi_extra=permission("assistant.ask"))
def ask(
    study_id: str, body: AskRequest, request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Any:
    """Ask a question about the study; the answer cites the study's results and the knowledge base."""
    prepared = ops.start_question(
        session=session, user=user, study_id=study_id, question=body.question, conversation_id=body.conversation_id
    )
    events = ops.answer_events(
        session_factory=request.app.state.session_factory, prepared=prepared, llm=ops.llm_config(settings)
    )
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _sse(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    last: dict[str, Any] = {"event": "error", "detail": "the answer stream ended without an answer"}
    for event in events:
        if event["event"] in ("final", "error"):
            last = event
    if last["event"] == "error":
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=502, content={"detail": last["detail"]})
    return {k: v for k, v in last.items() if k != "event"}


@router.get(
    "/studies/{study_id}/assistant/conversations",
    response_model=list[ConversationPublic],
    openapi_extra=permission("assistant.ask"),
)
def list_conversations(study_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """The caller's own conversations about the study, newest first (without their messages)."""
    rows = ops.list_conversations(session=session, user=user, study_id=study_id)
    return [ConversationPublic.model_validate(r).model_copy(update={"messages": []}) for r in rows]


@router.get(
    "/studies/{study_id}/assistant/conversations/{conversation_id}",
    response_model=ConversationPublic,
    openapi_extra=permission("assistant.ask"),
)
def get_conversation(study_id: str, conversation_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """One of the caller's conversations with every question and answer."""
    row = ops.get_conversation(session=session, user=user, study_id=study_id, conversation_id=conversation_id)
    return ConversationPublic.model_validate(row)


@router.get("/studies/{study_id}/narrative", response_model=NarrativePublic, openapi_extra=permission("study.read"))
def narrative(study_id: str, session: SessionDep, user: CurrentUser, settings: SettingsDep) -> Any:
    """The study's narrative paragraph: templates, or the configured model's verified rephrasing of them."""
    result = ops.study_narrative(session=session, user=user, study_id=study_id, llm=ops.llm_config(settings))
    return NarrativePublic(**result.model_dump(exclude={"decision_support_notice"}))


@router.get("/knowledge", response_model=list[KnowledgePassage], openapi_extra=permission(AUTHENTICATED))
def knowledge(user: CurrentUser) -> Any:
    """Every passage of the bundled knowledge base (what ``kb:`` citations name)."""
    from vitalens.assistant import knowledge_passages

    return [KnowledgePassage(**p.model_dump(include=set(KnowledgePassage.model_fields))) for p in knowledge_passages()]
