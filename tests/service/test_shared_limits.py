"""Rate limits and login lockout shared by API replicas through Redis (``VITALENS_REDIS_URL``).

Two app instances on one database and one Redis (a private key prefix per test) stand in for two replicas behind a
load balancer: the login limit and the account lock must hold across them. A control shows that per-process state
would not. Without Redis these tests skip with the reason, and fail under ``CI=true``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.service.conftest import TEST_SECRET
from tests.utils import factories as f
from tests.utils.databases import migrated_engine
from tests.utils.shared_redis import PrivateRedis, private_redis
from vitalens.config import Settings
from vitalens.service.ops.auth import BAD_CREDENTIALS
from vitalens.service.throttle import (
    LOCKOUT_MINUTES,
    LOCKOUT_THRESHOLD,
    DatabaseLockout,
    RedisLockout,
    SharedRateLimiter,
    make_lockout,
    make_rate_limiter,
)
from vitalens.store.models import AuditEvent, User

UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def shared() -> Iterator[PrivateRedis]:
    with private_redis() as space:
        yield space


def _replica(settings: Settings, engine: Engine, blobs: Path) -> FastAPI:
    from vitalens.service.app import create_app
    from vitalens.store import LocalBlobStore, make_session_factory

    app = create_app(settings)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.blobs = LocalBlobStore(blobs)
    return app


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """One SQLite database for both replicas (what is shared here is Redis; the database backend does not matter)."""
    with migrated_engine("sqlite", tmp_path) as eng:
        yield eng


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    from vitalens.store import make_session_factory

    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def two_replicas(
    request: pytest.FixtureRequest, engine: Engine, tmp_path: Path
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on the same database; ``redis_url`` from the test's ``shared`` fixture, if it asked for one."""
    space: PrivateRedis | None = request.getfixturevalue("shared") if "shared" in request.fixturenames else None
    settings = Settings(
        environment="test",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        redis_url=space.url if space else None,
        redis_prefix=space.prefix if space else "vitalens",
    )
    with (
        TestClient(_replica(settings, engine, tmp_path / "blobs")) as a,
        TestClient(_replica(settings, engine, tmp_path / "blobs")) as b,
    ):
        yield a, b


def _login(client: TestClient, email: str, password: str) -> tuple[int, str]:
    resp = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return resp.status_code, str(resp.json().get("detail", ""))


def test_settings_pick_the_backends(shared: PrivateRedis) -> None:
    local = Settings(environment="test", secret_key=TEST_SECRET)
    assert isinstance(make_lockout(local), DatabaseLockout)
    assert not isinstance(make_rate_limiter(local), SharedRateLimiter)
    remote = Settings(environment="test", secret_key=TEST_SECRET, redis_url=shared.url, redis_prefix=shared.prefix)
    assert isinstance(make_lockout(remote), RedisLockout) and isinstance(make_rate_limiter(remote), SharedRateLimiter)
    with pytest.raises(ValueError, match="redis_prefix"):
        Settings(environment="test", secret_key=TEST_SECRET, redis_prefix="has space")


def _refresh(client: TestClient) -> int:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"}).status_code


def test_rate_limit_holds_across_replicas(shared: PrivateRedis, two_replicas: tuple[TestClient, TestClient]) -> None:
    """The auth routes' per-IP limit (here refresh's 30/minute; login's 10/minute is the same limiter)."""
    a, b = two_replicas
    assert [_refresh(c) for c in (a, b) * 15] == [401] * 30  # fifteen on each replica use up the thirty
    for client in (a, b):
        resp = client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
        assert resp.status_code == 429 and "rate limit exceeded (30/minute for refresh)" in resp.json()["detail"]
        assert int(resp.headers["retry-after"]) >= 1
    assert any(key.startswith(f"{shared.prefix}:limits") for key in shared.keys())
    ready = a.get("/ready").json()["checks"]["shared_state"]
    assert ready == {"ok": True, "backend": "redis", "required": False}
    assert _login(a, "nobody@example.org", "wrong-password")[0] == 401  # another scope has its own window


def test_without_redis_each_replica_counts_alone(two_replicas: tuple[TestClient, TestClient]) -> None:
    """The control: per-process windows let thirty attempts through *each* replica (what Redis exists to stop)."""
    a, b = two_replicas
    assert [_refresh(c) for c in (a, b) * 30] == [401] * 60


def test_lockout_holds_across_replicas(
    shared: PrivateRedis, two_replicas: tuple[TestClient, TestClient], db: Session
) -> None:
    a, b = two_replicas
    user = f.create_user(db, site=f.create_site(db), role="clinician")
    replicas = [a, b, a, b, a]  # the failures alternate between the replicas
    assert len(replicas) == LOCKOUT_THRESHOLD
    for i, client in enumerate(replicas):
        assert _login(client, user.email, f"bad-password-{i}") == (401, BAD_CREDENTIALS)
    # locked on both: even the right password is refused, with the one answer for every refusal
    assert _login(a, user.email, f.PASSWORD) == (401, BAD_CREDENTIALS)
    assert _login(b, user.email, f.PASSWORD) == (401, BAD_CREDENTIALS)

    import redis

    client = redis.Redis.from_url(shared.url)
    lock_key = f"{shared.prefix}:lockout:{user.id}:locked"
    ttl = client.ttl(lock_key)
    assert (LOCKOUT_MINUTES - 1) * 60 < ttl <= LOCKOUT_MINUTES * 60
    db.expire_all()
    row = db.get(User, user.id)
    assert row is not None and row.failed_logins == 0 and row.locked_until is None  # counted in Redis, not the row
    events = db.query(AuditEvent).filter(AuditEvent.actor_id == user.id).order_by(AuditEvent.id).all()
    assert [e.action for e in events][-7:] == ["auth.login_failed"] * 5 + ["auth.login_locked"] * 2
    assert events[-3].detail == {
        "failed_logins": 5,
        "lockout": "redis",
        "locked_minutes": LOCKOUT_MINUTES,
        "channel": "api",
    }
    # Redis is the source of truth: when the lock lapses (deleted here), the right password works on either replica
    client.delete(lock_key)
    assert _login(b, user.email, f.PASSWORD)[0] == 200


def test_a_success_resets_the_shared_count(
    shared: PrivateRedis, two_replicas: tuple[TestClient, TestClient], db: Session
) -> None:
    import redis

    a, b = two_replicas
    user = f.create_user(db, site=f.create_site(db), role="reviewer")
    failures_key = f"{shared.prefix}:lockout:{user.id}:failures"
    for i in range(2):
        assert _login(a, user.email, f"bad-{i}-password")[0] == 401
    client = redis.Redis.from_url(shared.url)
    assert int(client.get(failures_key)) == 2  # type: ignore[arg-type]
    assert _login(b, user.email, f.PASSWORD)[0] == 200  # one replica's success clears the count for all
    assert client.get(failures_key) is None


class _Row:
    """Just enough of a user row for the lockout stores (no database needed)."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id
        self.failed_logins = 0
        self.locked_until: datetime | None = None


def test_concurrent_failures_lock_exactly_once(shared: PrivateRedis) -> None:
    """Twenty failures at once (as from many replicas): exactly the fifth locks, none is lost."""
    lockout = RedisLockout(shared.url, prefix=shared.prefix)
    row = _Row("user-concurrent")
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def fail() -> None:
        barrier.wait()
        out = lockout.failed(session=None, user=row, now=datetime.now(UTC))  # type: ignore[arg-type]
        with lock:
            results.append(out)

    threads = [threading.Thread(target=fail) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 20
    # each count 1..5 exactly once (no lost increment), one lock, and the 15 late ones see the lock
    assert sorted(n for n, _ in results) == [1, 2, 3, 4, 5] + [LOCKOUT_THRESHOLD] * 15
    assert [n for n, locked in results if locked] == [LOCKOUT_THRESHOLD]
    left = lockout.locked_seconds(session=None, user=row, now=datetime.now(UTC))  # type: ignore[arg-type]
    assert left is not None and (LOCKOUT_MINUTES - 1) * 60 < left <= LOCKOUT_MINUTES * 60


def test_unreachable_redis_falls_back_to_per_process_state() -> None:
    """A dead Redis neither opens the door nor locks everyone out: each process limits and locks on its own."""
    from limits import parse

    limiter = SharedRateLimiter(UNREACHABLE, prefix="vt-down")
    item = parse("3/minute")
    assert [limiter.hit(item, "login", "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.get_window_stats(item, "login", "10.0.0.1").remaining == 0
    lockout = RedisLockout(UNREACHABLE, prefix="vt-down")
    row = _Row("user-fallback")
    now = datetime.now(UTC)
    outcomes = [lockout.failed(session=None, user=row, now=now) for _ in range(LOCKOUT_THRESHOLD)]  # type: ignore[arg-type]
    assert outcomes[-1] == (LOCKOUT_THRESHOLD, True) and row.locked_until is not None  # the row's counters took over
    assert lockout.locked_seconds(session=None, user=row, now=now) == LOCKOUT_MINUTES * 60  # type: ignore[arg-type]
    assert "ConnectionError" in (lockout.ping() or "")
