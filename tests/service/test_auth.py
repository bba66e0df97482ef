"""Auth flows: login, refresh rotation, replay revocation, expired/forged/revoked tokens, lockout, logout,
cookie session with CSRF, rate limits, security headers and CORS off by default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.service.conftest import TEST_SECRET, World
from tests.utils import factories as f
from vitalens.config import Settings
from vitalens.service.ops.auth import BAD_CREDENTIALS, LOCKOUT_MINUTES, LOCKOUT_THRESHOLD
from vitalens.service.security import create_access_token, hash_password, verify_password
from vitalens.store.models import AuditEvent, User


def _login(client: TestClient, email: str, password: str = f.PASSWORD) -> dict:
    resp = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return {"status": resp.status_code, **resp.json()}


def test_argon2_hash_and_verify() -> None:
    h = hash_password("a-long-password")
    assert h.startswith("$argon2id$")
    assert verify_password("a-long-password", h) and not verify_password("a-long-passwore", h)
    assert not verify_password("anything", None)


def test_login_returns_tokens_that_authenticate(client: TestClient, world: World) -> None:
    user = world.a.users["clinician"]
    out = _login(client, user.email.upper())  # e-mail is case-insensitive
    assert out["status"] == 200 and out["token_type"] == "bearer" and out["user"]["role"] == "clinician"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {out['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user.id
    claims = jwt.decode(out["access_token"], TEST_SECRET, algorithms=["HS256"], issuer="vitalens")
    assert claims["sub"] == user.id and len(claims["jti"]) == 32
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_wrong_password_and_unknown_user_give_the_same_answer(client: TestClient, world: World) -> None:
    a = _login(client, world.a.users["clinician"].email, "wrong-password!")
    b = _login(client, "nobody@example.org", "wrong-password!")
    assert a["status"] == b["status"] == 401
    assert a["detail"] == b["detail"] == BAD_CREDENTIALS


def test_no_token_is_401(client: TestClient) -> None:
    resp = client.get("/api/v1/patients")
    assert resp.status_code == 401 and resp.json()["detail"] == "not authenticated"
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", ["expired", "forged", "garbage", "wrong_scheme", "none_alg"])
def test_bad_access_tokens_are_refused(client: TestClient, world: World, settings: Settings, kind: str) -> None:
    user = world.a.users["clinician"]
    if kind == "expired":
        token, _ = create_access_token(
            user_id=user.id, secret_key=settings.secret_key, minutes=1, now=datetime.now(UTC) - timedelta(minutes=10)
        )
        header, reason = f"Bearer {token}", "access token expired"
    elif kind == "forged":
        token, _ = create_access_token(user_id=user.id, secret_key="another-secret-" * 3, minutes=5)
        header, reason = f"Bearer {token}", "access token signature invalid"
    elif kind == "garbage":
        header, reason = "Bearer not.a.jwt", "access token invalid"
    elif kind == "wrong_scheme":
        header, reason = "Basic dXNlcjpwYXNz", "Authorization header must be"
    else:
        unsigned = jwt.encode(
            {"sub": user.id, "jti": "x", "exp": 9999999999, "iss": "vitalens", "typ": "access"},
            key="",
            algorithm="none",
        )
        header, reason = f"Bearer {unsigned}", "access token invalid"
    resp = client.get("/api/v1/patients", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json()["detail"].startswith(reason)


def test_refresh_rotates_and_replay_revokes_family(client: TestClient, world: World) -> None:
    first = _login(client, world.a.users["reviewer"].email)
    r1 = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r1.status_code == 200
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    # replay of the used token: refused, and the new token of the same family dies too
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401 and after.json()["detail"] == "refresh token revoked"
    # a separate login (another family) is unaffected
    other = _login(client, world.a.users["reviewer"].email)
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_unknown_refresh_token(client: TestClient) -> None:
    resp = client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert resp.status_code == 401 and resp.json()["detail"] == "refresh token invalid"


def test_logout_revokes_access_and_refresh(client: TestClient, world: World) -> None:
    out = _login(client, world.a.users["admin"].email)
    headers = {"Authorization": f"Bearer {out['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    resp = client.post("/api/v1/auth/logout", headers=headers, json={"refresh_token": out["refresh_token"]})
    assert resp.status_code == 204
    revoked = client.get("/api/v1/auth/me", headers=headers)
    assert revoked.status_code == 401 and revoked.json()["detail"] == "access token revoked"
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": out["refresh_token"]})
    assert again.status_code == 401 and again.json()["detail"] == "refresh token revoked"


def test_lockout_after_five_failures(client: TestClient, db: Session, world: World) -> None:
    user = world.b.users["clinician"]
    app = client.app
    for i in range(LOCKOUT_THRESHOLD):
        app.state.rate_limiter = None  # isolate lockout from the per-IP rate limit
        assert _login(client, user.email, f"bad-password-{i}")["status"] == 401
    locked = _login(client, user.email)  # even the right password is refused now
    unknown = _login(client, "nobody-here@example.org", "whatever-password")
    # the lock is refused with exactly the unknown-account answer: it must not tell an attacker the account exists
    assert (locked["status"], locked["detail"]) == (401, BAD_CREDENTIALS) == (unknown["status"], unknown["detail"])
    db.expire_all()
    row = db.get(User, user.id)
    assert row is not None and row.failed_logins == LOCKOUT_THRESHOLD
    assert row.locked_until is not None
    remaining = row.locked_until - datetime.now(UTC)
    assert timedelta(minutes=LOCKOUT_MINUTES - 1) < remaining <= timedelta(minutes=LOCKOUT_MINUTES)
    # when the lock has expired, the right password works and resets the counter
    row.locked_until = datetime.now(UTC) - timedelta(seconds=1)
    db.commit()
    assert _login(client, user.email)["status"] == 200
    db.expire_all()
    assert db.get(User, user.id).failed_logins == 0  # type: ignore[union-attr]


def test_four_failures_do_not_lock(client: TestClient, world: World) -> None:
    user = world.b.users["reviewer"]
    for i in range(LOCKOUT_THRESHOLD - 1):
        assert _login(client, user.email, f"bad-{i}-password")["status"] == 401
    assert _login(client, user.email)["status"] == 200


def test_login_rate_limit(client: TestClient) -> None:
    statuses = [_login(client, "nobody@example.org", "x")["status"] for _ in range(11)]
    assert statuses[:10] == [401] * 10
    resp = client.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": "x"})
    assert statuses[10] == 429 and resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1 and "rate limit exceeded" in resp.json()["detail"]


def test_login_events_are_audited(client: TestClient, db: Session, world: World) -> None:
    user = world.a.users["clinician"]
    _login(client, user.email, "wrong-password!")
    _login(client, user.email)
    actions = [e.action for e in db.query(AuditEvent).filter(AuditEvent.actor_id == user.id).order_by(AuditEvent.id)]
    assert actions[-2:] == ["auth.login_failed", "auth.login"]


def test_cookie_session_requires_csrf_for_unsafe_methods(client: TestClient, world: World) -> None:
    user = world.a.users["clinician"]
    resp = client.post("/api/v1/auth/session", json={"email": user.email, "password": f.PASSWORD})
    assert resp.status_code == 200
    csrf = resp.json()["csrf_token"]
    set_cookie = ",".join(resp.headers.get_list("set-cookie"))
    assert "vitalens_access=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    assert client.get("/api/v1/auth/me").status_code == 200  # safe method: cookie alone is enough
    body = {"pseudonym": f"CS-{f.random_suffix()}"}
    no_csrf = client.post("/api/v1/patients", json=body)
    assert no_csrf.status_code == 403 and no_csrf.json()["detail"].startswith("CSRF check failed")
    bad = client.post("/api/v1/patients", json=body, headers={"X-CSRF-Token": "guess"})
    assert bad.status_code == 403
    ok = client.post("/api/v1/patients", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    refreshed = client.post("/api/v1/auth/session/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["csrf_token"] != csrf
    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": refreshed.json()["csrf_token"]})
    assert out.status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/auth/me").status_code == 401


def test_security_headers_and_no_cors_by_default(client: TestClient) -> None:
    resp = client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store" and len(resp.headers["x-request-id"]) == 16
    assert "access-control-allow-origin" not in resp.headers
    pre = client.options(
        "/api/v1/patients", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in pre.headers


def test_deactivated_user_is_refused(client: TestClient, world: World) -> None:
    target = world.a.users["reviewer"]
    resp = client.post(f"/api/v1/users/{target.id}/deactivate", headers=world.a.headers["admin"])
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    denied = client.get("/api/v1/auth/me", headers=world.a.headers["reviewer"])
    assert denied.status_code == 401 and denied.json()["detail"] == "user inactive or unknown"


def test_admin_creates_users_others_cannot(client: TestClient, world: World) -> None:
    body = {"email": f"new-{f.random_suffix()}@example.org", "password": "a-good-password", "role": "reviewer"}
    denied = client.post("/api/v1/users", json=body, headers=world.a.headers["clinician"])
    assert denied.status_code == 403 and denied.json()["detail"] == "role 'clinician' may not user manage"
    created = client.post("/api/v1/users", json=body, headers=world.a.headers["admin"])
    assert created.status_code == 201 and created.json()["site_id"] == world.a.site.id
    dup = client.post("/api/v1/users", json=body, headers=world.a.headers["admin"])
    assert dup.status_code == 409
    weak = client.post(
        "/api/v1/users", json={**body, "email": "w@example.org", "password": "short"}, headers=world.a.headers["admin"]
    )
    assert weak.status_code == 422 and "at least 10 are required" in weak.json()["detail"]
    assert _login(client, body["email"].upper(), "a-good-password")["status"] == 200
