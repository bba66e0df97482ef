"""Login, token refresh with rotation and replay detection, logout/revocation, and account lockout.

Why these rules: access tokens are short-lived signed JWTs (nothing to look up but a revocation list), refresh
tokens are opaque, stored only as hashes and single-use. Presenting a used refresh token again means it was copied,
so the whole family (every token descended from that login) is revoked. Five failed logins lock the account for
fifteen minutes, during which even the right password is refused. Where the failures are counted (the user row, or
Redis shared by API replicas) is the :class:`~vitalens.service.throttle.LoginLockout` the caller passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.service.ops import RequestContext, Unauthorized, current_request
from vitalens.service.ops.audit import record_event
from vitalens.service.security import (
    AccessClaims,
    TokenError,
    create_access_token,
    decode_access_token,
    hash_password,
    hash_token,
    new_csrf_token,
    new_refresh_token,
    password_needs_rehash,
    verify_password,
)
from vitalens.service.throttle import LOCKOUT_MINUTES, LOCKOUT_THRESHOLD, DatabaseLockout, LoginLockout
from vitalens.store.models import RefreshToken, RevokedToken, User, new_id

__all__ = [
    "LOCKOUT_THRESHOLD",
    "LOCKOUT_MINUTES",
    "BAD_CREDENTIALS",
    "TokenPair",
    "login",
    "refresh",
    "logout",
    "authenticate",
    "revoke_all_sessions",
    "issue_session",
]

logger = logging.getLogger(__name__)

#: The one answer to every refused login (unknown e-mail, wrong password, inactive or locked account), so that the
#: answer never tells an attacker that an account exists or is locked; it still tells a real user about the lock.
BAD_CREDENTIALS = (
    f"invalid e-mail or password (after {LOCKOUT_THRESHOLD} failed attempts an account is locked for "
    f"{LOCKOUT_MINUTES} minutes)"
)
_BAD_CREDENTIALS = BAD_CREDENTIALS


@dataclass(frozen=True)
class TokenPair:
    """What a successful login or refresh returns; ``csrf_token`` is set for cookie sessions."""

    user: User
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    csrf_token: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _issue(
    *, session: Session, user: User, settings: Settings, family_id: str, cookie: bool, ctx: RequestContext
) -> TokenPair:
    csrf = new_csrf_token() if cookie else None
    access, claims = create_access_token(
        user_id=user.id, secret_key=settings.signing_key, minutes=settings.access_token_minutes, csrf_token=csrf
    )
    raw = new_refresh_token()
    expires = _now() + timedelta(days=settings.refresh_token_days)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_token(raw),
            expires_at=expires,
            ip=ctx.ip,
            user_agent=(ctx.user_agent or "")[:400] or None,
        )
    )
    return TokenPair(
        user=user,
        access_token=access,
        access_expires_at=claims.expires_at,
        refresh_token=raw,
        refresh_expires_at=expires,
        csrf_token=csrf,
    )


def issue_session(*, session: Session, settings: Settings, user: User, cookie: bool) -> TokenPair:
    """A new login's token pair for a user already authenticated elsewhere (single sign-on); the caller commits."""
    return _issue(
        session=session, user=user, settings=settings, family_id=new_id(), cookie=cookie, ctx=current_request()
    )


def login(
    *,
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    cookie: bool = False,
    lockout: LoginLockout | None = None,
) -> TokenPair:
    """Check the password and issue an access + refresh token pair.

    Args:
        session: database session (committed here, also on failure, so the failure count sticks).
        settings: token lifetimes and the signing key.
        email: case-insensitive.
        password: plain text, checked against the argon2 hash.
        cookie: also make a CSRF token bound into the access token (web-app cookie session).
        lockout: where failed logins are counted (default: the user row; the API passes the app's, which is
            Redis when ``VITALENS_REDIS_URL`` is set).

    Raises:
        Unauthorized: unknown e-mail, wrong password, inactive user, or a locked account.
    """
    ctx = current_request()
    lockout = lockout or DatabaseLockout()
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    now = _now()
    if user is None:
        verify_password(password, None)  # same time as a real check
        record_event(
            session=session,
            actor=None,
            action="auth.login_failed",
            record_type="user",
            outcome="failed",
            detail={"reason": "unknown e-mail"},
        )
        session.commit()
        raise Unauthorized(_BAD_CREDENTIALS)
    locked_s = lockout.locked_seconds(session=session, user=user, now=now)
    if locked_s is not None:
        verify_password(password, None)  # same time as a real check: the lock must not show in the timing either
        record_event(
            session=session,
            actor=user,
            action="auth.login_locked",
            record_type="user",
            record_id=user.id,
            outcome="denied",
            detail={"locked_minutes_left": max(1, int(locked_s // 60) + 1), "lockout": lockout.backend},
        )
        session.commit()
        raise Unauthorized(_BAD_CREDENTIALS)
    if not verify_password(password, user.password_hash) or not user.is_active:
        failures, locked = lockout.failed(session=session, user=user, now=now)
        detail: dict[str, Any] = {"failed_logins": failures, "lockout": lockout.backend}
        if locked:
            detail["locked_minutes"] = LOCKOUT_MINUTES
        record_event(
            session=session,
            actor=user,
            action="auth.login_failed",
            record_type="user",
            record_id=user.id,
            outcome="failed",
            detail=detail,
        )
        session.commit()
        raise Unauthorized(_BAD_CREDENTIALS)
    lockout.succeeded(session=session, user=user)
    user.last_login_at = now
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    pair = _issue(session=session, user=user, settings=settings, family_id=new_id(), cookie=cookie, ctx=ctx)
    record_event(session=session, actor=user, action="auth.login", record_type="user", record_id=user.id)
    session.commit()
    return pair


def _revoke_family(session: Session, family_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


def refresh(*, session: Session, settings: Settings, refresh_token: str, cookie: bool = False) -> TokenPair:
    """Exchange a refresh token for a new pair (rotation). A replayed token revokes its whole family.

    Raises:
        Unauthorized: unknown, expired, revoked or replayed token, or an inactive user.
    """
    ctx = current_request()
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token or "")))
    if row is None:
        raise Unauthorized("refresh token invalid")
    user = session.get(User, row.user_id)
    if row.revoked_at is not None:
        raise Unauthorized("refresh token revoked")
    # claim the token atomically: of two concurrent refreshes only one wins, the other is a replay
    claimed = cast(
        "CursorResult[Any]",
        session.execute(
            update(RefreshToken).where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None)).values(used_at=_now())
        ),
    ).rowcount
    if not claimed:
        _revoke_family(session, row.family_id)
        record_event(
            session=session,
            actor=user,
            action="auth.refresh_replay",
            record_type="user",
            record_id=row.user_id,
            outcome="denied",
            detail={"family_id": row.family_id},
        )
        session.commit()
        logger.warning("refresh token replayed for user %s; family %s revoked", row.user_id, row.family_id)
        raise Unauthorized("refresh token already used; every session of this login has been revoked")
    if row.expires_at <= _now():
        session.commit()
        raise Unauthorized("refresh token expired")
    if user is None or not user.is_active:
        session.commit()
        raise Unauthorized("user inactive")
    pair = _issue(session=session, user=user, settings=settings, family_id=row.family_id, cookie=cookie, ctx=ctx)
    record_event(session=session, actor=user, action="auth.refresh", record_type="user", record_id=user.id)
    session.commit()
    return pair


def logout(
    *, session: Session, user: User, claims: AccessClaims | None = None, refresh_token: str | None = None
) -> None:
    """Revoke the presented access token (by ``jti``) and the refresh token's family."""
    if claims is not None and session.get(RevokedToken, claims.jti) is None:
        session.add(RevokedToken(jti=claims.jti, user_id=user.id, expires_at=claims.expires_at))
    if refresh_token:
        row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token)))
        if row is not None and row.user_id == user.id:
            _revoke_family(session, row.family_id)
    record_event(session=session, actor=user, action="auth.logout", record_type="user", record_id=user.id)
    session.commit()


def revoke_all_sessions(*, session: Session, user_id: str) -> None:
    """Revoke every refresh token of ``user_id`` (the caller commits)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


def authenticate(*, session: Session, settings: Settings, token: str) -> tuple[User, AccessClaims]:
    """The active user an access token belongs to.

    Raises:
        Unauthorized: forged, expired or revoked token, or a missing/inactive user.
    """
    try:
        claims = decode_access_token(token, secret_key=settings.signing_key)
    except TokenError as exc:
        raise Unauthorized(str(exc)) from None
    if session.get(RevokedToken, claims.jti) is not None:
        raise Unauthorized("access token revoked")
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("user inactive or unknown")
    return user, claims
