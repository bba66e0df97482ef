"""The operations of the clinical service (no FastAPI): domain errors, role permissions, request context, paging.

Why a layer without FastAPI: the API routers, the web pages, the job workers and the CLI call the same keyword-only
functions (``ops.patients.create_patient(session=..., user=..., ...)``), so authorisation and audit happen in one
place whatever the entry point. Routers only translate :class:`NotFound`/:class:`Forbidden`/:class:`Conflict`/
:class:`Unauthorized` into HTTP status codes.

Authorisation model (per-site administrators and one instance-wide role, as Orthanc and OHIF deployments separate
the operator of the installation from the administrators of each clinic):
    * Every patient record belongs to one site; a user only ever sees records of their own site, through
      :func:`vitalens.service.ops.scope.visible`. A record of another site, or of a deleted patient, is reported as
      :class:`NotFound` (HTTP 404, never 403) so that ids do not leak.
    * Within a site, :data:`PERMISSIONS` says which roles may do what; a missing permission is :class:`Forbidden`.
    * ``admin`` administers *one* site: its users (never an instance administrator) and its audit trail.
    * ``instance_admin`` runs the installation: creates sites and the users of any site, reads every site's audit
      trail (:data:`INSTANCE_WIDE`), and holds no patient permission at all, not even at its home site.
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
    "INSTANCE_WIDE",
    "require",
    "can",
    "instance_wide",
    "RequestContext",
    "current_request",
    "request_context",
    "reset_request_context",
    "Page",
    "MAX_PAGE_SIZE",
    "MAX_OFFSET",
    "page_window",
]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 200
#: Largest ``offset`` a list accepts: far beyond any real table, and well inside every database's 64-bit integers
#: (SQLite overflows on 10**20 and answered 500).
MAX_OFFSET = 1_000_000_000


def page_window(limit: int, offset: int) -> tuple[int, int]:
    """``(limit, offset)`` clamped to ``1..MAX_PAGE_SIZE`` and ``0..MAX_OFFSET`` (an offset past the end gives an
    empty page, never an error)."""
    return max(1, min(int(limit), MAX_PAGE_SIZE)), max(0, min(int(offset), MAX_OFFSET))


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
INSTANCE_ADMIN = Role.INSTANCE_ADMIN.value

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
    "notes.update": frozenset({CLINICIAN, REVIEWER}),
    "assistant.ask": frozenset({CLINICIAN, REVIEWER, ADMIN}),
    "user.manage": frozenset({ADMIN, INSTANCE_ADMIN}),
    "site.manage": frozenset({INSTANCE_ADMIN}),
    "audit.read": frozenset({ADMIN, INSTANCE_ADMIN}),
}

#: Permissions the instance administrator holds across every site (every other grant is within the user's site).
INSTANCE_WIDE: frozenset[str] = frozenset({"user.manage", "site.manage", "audit.read"})


def can(user: User, permission: str) -> bool:
    """True when ``user`` is active and its role holds ``permission``."""
    from vitalens._naming import unknown_name_error

    if permission not in PERMISSIONS:
        raise unknown_name_error("permission", permission, PERMISSIONS)
    return bool(user.is_active) and user.role in PERMISSIONS[permission]


def instance_wide(user: User, permission: str) -> bool:
    """True when ``user`` holds ``permission`` at every site (an active instance administrator)."""
    return can(user, permission) and user.role == INSTANCE_ADMIN and permission in INSTANCE_WIDE


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
