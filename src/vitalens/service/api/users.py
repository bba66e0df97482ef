"""User, site and audit-log routes for admins (users are created by admins; there is no self sign-up)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vitalens.service.api._access import permission
from vitalens.service.deps import CurrentUser, SessionDep
from vitalens.service.ops import MAX_OFFSET
from vitalens.service.ops import audit as audit_ops
from vitalens.service.ops import sites as site_ops
from vitalens.service.ops import users as ops

__all__ = ["router", "UserCreate", "UserPublic", "SiteCreate", "SitePublic", "AuditEventPublic"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["users"])


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    role: Literal["clinician", "reviewer", "admin", "instance_admin"]
    full_name: str = Field(default="", max_length=200)
    site_id: str | None = Field(
        default=None,
        max_length=64,
        description="Defaults to the admin's own site; only an instance administrator may name another site.",
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    full_name: str
    role: str
    site_id: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class SiteCreate(BaseModel):
    name: str = Field(max_length=200)


class SitePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: str | None
    actor_email: str | None
    action: str
    record_type: str
    record_id: str | None
    patient_id: str | None
    outcome: str
    ip: str | None
    request_id: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventPublic]
    total: int
    limit: int
    offset: int


@router.post("/users", response_model=UserPublic, status_code=201, openapi_extra=permission("user.manage"))
def create_user(body: UserCreate, session: SessionDep, user: CurrentUser) -> Any:
    """Create a user (admins only)."""
    return ops.create_user(session=session, user=user, **body.model_dump())


@router.get("/users", response_model=list[UserPublic], openapi_extra=permission("user.manage"))
def list_users(session: SessionDep, user: CurrentUser, site_id: str | None = Query(None, max_length=64)) -> Any:
    """Users of the admin's site (an instance administrator: of every site, or of ``site_id``)."""
    return ops.list_users(session=session, user=user, site_id=site_id)


@router.get("/users/{user_id}", response_model=UserPublic, openapi_extra=permission("user.manage"))
def get_user(user_id: str, session: SessionDep, user: CurrentUser) -> Any:
    return ops.get_user(session=session, user=user, user_id=user_id)


@router.post("/users/{user_id}/deactivate", response_model=UserPublic, openapi_extra=permission("user.manage"))
def deactivate_user(user_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """Deactivate a user and revoke their sessions (admins only)."""
    return ops.deactivate_user(session=session, user=user, user_id=user_id)


@router.post("/sites", response_model=SitePublic, status_code=201, openapi_extra=permission("site.manage"))
def create_site(body: SiteCreate, session: SessionDep, user: CurrentUser) -> Any:
    return site_ops.create_site(session=session, user=user, name=body.name)


@router.get("/sites", response_model=list[SitePublic], openapi_extra=permission("authenticated"))
def list_sites(session: SessionDep, user: CurrentUser) -> Any:
    return site_ops.list_sites(session=session, user=user)


def audit_filter(
    patient_id: str | None = Query(None, max_length=64),
    patient: str | None = Query(None, max_length=64, description="A patient id or pseudonym."),
    action: str | None = Query(None, max_length=100, description="An action, or a family ending in '.' or '*'."),
    actor: str | None = Query(None, max_length=320, description="A user id or part of the actor's e-mail."),
    site_id: str | None = Query(None, max_length=64),
    at_from: datetime | None = Query(None, description="From this time (inclusive; naive = UTC)."),
    at_to: datetime | None = Query(None, description="Up to this time (inclusive; naive = UTC)."),
) -> audit_ops.AuditFilter:
    """The audit filters of a query string, one declaration for the list and its CSV export."""
    return audit_ops.AuditFilter(
        patient_id=patient_id,
        patient=patient,
        action=action,
        actor=actor,
        site_id=site_id,
        at_from=at_from,
        at_to=at_to,
    )


AuditFilterDep = Annotated[audit_ops.AuditFilter, Depends(audit_filter)]


@router.get("/audit-events", response_model=AuditPage, openapi_extra=permission("audit.read"))
def list_audit_events(
    session: SessionDep,
    user: CurrentUser,
    filters: AuditFilterDep,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Any:
    """The audit trail of the admin's site, newest first (an instance administrator: every site, or ``site_id``)."""
    page = audit_ops.list_events(session=session, user=user, filters=filters, limit=limit, offset=offset)
    return AuditPage(
        items=[AuditEventPublic.model_validate(e) for e in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/audit-events.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The filtered audit trail as CSV (the export is audited)",
    openapi_extra=permission("audit.read"),
)
def export_audit_events(session: SessionDep, user: CurrentUser, filters: AuditFilterDep) -> Response:
    text = audit_ops.export_events_csv(session=session, user=user, filters=filters)
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vitalens-audit.csv"', "Cache-Control": "no-store"},
    )
