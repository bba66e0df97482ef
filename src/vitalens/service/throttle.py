"""Rate limits and login lockout: per process by default, shared by every API replica through Redis when configured.

Why a shared store: behind a load balancer each replica used to keep its own rate-limit windows, so ``10/minute``
allowed ten attempts *per replica*, and the lockout counter was read, incremented and written back by whichever
replica took the request, so concurrent guesses on several replicas could overwrite each other's counts. With
``VITALENS_REDIS_URL`` set, the windows are ``limits``' moving windows in Redis and each failed login is one atomic
``INCR`` (a Lua script also sets the lock at the threshold), so the limit and the lock hold across replicas exactly.

Why a fallback: a Redis that stops answering must neither open the door nor lock every clinician out. While it is
unreachable each replica falls back to its own in-memory windows and to the database lockout (logged once a minute);
attackers gain at most a factor of the replica count for that time, and logins keep working.

Without ``VITALENS_REDIS_URL`` (one process, one machine) nothing changes: in-memory windows, lockout in the
database (``users.failed_logins`` / ``users.locked_until``).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import MovingWindowRateLimiter
    from limits.util import WindowStats
    from sqlalchemy.orm import Session

    from vitalens.config import Settings
    from vitalens.store.models import User

__all__ = [
    "LOCKOUT_THRESHOLD",
    "LOCKOUT_MINUTES",
    "FAILURE_MEMORY_S",
    "LoginLockout",
    "DatabaseLockout",
    "RedisLockout",
    "SharedRateLimiter",
    "make_rate_limiter",
    "make_lockout",
    "redis_client",
]

logger = logging.getLogger(__name__)

#: Failed logins in a row that lock an account, and for how long.
LOCKOUT_THRESHOLD = 5
LOCKOUT_MINUTES = 15
#: Redis forgets an account's failed logins this long after the last one (the database keeps them until a success).
FAILURE_MEMORY_S = 24 * 3600
#: Seconds between two "Redis unreachable" warnings of one process.
_WARN_EVERY_S = 60.0


class _Warner:
    """Log a Redis outage at most once a minute per process (it is retried on every request)."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last >= _WARN_EVERY_S:
            self._last = now
            logger.warning("Redis unreachable for %s (%s); falling back to this process's own state", what, exc)


_warn = _Warner()


def redis_client(url: str) -> Any:
    """A Redis client for ``url`` with short timeouts (a request must not hang on a dead Redis)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=30)


# -- rate limits ---------------------------------------------------------------------------------------------------


class SharedRateLimiter:
    """``limits``' moving-window limiter over Redis, falling back to an in-memory one while Redis is unreachable.

    Same two methods as :class:`limits.strategies.MovingWindowRateLimiter`, so ``deps.rate_limit`` uses either.
    """

    backend = "redis"

    def __init__(self, url: str, *, prefix: str) -> None:
        from limits import storage, strategies

        self.url = url
        self._shared = strategies.MovingWindowRateLimiter(
            storage.storage_from_string(
                url, key_prefix=f"{prefix}:limits", wrap_exceptions=True, socket_timeout=1.0, socket_connect_timeout=1.0
            )
        )
        self._local = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        from limits.errors import StorageError

        try:
            return bool(self._shared.hit(item, *identifiers))
        except StorageError as exc:
            _warn("rate limits", exc)
            return bool(self._local.hit(item, *identifiers))

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        from limits.errors import StorageError

        try:
            return self._shared.get_window_stats(item, *identifiers)
        except StorageError as exc:
            _warn("rate limits", exc)
            return self._local.get_window_stats(item, *identifiers)


def make_rate_limiter(settings: Settings) -> MovingWindowRateLimiter | SharedRateLimiter:
    """In-memory moving windows for one process; shared ones in Redis when ``settings.redis_url`` is set."""
    if settings.redis_url:
        return SharedRateLimiter(settings.redis_url, prefix=settings.redis_prefix)
    from limits import storage, strategies

    return strategies.MovingWindowRateLimiter(storage.MemoryStorage())


# -- login lockout -------------------------------------------------------------------------------------------------


class LoginLockout(ABC):
    """Counts an account's failed logins and locks it for :data:`LOCKOUT_MINUTES` at :data:`LOCKOUT_THRESHOLD`.

    The ops layer calls :meth:`locked_seconds` before checking a password, then :meth:`failed` or
    :meth:`succeeded`; the caller commits the session (the database backend writes to the user row).
    """

    backend: ClassVar[str]
    threshold: int = LOCKOUT_THRESHOLD
    minutes: int = LOCKOUT_MINUTES

    @abstractmethod
    def locked_seconds(self, *, session: Session, user: User, now: datetime) -> float | None:
        """Seconds the account stays locked, or None when it is not locked (an expired lock is cleared)."""

    @abstractmethod
    def failed(self, *, session: Session, user: User, now: datetime) -> tuple[int, bool]:
        """Count one failed login; returns (failures in a row, whether this one locked the account)."""

    @abstractmethod
    def succeeded(self, *, session: Session, user: User) -> None:
        """Forget the failures after a successful login."""


class DatabaseLockout(LoginLockout):
    """The counters on the user row (``failed_logins``, ``locked_until``): one process, or replicas that accept
    that concurrent guesses on several replicas may be counted once."""

    backend = "database"

    def locked_seconds(self, *, session: Session, user: User, now: datetime) -> float | None:
        if user.locked_until is None:
            return None
        if user.locked_until > now:
            return (user.locked_until - now).total_seconds()
        user.locked_until = None  # lock expired: start counting again
        user.failed_logins = 0
        return None

    def failed(self, *, session: Session, user: User, now: datetime) -> tuple[int, bool]:
        user.failed_logins = (user.failed_logins or 0) + 1
        locked = user.failed_logins >= self.threshold
        if locked:
            user.locked_until = now + timedelta(minutes=self.minutes)
        return user.failed_logins, locked

    def succeeded(self, *, session: Session, user: User) -> None:
        user.failed_logins = 0


#: KEYS[1] failures counter, KEYS[2] lock; ARGV threshold, lock seconds, failure memory seconds. Atomic, so of N
#: concurrent failures on N replicas exactly the threshold-th one sets the lock; failures that arrive while the
#: account is locked (they passed the lock check just before it was set) are not counted towards a second lock.
_FAIL_SCRIPT = """
local held = redis.call('GET', KEYS[2])
if held then
  return {tonumber(held), 0}
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], n, 'EX', tonumber(ARGV[2]))
  redis.call('DEL', KEYS[1])
  return {n, 1}
end
return {n, 0}
"""


class RedisLockout(LoginLockout):
    """Counters and locks in Redis (``<prefix>:lockout:<user id>:failures`` / ``:locked``), shared by every replica.

    Falls back to :class:`DatabaseLockout` while Redis is unreachable (see the module docstring).
    """

    backend = "redis"

    def __init__(self, url: str, *, prefix: str, client: Any | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self._redis = client if client is not None else redis_client(url)
        self._script = self._redis.register_script(_FAIL_SCRIPT)
        self._fallback = DatabaseLockout()

    def ping(self) -> str | None:
        """None when Redis answers, else why not (readiness reports it; the fallback keeps logins working)."""
        try:
            self._redis.ping()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    def _keys(self, user: User) -> tuple[str, str]:
        base = f"{self.prefix}:lockout:{user.id}"
        return f"{base}:failures", f"{base}:locked"

    def locked_seconds(self, *, session: Session, user: User, now: datetime) -> float | None:
        import redis

        try:
            ms = int(self._redis.pttl(self._keys(user)[1]))
        except redis.RedisError as exc:
            _warn("login lockout", exc)
            return self._fallback.locked_seconds(session=session, user=user, now=now)
        return ms / 1000.0 if ms > 0 else None

    def failed(self, *, session: Session, user: User, now: datetime) -> tuple[int, bool]:
        import redis

        try:
            count, locked = self._script(
                keys=list(self._keys(user)), args=[self.threshold, self.minutes * 60, FAILURE_MEMORY_S]
            )
        except redis.RedisError as exc:
            _warn("login lockout", exc)
            return self._fallback.failed(session=session, user=user, now=now)
        return int(count), bool(int(locked))

    def succeeded(self, *, session: Session, user: User) -> None:
        import redis

        try:
            self._redis.delete(self._keys(user)[0])
        except redis.RedisError as exc:
            _warn("login lockout", exc)
        self._fallback.succeeded(session=session, user=user)


def make_lockout(settings: Settings) -> LoginLockout:
    """The database lockout for one process; the Redis one when ``settings.redis_url`` is set."""
    if settings.redis_url:
        return RedisLockout(settings.redis_url, prefix=settings.redis_prefix)
    return DatabaseLockout()
