"""The one scoping rule for every record that hangs from a patient: who may see it, and whether it still exists.

Why one function: two helpers used to disagree (one checked the patient's deletion, the other did not), so a deleted
patient's analyses, overlays, annotations, feedback and reports stayed readable, writable and exported. Every
route, web page and export now resolves records through :func:`visible` (one record) or :func:`live_studies` /
:data:`LIVE_STUDY` (queries), which apply the same rule:

    a record is visible to ``user`` when its patient belongs to the user's site and neither the patient, the study
    it belongs to, nor the record itself (where it can be deleted) is deleted.

Anything else is :class:`~vitalens.service.ops.NotFound` with the text ``"<kind> not found"``: another site's
record, a deleted one and a made-up id answer exactly alike, so ids never leak.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from vitalens.service.ops import NotFound
from vitalens.store.models import (
    Analysis,
    Annotation,
    Conversation,
    Explanation,
    Feedback,
    Finding,
    Input,
    Patient,
    Report,
    Study,
    User,
)

__all__ = ["LIVE_STUDY", "visible", "is_visible", "owning_study", "live_studies", "KINDS"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

#: Record class → the word used in its "not found" answer.
KINDS: dict[type[Any], str] = {
    Patient: "patient",
    Study: "study",
    Input: "input",
    Analysis: "analysis",
    Finding: "finding",
    Explanation: "explanation",
    Annotation: "annotation",
    Feedback: "feedback",
    Report: "report",
    Conversation: "conversation",
}

#: A study whose patient is live and which is itself live (for ``select(Study)`` queries; the site is filtered
#: separately because exports across sites use it too).
LIVE_STUDY: ColumnElement[bool] = Study.deleted_at.is_(None) & Study.patient_id.in_(
    select(Patient.id).where(Patient.deleted_at.is_(None))
)

_MAX_ID_CHARS = 64


def owning_study(session: Session, record: object) -> Study | None:
    """The study ``record`` belongs to (None for a patient, or when the chain is broken)."""
    if isinstance(record, Study):
        return record
    if isinstance(record, Input | Annotation | Report | Conversation):
        return session.get(Study, record.study_id)
    if isinstance(record, Analysis):
        return record.study
    if isinstance(record, Finding | Explanation | Feedback):
        analysis = session.get(Analysis, record.analysis_id)
        return analysis.study if analysis is not None else None
    raise TypeError(f"{type(record).__name__} does not hang from a patient")


def is_visible(session: Session, user: User, record: object) -> bool:
    """Whether ``record`` passes the scoping rule for ``user`` (see the module docstring)."""
    if getattr(record, "deleted_at", None) is not None and not isinstance(record, Annotation):
        return False  # an annotation's deletion is its own state (its history stays readable), not the patient's
    if isinstance(record, Patient):
        return record.site_id == user.site_id and record.deleted_at is None
    study = owning_study(session, record)
    if study is None or study.site_id != user.site_id or study.deleted_at is not None:
        return False
    patient = study.patient
    return patient is not None and patient.site_id == user.site_id and patient.deleted_at is None


def visible(session: Session, user: User, model: type[R], record_id: object) -> R:
    """The ``model`` row ``record_id`` if ``user`` may see it; else :class:`NotFound` ``"<kind> not found"``.

    Example:
        >>> study = visible(session, user, Study, study_id)  # doctest: +SKIP
    """
    kind = KINDS[model]
    row = None
    if isinstance(record_id, str) and 0 < len(record_id) <= _MAX_ID_CHARS:
        row = session.get(model, record_id)
    if row is None or not is_visible(session, user, row):
        raise NotFound(f"{kind} not found")
    return row


def live_studies(user: User) -> Select[Study]:
    """``select(Study)`` of the user's site, live studies of live patients only (add filters and order)."""
    return select(Study).where(Study.site_id == user.site_id, LIVE_STUDY)
