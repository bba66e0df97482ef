"""Feedback routes: confirm, correct or reject a finding; list the feedback of an analysis."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vitalens.service.api._access import permission
from vitalens.service.deps import CurrentUser, SessionDep
from vitalens.service.ops import feedback as ops

__all__ = ["router", "FeedbackCreate", "FeedbackPublic"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["feedback"])


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "confirm"},
                {"action": "correct", "corrected_positive": False, "comment": "artefact, not a haemorrhage"},
            ]
        }
    )

    action: Literal["confirm", "correct", "reject"]
    corrected_positive: bool | None = None
    corrected_label: str | None = Field(default=None, max_length=200)
    comment: str = Field(default="", max_length=5000)


class FeedbackPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    finding_id: str
    analysis_id: str
    author_id: str | None
    action: str
    corrected_label: str | None
    corrected_positive: bool | None
    comment: str
    created_at: datetime


@router.post(
    "/findings/{finding_id}/feedback",
    status_code=201,
    response_model=FeedbackPublic,
    summary="Confirm, correct or reject a finding",
    openapi_extra=permission("feedback.create"),
)
def give_feedback(finding_id: str, body: FeedbackCreate, session: SessionDep, user: CurrentUser) -> FeedbackPublic:
    row = ops.give_feedback(
        session=session,
        user=user,
        finding_id=finding_id,
        action=body.action,
        corrected_positive=body.corrected_positive,
        corrected_label=body.corrected_label,
        comment=body.comment,
    )
    return FeedbackPublic.model_validate(row)


@router.get(
    "/analyses/{analysis_id}/feedback",
    response_model=list[FeedbackPublic],
    summary="Feedback on an analysis's findings",
    openapi_extra=permission("analysis.read"),
)
def list_feedback(analysis_id: str, session: SessionDep, user: CurrentUser) -> list[FeedbackPublic]:
    return [
        FeedbackPublic.model_validate(r) for r in ops.list_feedback(session=session, user=user, analysis_id=analysis_id)
    ]
