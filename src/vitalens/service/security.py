"""Password hashing (argon2), signed access tokens (JWT HS256), opaque refresh tokens and CSRF tokens.

Why here and small: every credential decision of the service goes through these few functions, so they can be
reviewed together and tested directly. No FastAPI and no database: the ops layer decides what to do with them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AccessClaims",
    "TokenError",
    "create_access_token",
    "decode_access_token",
    "hash_password",
    "hash_token",
    "new_csrf_token",
    "new_refresh_token",
    "password_needs_rehash",
    "tokens_equal",
    "verify_password",
    "MIN_PASSWORD_LENGTH",
]

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "access"
JWT_ALGORITHM = "HS256"
ISSUER = "vitalens"
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
#: A valid hash of a random password, verified against when the user does not exist (equal timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class TokenError(Exception):
    """An access token is missing, malformed, forged, expired or of the wrong type (HTTP 401)."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (parameters from argon2-cffi's RFC 9106 low-memory profile)."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches ``password_hash``; a ``None`` hash still spends the same time."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class AccessClaims:
    """The verified content of an access token."""

    user_id: str
    jti: str
    expires_at: datetime
    csrf_hash: str | None


def create_access_token(
    *,
    user_id: str,
    secret_key: str,
    minutes: int,
    csrf_token: str | None = None,
    now: datetime | None = None,
) -> tuple[str, AccessClaims]:
    """A signed, short-lived access token for ``user_id``.

    Args:
        user_id: the ``sub`` claim.
        secret_key: HS256 key (``Settings.secret_key``).
        minutes: lifetime in minutes.
        csrf_token: for cookie sessions, the CSRF token whose SHA-256 is bound into the token (``csrf`` claim).
        now: the issue time (tests).

    Returns:
        The encoded token and its claims.
    """
    now = now or datetime.now(UTC)
    expires = now + timedelta(minutes=minutes)
    jti = secrets.token_hex(16)
    payload: dict[str, Any] = {
        "sub": user_id,
        "jti": jti,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int(expires.timestamp()),
        "iss": ISSUER,
        "typ": ACCESS_TOKEN_TYPE,
    }
    csrf_hash = hash_token(csrf_token) if csrf_token else None
    if csrf_hash:
        payload["csrf"] = csrf_hash
    token = jwt.encode(payload, secret_key, algorithm=JWT_ALGORITHM)
    return token, AccessClaims(user_id=user_id, jti=jti, expires_at=expires, csrf_hash=csrf_hash)


def decode_access_token(token: str, *, secret_key: str) -> AccessClaims:
    """Verify signature, expiry, issuer and type; raise :class:`TokenError` with the reason otherwise."""
    try:
        payload = jwt.decode(
            token,
            secret_key,
            algorithms=[JWT_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "jti", "iss", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("access token expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError("access token signature invalid") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"access token invalid: {exc}") from None
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenError("not an access token")
    return AccessClaims(
        user_id=str(payload["sub"]),
        jti=str(payload["jti"]),
        expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        csrf_hash=payload.get("csrf"),
    )


def new_refresh_token() -> str:
    """An opaque random refresh token (only its hash is stored)."""
    return secrets.token_urlsafe(48)


def new_csrf_token() -> str:
    """A random CSRF token for the double-submit cookie."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a high-entropy token (no salt needed: the token is random, not a password)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison; False when either is empty."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
