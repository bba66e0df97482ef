"""FastAPI dependencies as ``Annotated`` aliases: settings, DB session, blob store, registry, current user, limits.

Why aliases: every router declares ``session: SessionDep, user: CurrentUser`` and nothing else; tests swap the
providers with ``app.dependency_overrides``. The database engine, session factory, blob store and rate limiter are
created once per app by :func:`open_store` (called from the app lifespan), never at import.

Authentication: a ``Bearer`` access token in ``Authorization`` (API clients), else the HTTP-only ``vitalens_access``
cookie (web app). Cookie-authenticated unsafe requests (POST/PUT/PATCH/DELETE) must echo the CSRF token from the
``vitalens_csrf`` cookie in the ``X-CSRF-Token`` header (double submit), and that token must be the one bound into
the access token at login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.service.ops import Unauthorized
from vitalens.service.security import AccessClaims, hash_token, tokens_equal
from vitalens.service.throttle import LoginLockout
from vitalens.store.blobs import BlobStore
from vitalens.store.models import User

__all__ = [
    "ACCESS_COOKIE",
    "REFRESH_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "Auth",
    "AuthDep",
    "BlobsDep",
    "CurrentUser",
    "LockoutDep",
    "RegistryDep",
    "SessionDep",
    "SettingsDep",
    "get_auth",
    "get_blobs",
    "get_current_user",
    "get_lockout",
    "get_registry",
    "get_session",
    "get_settings_dep",
    "open_store",
    "close_store",
    "rate_limit",
]

logger = logging.getLogger(__name__)

ACCESS_COOKIE = "vitalens_access"
REFRESH_COOKIE = "vitalens_refresh"
CSRF_COOKIE = "vitalens_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def open_store(app: FastAPI, settings: Settings) -> None:
    """Create the engine, session factory, blob store, rate limiter and login lockout on ``app.state`` (unless set).

    The rate limiter and the lockout are per process, or shared by every replica through Redis when
    ``VITALENS_REDIS_URL`` is set (:mod:`vitalens.service.throttle`).

    On SQLite the schema is migrated to the latest revision, so ``vitalens serve`` works on a fresh machine; on
    PostgreSQL run ``vitalens db upgrade`` as part of a deployment.
    """
    from vitalens.service.throttle import make_lockout, make_rate_limiter
    from vitalens.store import is_sqlite, make_blob_store, make_engine, make_session_factory, upgrade

    state = app.state
    if getattr(state, "session_factory", None) is None:
        url = settings.sqlalchemy_url
        if is_sqlite(url):
            upgrade(url)
        state.engine = make_engine(url)
        state.session_factory = make_session_factory(state.engine)
        state.owns_engine = True
    if getattr(state, "blobs", None) is None:
        state.blobs = make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url)
    if getattr(state, "rate_limiter", None) is None:
        state.rate_limiter = make_rate_limiter(settings)
    if getattr(state, "lockout", None) is None:
        state.lockout = make_lockout(settings)


def close_store(app: FastAPI) -> None:
    """Dispose the engine if :func:`open_store` created it."""
    if getattr(app.state, "owns_engine", False):
        app.state.engine.dispose()
        app.state.owns_engine = False


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed afterwards (ops functions commit their own work)."""
    factory = getattr(request.app.state, "session_factory", None)
    if factory is None:
        raise RuntimeError("the database is not open: create the app with create_app() and start its lifespan")
    session: Session = factory()
    try:
        yield session
    finally:
        session.close()


def get_blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


def get_registry(request: Request) -> Any:
    return request.app.state.registry


def get_lockout(request: Request) -> LoginLockout:
    """The app's login lockout (the database one when the app was built without :func:`open_store`)."""
    from vitalens.service.throttle import DatabaseLockout

    lockout: LoginLockout | None = getattr(request.app.state, "lockout", None)
    return lockout if lockout is not None else DatabaseLockout()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
RegistryDep = Annotated[Any, Depends(get_registry)]
LockoutDep = Annotated[LoginLockout, Depends(get_lockout)]


@dataclass(frozen=True)
class Auth:
    """The authenticated user, the verified access-token claims, and whether the cookie carried them."""

    user: User
    claims: AccessClaims
    via_cookie: bool


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


def get_auth(request: Request, session: SessionDep, settings: SettingsDep) -> Auth:
    """Authenticate the request (Bearer header, else cookie + CSRF for unsafe methods)."""
    from vitalens.service.ops.auth import authenticate

    header = request.headers.get("authorization", "")
    via_cookie = False
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization header must be 'Bearer <access token>'")
        token = token.strip()
    else:
        token = request.cookies.get(ACCESS_COOKIE, "")
        via_cookie = True
        if not token:
            raise _unauthorized("not authenticated")
    try:
        user, claims = authenticate(session=session, settings=settings, token=token)
    except Unauthorized as exc:
        raise _unauthorized(exc.reason) from None
    if via_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        cookie = request.cookies.get(CSRF_COOKIE)
        if not tokens_equal(sent, cookie) or not tokens_equal(hash_token(sent or ""), claims.csrf_hash):
            raise HTTPException(status_code=403, detail=f"CSRF check failed: send the {CSRF_HEADER} header")
    return Auth(user=user, claims=claims, via_cookie=via_cookie)


def get_current_user(auth: Annotated[Auth, Depends(get_auth)]) -> User:
    return auth.user


AuthDep = Annotated[Auth, Depends(get_auth)]
CurrentUser = Annotated[User, Depends(get_current_user)]


def rate_limit(limit: str, *, scope: str) -> Callable[[Request], None]:
    """A dependency enforcing ``limit`` (``limits`` notation, e.g. ``"10/minute"``) per client IP and ``scope``.

    Exceeding it answers HTTP 429 with ``Retry-After``. The limiter lives on ``app.state.rate_limiter``: in memory
    per process, or shared by every replica through Redis (``VITALENS_REDIS_URL``).
    """
    from limits import parse

    item = parse(limit)

    def dependency(request: Request) -> None:
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is None:
            return
        client = request.client.host if request.client else "unknown"
        if not limiter.hit(item, scope, client):
            reset = limiter.get_window_stats(item, scope, client).reset_time
            import time

            retry = max(1, int(reset - time.time()))
            raise HTTPException(
                status_code=429,
                detail=f"rate limit exceeded ({limit} for {scope}); retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    return dependency
