"""Clinician feedback on findings: confirm, correct (to positive/negative) or reject each one.

Why stored per finding and never overwritten: the newest feedback is the clinician's current word (shown in the
report and exported for retraining); older ones stay as the history of the review.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.service.ops.signing import ensure_editable
from vitalens.store.models import Analysis, Feedback, Finding, User

__all__ = ["ACTIONS", "give_feedback", "list_feedback", "latest_feedback"]

logger = logging.getLogger(__name__)

ACTIONS = ("confirm", "correct", "reject")


def give_feedback(
    *,
    session: Session,
    user: User,
    finding_id: str,
    action: str,
    corrected_positive: bool | None = None,
    corrected_label: str | None = None,
    comment: str = "",
) -> Feedback:
    """Record the clinician's review of one finding.

    Args:
        action: ``confirm`` (the model is right), ``correct`` (give ``corrected_positive``) or ``reject``
            (the finding is unusable, e.g. a bad image).
        corrected_positive: for ``correct``: whether the condition is present.
        corrected_label: for ``correct``: the label code (defaults to the finding's code).

    Raises:
        NotFound: no such finding in the user's site.
        InputError: unknown action, or ``correct`` without ``corrected_positive``.
        Conflict: the study is signed off (open an amendment first).
    """
    require(user, "feedback.create")
    if action not in ACTIONS:
        raise InputError(f"unknown feedback action '{action}'; valid: {', '.join(ACTIONS)}", field="action")
    finding = visible(session, user, Finding, finding_id)
    analysis = finding.analysis
    ensure_editable(session, analysis.study)
    if action == "correct":
        if corrected_positive is None:
            raise InputError("a correction needs corrected_positive (true or false)", field="corrected_positive")
        corrected_label = corrected_label or finding.code
    else:
        corrected_positive = finding.positive if action == "confirm" else None
        corrected_label = None
    row = Feedback(
        finding_id=finding.id,
        analysis_id=analysis.id,
        author_id=user.id,
        action=action,
        corrected_label=corrected_label,
        corrected_positive=corrected_positive,
        comment=comment,
    )
    session.add(row)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action=f"feedback.{action}",
        record_type="finding",
        record_id=finding.id,
        patient_id=analysis.study.patient_id,
        detail={"code": finding.code, "corrected_positive": corrected_positive},
    )
    session.commit()
    return row


def list_feedback(*, session: Session, user: User, analysis_id: str) -> list[Feedback]:
    """Every feedback on an analysis's findings, oldest first (audited read)."""
    require(user, "analysis.read")
    analysis = visible(session, user, Analysis, analysis_id)
    rows = list(
        session.scalars(select(Feedback).where(Feedback.analysis_id == analysis.id).order_by(Feedback.created_at)).all()
    )
    record_event(
        session=session,
        actor=user,
        action="feedback.list",
        record_type="analysis",
        record_id=analysis.id,
        patient_id=analysis.study.patient_id,
    )
    session.commit()
    return rows


def latest_feedback(session: Session, analysis_id: str) -> dict[str, Feedback]:
    """finding id → the newest feedback on it (no access check: callers have checked the analysis)."""
    rows = session.scalars(
        select(Feedback).where(Feedback.analysis_id == analysis_id).order_by(Feedback.created_at)
    ).all()
    return {r.finding_id: r for r in rows}
