"""Single sign-on with OpenID Connect: authorization code flow with PKCE, ID tokens verified against the provider.

Why this shape: a clinic's users live in its identity provider (Keycloak, Entra ID, Okta...). vitalens stays the
OAuth client only: Authlib speaks the protocol (authorization URL, PKCE, code exchange), joserfc (Authlib's JOSE
library) verifies the ID token's signature against the provider's published keys and its claims (issuer, audience,
expiry, nonce). After that, the person is a vitalens user like any other: the same short-lived tokens and cookies
as a password login, the same roles, sites and audit trail.

Who the person is in vitalens is decided here, in this order:

1. an identity linked before (``external_identities``: issuer + subject, which never change at the provider);
2. else an account with the same, *provider-verified* e-mail: the site administrator created it, so its site and
   role are the administrator's mapping; the identity is linked to it;
3. else, when ``VITALENS_OIDC_PROVISION`` is on, a new account from the site and role claims (the site must exist;
   ``VITALENS_OIDC_ROLE_MAP`` maps the provider's values; the instance administrator is never granted by a claim);
4. else the sign-in is refused with the reason, and audited.

The browser round trip carries its state (``state``, ``nonce``, PKCE verifier, where to go after) in a cookie
signed with the installation's key and valid for ten minutes, so no server-side session store is needed and a
callback that does not match the login it answers is refused.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import jwt as pyjwt
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import OpsError, Unauthorized
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.auth import TokenPair, issue_session
from vitalens.service.security import hash_password
from vitalens.store.models import ExternalIdentity, Role, Site, User

__all__ = [
    "STATE_COOKIE",
    "OidcUnavailable",
    "OidcLogin",
    "oidc_enabled",
    "begin_login",
    "complete_login",
    "resolve_user",
    "reset_provider_cache",
]

logger = logging.getLogger(__name__)

STATE_COOKIE = "vitalens_oidc"
STATE_MINUTES = 10
_STATE_TYPE = "oidc_state"
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
_DISCOVERY_TTL_S = 3600.0
_HTTP_TIMEOUT_S = 10.0
#: Roles a provider claim may grant; ``instance_admin`` runs the installation and is never granted from outside.
_CLAIMABLE_ROLES = frozenset({Role.CLINICIAN.value, Role.REVIEWER.value, Role.ADMIN.value})


class OidcUnavailable(OpsError):
    """The identity provider could not be reached or answered nonsense (503: retry later, not the user's fault)."""

    status_code = 503


@dataclass(frozen=True)
class OidcLogin:
    """Where to send the browser, and the signed state cookie to set before sending it."""

    authorization_url: str
    state_cookie: str


@dataclass
class _Provider:
    metadata: dict[str, Any]
    jwks: dict[str, Any]
    fetched_at: float = field(default_factory=time.monotonic)


_CACHE: dict[str, _Provider] = {}
_CACHE_LOCK = threading.Lock()


def reset_provider_cache() -> None:
    """Forget the providers' metadata and keys (tests; a key rotation is handled without it)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def oidc_enabled(settings: Settings) -> bool:
    """Whether single sign-on is configured (issuer and client id)."""
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=_HTTP_TIMEOUT_S, follow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcUnavailable(f"identity provider unavailable: {url}: {exc}") from None
    if not isinstance(body, dict):
        raise OidcUnavailable(f"identity provider answered no JSON object at {url}")
    return body


def _provider(settings: Settings, *, refresh_keys: bool = False) -> _Provider:
    issuer = (settings.oidc_issuer or "").rstrip("/")
    with _CACHE_LOCK:
        cached = _CACHE.get(issuer)
    if cached is not None and not refresh_keys and time.monotonic() - cached.fetched_at < _DISCOVERY_TTL_S:
        return cached
    metadata = _get_json(f"{issuer}/.well-known/openid-configuration")
    if str(metadata.get("issuer", "")).rstrip("/") != issuer:
        raise OidcUnavailable(f"the provider's metadata names issuer {metadata.get('issuer')!r}, not {issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise OidcUnavailable(f"the provider's metadata lacks {key}")
    provider = _Provider(metadata=metadata, jwks=_get_json(metadata["jwks_uri"]))
    with _CACHE_LOCK:
        _CACHE[issuer] = provider
    return provider


def _client(settings: Settings, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        scope=settings.oidc_scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post" if settings.oidc_client_secret else "none",
        timeout=_HTTP_TIMEOUT_S,
    )


def _safe_next(next_path: str | None) -> str:
    """Only a local path: an open redirect after sign-in would hand the session's page to anybody's site."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//") and "\\" not in next_path:
        return next_path
    return "/"


def begin_login(*, settings: Settings, redirect_uri: str, next_path: str | None = None) -> OidcLogin:
    """The provider's authorization URL (code flow, PKCE S256, nonce) and the state cookie that goes with it."""
    if not oidc_enabled(settings):
        raise InputError("single sign-on is not configured on this installation", field="oidc")
    if "openid" not in settings.oidc_scopes.split():
        raise InputError("VITALENS_OIDC_SCOPES must include openid", field="oidc_scopes")
    provider = _provider(settings)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    url, _ = _client(settings, redirect_uri).create_authorization_url(
        provider.metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    now = datetime.now(UTC)
    cookie = pyjwt.encode(
        {
            "typ": _STATE_TYPE,
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": _safe_next(next_path),
            "redirect_uri": redirect_uri,
            "iat": now,
            "exp": now + timedelta(minutes=STATE_MINUTES),
        },
        settings.signing_key,
        algorithm="HS256",
    )
    return OidcLogin(authorization_url=url, state_cookie=cookie)


def _read_state(settings: Settings, cookie: str | None, state: str) -> dict[str, Any]:
    if not cookie:
        raise Unauthorized("single sign-on: no sign-in in progress in this browser (start again from the login page)")
    try:
        data = pyjwt.decode(cookie, settings.signing_key, algorithms=["HS256"])
    except pyjwt.ExpiredSignatureError:
        raise Unauthorized("single sign-on: the sign-in took longer than 10 minutes; start again") from None
    except pyjwt.PyJWTError:
        raise Unauthorized("single sign-on: the sign-in state is invalid; start again") from None
    if data.get("typ") != _STATE_TYPE or not secrets.compare_digest(str(data.get("state", "")), state):
        raise Unauthorized("single sign-on: the answer does not belong to this browser's sign-in; start again")
    return data


def _verify_id_token(settings: Settings, id_token: str, nonce: str) -> dict[str, Any]:
    """Signature against the provider's keys (fetched again once for an unknown key id), then the claims."""
    provider = _provider(settings)
    try:
        try:
            token = jose_jwt.decode(id_token, KeySet.import_key_set(cast("Any", provider.jwks)), algorithms=_ALGORITHMS)
        except (JoseError, ValueError):
            provider = _provider(settings, refresh_keys=True)  # the provider may have rotated its keys
            token = jose_jwt.decode(id_token, KeySet.import_key_set(cast("Any", provider.jwks)), algorithms=_ALGORITHMS)
        jose_jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": provider.metadata["issuer"]},
            aud={"essential": True, "value": str(settings.oidc_client_id)},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise Unauthorized(f"single sign-on: the identity token was refused ({exc})") from None
    claims = dict(token.claims)
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise Unauthorized("single sign-on: the identity token was issued to another client (azp)")
    return claims


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _role_from_claims(settings: Settings, claims: dict[str, Any]) -> str | None:
    """The most capable claimable role the claim's values map to (a list such as ``groups`` may hold several)."""
    mapping = {**{r: r for r in _CLAIMABLE_ROLES}, **settings.oidc_role_map}
    roles = {mapping[v] for v in _claim_values(claims, settings.oidc_role_claim) if v in mapping}
    for role in (Role.ADMIN.value, Role.REVIEWER.value, Role.CLINICIAN.value):
        if role in roles and role in _CLAIMABLE_ROLES:
            return role
    return None


def resolve_user(*, session: Session, settings: Settings, claims: dict[str, Any]) -> User:
    """The vitalens account of a verified identity (see the module docstring for the order); flushes, no commit.

    Raises:
        Unauthorized: no account can be found or made for it, or the account is deactivated.
    """
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    link = session.scalar(
        select(ExternalIdentity).where(ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject)
    )
    user: User | None = session.get(User, link.user_id) if link is not None else None
    email = str(claims.get("email") or "").strip().lower()
    if user is None and email and claims.get("email_verified") is True:
        user = session.scalar(select(User).where(User.email == email))
        if user is not None and user.role == Role.INSTANCE_ADMIN.value:
            # the installation's administrator signs in with its own password only, never through a provider
            raise Unauthorized("single sign-on is not available to the instance administrator; sign in with a password")
    if user is None and settings.oidc_provision:
        user = _provision(session=session, settings=settings, claims=claims, email=email)
    if user is None:
        raise Unauthorized(
            "single sign-on: no vitalens account for this identity; ask your site administrator to create one "
            "with your e-mail address"
        )
    if not user.is_active:
        raise Unauthorized("single sign-on: this vitalens account is deactivated")
    now = datetime.now(UTC)
    if link is None:
        link = ExternalIdentity(user_id=user.id, issuer=issuer, subject=subject)
        session.add(link)
    link.last_login_at = now
    user.last_login_at = now
    session.flush()
    return user


def _provision(*, session: Session, settings: Settings, claims: dict[str, Any], email: str) -> User | None:
    if not email or claims.get("email_verified") is not True:
        raise Unauthorized("single sign-on: the provider gave no verified e-mail, so no account can be created")
    site_names = _claim_values(claims, settings.oidc_site_claim)
    if len(site_names) != 1:
        raise Unauthorized(f"single sign-on: claim {settings.oidc_site_claim!r} must name exactly one site")
    site = session.scalar(select(Site).where(Site.name == site_names[0]))
    if site is None:
        raise Unauthorized(f"single sign-on: site {site_names[0]!r} does not exist in vitalens")
    role = _role_from_claims(settings, claims)
    if role is None:
        raise Unauthorized(
            f"single sign-on: claim {settings.oidc_role_claim!r} maps to no vitalens role (clinician, reviewer, admin)"
        )
    if session.scalar(select(User).where(User.email == email)) is not None:
        raise Unauthorized("single sign-on: an account with this e-mail exists; its administrator must link it")
    user = User(
        site_id=site.id,
        email=email,
        full_name=str(claims.get("name") or "")[:200],
        role=role,
        # no password: a random one nobody knows, so the account signs in through the provider only
        password_hash=hash_password(secrets.token_urlsafe(32)),
    )
    session.add(user)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="user.provisioned_sso",
        record_type="user",
        record_id=user.id,
        detail={"issuer": str(claims["iss"]), "site": site.name, "role": role},
    )
    logger.info("single sign-on provisioned %s (%s, site %s)", email, role, site.name)
    return user


def complete_login(
    *, session: Session, settings: Settings, code: str, state: str, state_cookie: str | None
) -> tuple[TokenPair, str]:
    """Exchange the code, verify the identity, find the account and issue a cookie session.

    Returns:
        The session's tokens and the local path to go to next.

    Raises:
        Unauthorized: state/nonce mismatch, a refused token or no account (audited, and committed so it sticks).
        OidcUnavailable: the provider could not be reached.
    """
    data = _read_state(settings, state_cookie, state)
    provider = _provider(settings)
    try:
        token = _client(settings, str(data["redirect_uri"])).fetch_token(
            provider.metadata["token_endpoint"], code=code, code_verifier=str(data["verifier"])
        )
    except httpx.HTTPError as exc:
        raise OidcUnavailable(f"identity provider unavailable at its token endpoint: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Authlib raises OAuthError subclasses for the provider's refusals
        raise Unauthorized(f"single sign-on: the provider refused the code ({exc})") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthorized("single sign-on: the provider returned no identity token")
    try:
        claims = _verify_id_token(settings, id_token, str(data["nonce"]))
        user = resolve_user(session=session, settings=settings, claims=claims)
    except Unauthorized as exc:
        session.rollback()
        record_event(
            session=session,
            actor=None,
            action="auth.sso_failed",
            record_type="user",
            outcome="denied",
            detail={"reason": exc.reason, "issuer": settings.oidc_issuer},
        )
        session.commit()
        raise
    pair = issue_session(session=session, settings=settings, user=user, cookie=True)
    record_event(
        session=session,
        actor=user,
        action="auth.login",
        record_type="user",
        record_id=user.id,
        detail={"method": "oidc", "issuer": str(claims["iss"])},
    )
    session.commit()
    return pair, str(data["next"])
