"""Single sign-on routes: start an OpenID Connect sign-in, and take the provider's answer.

Thin over :mod:`vitalens.service.ops.oidc`. Both steps are browser redirects: the callback never answers JSON to a
person; a refused sign-in goes back to the login page with the reason, which the page shows.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from vitalens.service.api._access import permission
from vitalens.service.api.auth import set_session_cookies
from vitalens.service.deps import SessionDep, SettingsDep, rate_limit
from vitalens.service.ops import OpsError
from vitalens.service.ops import oidc as ops

__all__ = ["router", "OidcConfig"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/auth/oidc", tags=["auth"])

_COOKIE_PATH = "/api/v1/auth/oidc"


class OidcConfig(BaseModel):
    """Whether the login page offers single sign-on, and under which name."""

    enabled: bool
    display_name: str
    login_url: str


def _callback_url(request: Request, configured: str | None) -> str:
    return configured or str(request.url_for("oidc_callback"))


def _back_to_login(reason: str) -> RedirectResponse:
    response = RedirectResponse(f"/login?error={quote(reason[:300], safe='')}", status_code=303)
    response.delete_cookie(ops.STATE_COOKIE, path=_COOKIE_PATH)
    return response


@router.get("", response_model=OidcConfig, openapi_extra=permission("public"))
def oidc_config(settings: SettingsDep) -> OidcConfig:
    """Single sign-on as configured on this installation (the login page asks)."""
    return OidcConfig(
        enabled=ops.oidc_enabled(settings),
        display_name=settings.oidc_display_name,
        login_url=f"{_COOKIE_PATH}/login",
    )


@router.get(
    "/login",
    status_code=303,
    response_class=RedirectResponse,
    dependencies=[Depends(rate_limit("10/minute", scope="login"))],
    openapi_extra=permission("public"),
)
def oidc_login(request: Request, settings: SettingsDep, next: str = "/") -> RedirectResponse:  # noqa: A002
    """Send the browser to the identity provider (authorization code flow with PKCE)."""
    start = ops.begin_login(
        settings=settings, redirect_uri=_callback_url(request, settings.oidc_redirect_url), next_path=next
    )
    response = RedirectResponse(start.authorization_url, status_code=303)
    response.set_cookie(
        ops.STATE_COOKIE,
        start.state_cookie,
        max_age=ops.STATE_MINUTES * 60,
        httponly=True,
        secure=settings.environment == "prod",
        samesite="lax",  # the provider's redirect back is a top-level GET: Lax cookies travel with it
        path=_COOKIE_PATH,
    )
    return response


@router.get(
    "/callback",
    name="oidc_callback",
    status_code=303,
    response_class=RedirectResponse,
    dependencies=[Depends(rate_limit("30/minute", scope="login"))],
    openapi_extra=permission("public"),
)
def oidc_callback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> RedirectResponse:
    """The provider's answer: on success a cookie session and the page asked for, else the login page and why."""
    if error:
        logger.info("single sign-on refused by the provider: %s", error)
        return _back_to_login(f"single sign-on: the provider refused the sign-in ({error_description or error})")
    if not code or not state:
        return _back_to_login("single sign-on: the provider's answer lacks code or state; start again")
    try:
        pair, next_path = ops.complete_login(
            session=session,
            settings=settings,
            code=code,
            state=state,
            state_cookie=request.cookies.get(ops.STATE_COOKIE),
        )
    except OpsError as exc:
        logger.info("single sign-on failed: %s", exc.reason)
        return _back_to_login(exc.reason)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookies(response, pair, secure=settings.environment == "prod")
    response.delete_cookie(ops.STATE_COOKIE, path=_COOKIE_PATH)
    return response
