"""The audit trail: one :class:`~vitalens.store.models.AuditEvent` per read or write of a patient record.

Why in the same transaction: an event is added to the caller's session, so it is committed with the change it
describes (a rolled-back write leaves no event claiming it happened); reads commit their event themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.service.ops import NotFound, Page, RequestContext, current_request, instance_wide, page_window, require
from vitalens.store.models import AuditEvent, User

__all__ = ["record_event", "list_events"]

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


def list_events(
    *,
    session: Session,
    user: User,
    patient_id: str | None = None,
    action: str | None = None,
    site_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[AuditEvent]:
    """Audit events, newest first: a site admin's own site; an instance admin's every site (or ``site_id``)."""
    from sqlalchemy import func

    require(user, "audit.read")
    limit, offset = page_window(limit, offset)
    query = select(AuditEvent)
    if not instance_wide(user, "audit.read"):
        if site_id is not None and site_id != user.site_id:
            raise NotFound("site not found")
        query = query.where(AuditEvent.site_id == user.site_id)
    elif site_id is not None:
        query = query.where(AuditEvent.site_id == site_id)
    if patient_id:
        query = query.where(AuditEvent.patient_id == patient_id)
    if action:
        query = query.where(AuditEvent.action == action)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return Page(items=items, total=int(total), limit=limit, offset=offset)
