"""The operations of the clinical service (no FastAPI): domain errors, role permissions, request context, paging.

Why a layer without FastAPI: the API routers, the web pages, the job workers and the CLI call the same keyword-only
functions (``ops.patients.create_patient(session=..., user=..., ...)``), so authorisation and audit happen in one
place whatever the entry point. Routers only translate :class:`NotFound`/:class:`Forbidden`/:class:`Conflict`/
:class:`Unauthorized` into HTTP status codes.

Authorisation model:
    * Every patient record belongs to one site; a user only ever sees records of their own site. A record of
      another site is reported as :class:`NotFound` (HTTP 404, never 403) so that ids do not leak.
    * Within a site, :data:`PERMISSIONS` says which roles may do what; a missing permission is :class:`Forbidden`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from vitalens.errors import VitalensError
from vitalens.store.models import Role, User

__all__ = [
    "OpsError",
    "NotFound",
    "Forbidden",
    "Conflict",
    "Unauthorized",
    "TooLarge",
    "PERMISSIONS",
    "require",
    "can",
    "RequestContext",
    "current_request",
    "request_context",
    "reset_request_context",
    "Page",
    "MAX_PAGE_SIZE",
]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 200


class OpsError(VitalensError):
    """Base of the domain errors of the service layer; ``reason`` is safe to show the caller."""

    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(OpsError):
    """No such record *visible to this user* (also for other sites' records: 404, never 403)."""

    status_code = 404


class Forbidden(OpsError):
    """The user's role may not do this (the record itself is visible)."""

    status_code = 403


class Conflict(OpsError):
    """The operation clashes with the current state (duplicate pseudonym, e-mail in use, already signed...)."""

    status_code = 409


class TooLarge(OpsError):
    """An upload exceeds the size limit (HTTP 413)."""

    status_code = 413


class Unauthorized(OpsError):
    """Bad credentials, an expired/revoked/forged token, or a locked account."""

    status_code = 401


CLINICIAN, REVIEWER, ADMIN = Role.CLINICIAN.value, Role.REVIEWER.value, Role.ADMIN.value

#: permission → roles that hold it (always within the user's own site).
PERMISSIONS: dict[str, frozenset[str]] = {
    "patient.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "patient.create": frozenset({CLINICIAN, ADMIN}),
    "patient.update": frozenset({CLINICIAN, ADMIN}),
    "patient.delete": frozenset({CLINICIAN, ADMIN}),
    "study.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "study.create": frozenset({CLINICIAN, ADMIN}),
    "study.delete": frozenset({CLINICIAN, ADMIN}),
    "input.upload": frozenset({CLINICIAN, ADMIN}),
    "input.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "analysis.create": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "analysis.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "annotation.create": frozenset({CLINICIAN, REVIEWER}),
    "annotation.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "feedback.create": frozenset({CLINICIAN, REVIEWER}),
    "report.create": frozenset({CLINICIAN, REVIEWER}),
    "report.sign": frozenset({CLINICIAN, REVIEWER}),
    "report.read": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "user.manage": frozenset({ADMIN}),
    "site.manage": frozenset({ADMIN}),
    "audit.read": frozenset({ADMIN}),
}


def can(user: User, permission: str) -> bool:
    """True when ``user`` is active and its role holds ``permission``."""
    from vitalens._naming import unknown_name_error

    if permission not in PERMISSIONS:
        raise unknown_name_error("permission", permission, PERMISSIONS)
    return bool(user.is_active) and user.role in PERMISSIONS[permission]


def require(user: User, permission: str) -> None:
    """Raise :class:`Forbidden` unless ``user`` holds ``permission``."""
    if not can(user, permission):
        raise Forbidden(f"role '{user.role}' may not {permission.replace('.', ' ')}")


@dataclass(frozen=True)
class RequestContext:
    """Where a call comes from, for the audit trail (set per request by the middleware)."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    channel: str = "api"


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "vitalens_request_context", default=None
)


def current_request() -> RequestContext:
    """The context of the running request, or an empty one (CLI, workers)."""
    return _CURRENT.get() or RequestContext(channel="internal")


def request_context(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    """Install ``ctx`` for the current task/thread; returns the token to reset it."""
    return _CURRENT.set(ctx)


def reset_request_context(token: contextvars.Token[RequestContext | None]) -> None:
    """Undo :func:`request_context`."""
    _CURRENT.reset(token)


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of results: ``items`` plus the total count matching the filters."""

    items: Sequence[T]
    total: int
    limit: int
    offset: int
    extra: dict[str, object] = field(default_factory=dict)
