"""Auth routes: token login for API clients, cookie session for the web app, refresh, logout, and "who am I".

Thin over :mod:`vitalens.service.ops.auth`; rate-limited per client IP.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field

from vitalens.service.api._access import permission
from vitalens.service.deps import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    AuthDep,
    CurrentUser,
    LockoutDep,
    SessionDep,
    SettingsDep,
    rate_limit,
)
from vitalens.service.ops import Unauthorized
from vitalens.service.ops import auth as ops
from vitalens.service.ops.auth import TokenPair

__all__ = ["router", "LoginRequest", "TokenResponse", "RefreshRequest", "Me"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_REFRESH_PATH = "/api/v1/auth"


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=512)


class Me(BaseModel):
    id: str
    email: str
    full_name: str
    role: str
    site_id: str


class TokenResponse(BaseModel):
    token_type: str = "bearer"
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user: Me


class SessionResponse(BaseModel):
    """Cookie login: tokens are in HTTP-only cookies; the CSRF token must be echoed in ``X-CSRF-Token``."""

    csrf_token: str
    access_expires_at: datetime
    user: Me


def me_of(user: object) -> Me:
    return Me.model_validate(user, from_attributes=True)


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        access_expires_at=pair.access_expires_at,
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at,
        user=me_of(pair.user),
    )


def set_session_cookies(response: Response, pair: TokenPair, *, secure: bool) -> None:
    access_age = int((pair.access_expires_at - datetime.now(pair.access_expires_at.tzinfo)).total_seconds())
    refresh_age = int((pair.refresh_expires_at - datetime.now(pair.refresh_expires_at.tzinfo)).total_seconds())
    for name, value, age, httponly, path in (
        (ACCESS_COOKIE, pair.access_token, access_age, True, "/"),
        (REFRESH_COOKIE, pair.refresh_token, refresh_age, True, _REFRESH_PATH),
        (CSRF_COOKIE, pair.csrf_token or "", refresh_age, False, "/"),
    ):
        response.set_cookie(name, value, max_age=age, httponly=httponly, path=path, secure=secure, samesite="lax")


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=_REFRESH_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post(
    "/login",
    response_model=TokenResponse,
    dependencies=[Depends(rate_limit("10/minute", scope="login"))],
    openapi_extra=permission("public"),
)
def login(body: LoginRequest, session: SessionDep, settings: SettingsDep, lockout: LockoutDep) -> TokenResponse:
    """Exchange e-mail and password for a short-lived access token and a single-use refresh token."""
    pair = ops.login(session=session, settings=settings, email=body.email, password=body.password, lockout=lockout)
    return _tokens(pair)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    dependencies=[Depends(rate_limit("30/minute", scope="refresh"))],
    openapi_extra=permission("public"),
)
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """Rotate a refresh token; presenting an already used one revokes every token of that login."""
    if not body.refresh_token:
        raise Unauthorized("refresh_token is required")
    return _tokens(ops.refresh(session=session, settings=settings, refresh_token=body.refresh_token))


@router.post(
    "/session",
    response_model=SessionResponse,
    dependencies=[Depends(rate_limit("10/minute", scope="login"))],
    openapi_extra=permission("public"),
)
def session_login(
    body: LoginRequest, response: Response, session: SessionDep, settings: SettingsDep, lockout: LockoutDep
) -> SessionResponse:
    """Web-app login: sets HTTP-only ``SameSite=Lax`` cookies and returns the CSRF token."""
    pair = ops.login(
        session=session, settings=settings, email=body.email, password=body.password, cookie=True, lockout=lockout
    )
    set_session_cookies(response, pair, secure=settings.environment == "prod")
    return SessionResponse(
        csrf_token=pair.csrf_token or "", access_expires_at=pair.access_expires_at, user=me_of(pair.user)
    )


@router.post(
    "/session/refresh",
    response_model=SessionResponse,
    dependencies=[Depends(rate_limit("30/minute", scope="refresh"))],
    openapi_extra=permission("public"),
)
def session_refresh(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> SessionResponse:
    """Web-app refresh from the refresh cookie (rotated like the token flow)."""
    raw = request.cookies.get(REFRESH_COOKIE)
    if not raw:
        raise Unauthorized("no refresh cookie")
    pair = ops.refresh(session=session, settings=settings, refresh_token=raw, cookie=True)
    set_session_cookies(response, pair, secure=settings.environment == "prod")
    return SessionResponse(
        csrf_token=pair.csrf_token or "", access_expires_at=pair.access_expires_at, user=me_of(pair.user)
    )


@router.post("/logout", status_code=204, openapi_extra=permission("authenticated"))
def logout(
    request: Request,
    response: Response,
    auth: AuthDep,
    session: SessionDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> Response:
    """Revoke this access token and its refresh-token family; clears the session cookies."""
    raw = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    ops.logout(session=session, user=auth.user, claims=auth.claims, refresh_token=raw)
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


@router.get("/me", response_model=Me, openapi_extra=permission("authenticated"))
def me(user: CurrentUser) -> Me:
    """The authenticated user."""
    return me_of(user)
