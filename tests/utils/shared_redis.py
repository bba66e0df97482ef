"""The machine's Redis for tests, under a private key prefix per test so runs sharing it never see each other's keys.

Why a prefix rather than a database number: other suites use Redis databases (the Celery tests flush db 15); a
prefix ``vt-<random>`` is private to one test and its keys are deleted afterwards. Under ``CI=true`` an unreachable
Redis fails the test instead of skipping it (as :mod:`tests.utils.databases` does for PostgreSQL).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

__all__ = ["REDIS_URL", "PrivateRedis", "redis_reachable", "private_redis"]

logger = logging.getLogger(__name__)

REDIS_URL = os.environ.get("VITALENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class PrivateRedis:
    url: str
    prefix: str

    def keys(self) -> list[str]:
        import redis

        client = redis.Redis.from_url(self.url, decode_responses=True)
        return sorted(client.scan_iter(match=f"{self.prefix}:*", count=500))


def redis_reachable() -> str | None:
    """None when Redis answers ``PING``, else the reason it does not."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", with its reason
        return f"Redis at {REDIS_URL} unreachable: {exc}".splitlines()[0]
    return None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A reachable Redis and a fresh key prefix; every key under it is deleted afterwards."""
    reason = redis_reachable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true requires Redis)")
        pytest.skip(reason)
    import redis

    space = PrivateRedis(url=REDIS_URL, prefix=f"vt-{uuid.uuid4().hex[:12]}")
    try:
        yield space
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{space.prefix}:*", count=500))
        if keys:
            client.delete(*keys)
