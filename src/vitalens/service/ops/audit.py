"""The audit trail: one :class:`~vitalens.store.models.AuditEvent` per read or write of a patient record.

Why in the same transaction: an event is added to the caller's session, so it is committed with the change it
describes (a rolled-back write leaves no event claiming it happened); reads commit their event themselves.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vitalens.service.ops import NotFound, Page, RequestContext, current_request, instance_wide, page_window, require
from vitalens.store.models import AuditEvent, Patient, User

__all__ = ["record_event", "AuditFilter", "list_events", "export_events_csv", "CSV_COLUMNS", "MAX_EXPORT_ROWS"]

logger = logging.getLogger(__name__)


def record_event(
    *,
    session: Session,
    actor: User | None,
    action: str,
    record_type: str,
    record_id: str | None = None,
    patient_id: str | None = None,
    site_id: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    ctx: RequestContext | None = None,
) -> AuditEvent:
    """Add an audit event to ``session`` (the caller commits).

    Args:
        session: the caller's session.
        actor: who acted (None for anonymous attempts such as a failed login of an unknown e-mail).
        action: ``<record_type>.<verb>``, e.g. ``patient.read``, ``study.create``, ``auth.login_failed``.
        record_type: ``patient``, ``study``, ``input``, ``analysis``, ``annotation``, ``report``, ``user``...
        record_id: the record's id.
        patient_id: the patient the record belongs to, when it does.
        site_id: the site; defaults to the actor's.
        outcome: ``ok`` or ``denied``/``failed``.
        detail: small JSON-able extra facts (never secrets).
        ctx: request origin; defaults to the current request's.
    """
    ctx = ctx or current_request()
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        site_id=site_id or (actor.site_id if actor else None),
        action=action,
        record_type=record_type,
        record_id=record_id,
        patient_id=patient_id,
        outcome=outcome,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:400] or None,
        request_id=ctx.request_id,
        detail={"channel": ctx.channel, **(detail or {})},
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AuditFilter:
    """Which events an audit query selects: one declaration for the list, the CSV export and the admin page.

    Attributes:
        patient_id: events of this patient id.
        patient: a patient id or pseudonym (case-insensitive, exact).
        action: an exact action (``report.sign``) or a family ending in ``.`` or ``*`` (``report.``).
        actor: a user id, or a substring of the actor's e-mail.
        site_id: one site (an instance administrator; a site admin's own site only).
        at_from, at_to: inclusive time window (naive times are UTC).
    """

    patient_id: str | None = None
    patient: str | None = None
    action: str | None = None
    actor: str | None = None
    site_id: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None

    def public(self) -> dict[str, str]:
        """The filters set, as text (times in ISO): what an export records about itself."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in values.items() if v}


def _filtered(session: Session, user: User, f: AuditFilter) -> Select[Any]:  # row type: SQLAlchemy 2.0 ≠ 2.1
    """The events query with every filter applied, scoped to what ``user`` may read."""
    from sqlalchemy import func, or_

    require(user, "audit.read")
    query = select(AuditEvent)
    if not instance_wide(user, "audit.read"):
        if f.site_id is not None and f.site_id != user.site_id:
            raise NotFound("site not found")
        query = query.where(AuditEvent.site_id == user.site_id)
    elif f.site_id is not None:
        query = query.where(AuditEvent.site_id == f.site_id)
    if f.patient_id:
        query = query.where(AuditEvent.patient_id == f.patient_id)
    if f.patient and f.patient.strip():
        # a patient id, or a pseudonym of a patient of the sites the reader may audit (deleted ones included:
        # the trail of a deleted patient is exactly what an audit may need)
        term = f.patient.strip()
        ids = select(Patient.id).where(func.lower(Patient.pseudonym) == term.lower())
        if not instance_wide(user, "audit.read"):
            ids = ids.where(Patient.site_id == user.site_id)
        query = query.where(or_(AuditEvent.patient_id == term, AuditEvent.patient_id.in_(ids)))
    if f.action and f.action.strip():
        term = f.action.strip()
        if term.endswith(".") or term.endswith("*"):  # a family: "report." or "report.*"
            prefix = term.rstrip("*")
            query = query.where(AuditEvent.action.like(_escape(prefix) + "%", escape="\\"))
        else:
            query = query.where(AuditEvent.action == term)
    if f.actor and f.actor.strip():
        term = f.actor.strip().lower()
        query = query.where(
            or_(AuditEvent.actor_id == term, func.lower(AuditEvent.actor_email).like(f"%{_escape(term)}%", escape="\\"))
        )
    if f.at_from is not None:
        query = query.where(AuditEvent.at >= _aware(f.at_from))
    if f.at_to is not None:
        query = query.where(AuditEvent.at <= _aware(f.at_to))
    return query


def _escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _aware(value: datetime) -> datetime:
    """A naive time from a form is read as UTC (the trail is stored and shown in UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def list_events(
    *, session: Session, user: User, filters: AuditFilter | None = None, limit: int = 50, offset: int = 0
) -> Page[AuditEvent]:
    """Audit events matching ``filters`` (:class:`AuditFilter`), newest first: a site admin's own site; an instance
    admin's every site (or ``filters.site_id``)."""
    from sqlalchemy import func

    limit, offset = page_window(limit, offset)
    query = _filtered(session, user, filters or AuditFilter())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return Page(items=items, total=int(total), limit=limit, offset=offset)


#: Columns of the CSV export, in order.
CSV_COLUMNS = (
    "id",
    "at",
    "actor_email",
    "actor_id",
    "site_id",
    "action",
    "record_type",
    "record_id",
    "patient_id",
    "outcome",
    "ip",
    "request_id",
    "detail",
)
#: Most rows one export holds (narrow the filters for more): keeps an export of a busy site bounded in memory.
MAX_EXPORT_ROWS = 100_000


def export_events_csv(*, session: Session, user: User, filters: AuditFilter | None = None) -> str:
    """The trail matching ``filters`` as CSV (oldest first, UTC ISO times, ``detail`` as JSON); the export is itself
    audited (``audit.export`` with the filters), so who took a copy of the trail is in the trail.

    Cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) are prefixed with ``'``.
    """
    import csv
    import io
    import json

    filters = filters or AuditFilter()
    query = _filtered(session, user, filters)
    rows = session.scalars(query.order_by(AuditEvent.id).limit(MAX_EXPORT_ROWS)).all()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        values = [
            e.id,
            e.at.astimezone(UTC).isoformat() if e.at else "",
            e.actor_email or "",
            e.actor_id or "",
            e.site_id or "",
            e.action,
            e.record_type,
            e.record_id or "",
            e.patient_id or "",
            e.outcome,
            e.ip or "",
            e.request_id or "",
            json.dumps(e.detail or {}, sort_keys=True, default=str),
        ]
        writer.writerow([_safe_cell(v) for v in values])
    record_event(
        session=session,
        actor=user,
        action="audit.export",
        record_type="audit",
        detail={"rows": len(rows), **filters.public()},
    )
    session.commit()
    return buf.getvalue()


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
