"""Single sign-on against a real (local) OpenID Provider: the whole browser round trip, then every way it must fail.

The provider (``tests/utils/oidc_idp.py``) runs on localhost and checks the client, the redirect URI and PKCE like
a real one; the service's side is exercised through its routes exactly as a browser would follow the redirects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import TEST_SECRET, World
from tests.utils import factories as f
from tests.utils.oidc_idp import CLIENT_ID, CLIENT_SECRET, LocalProvider, running_provider
from vitalens.config import Settings
from vitalens.service.ops.oidc import reset_provider_cache
from vitalens.store.models import AuditEvent, ExternalIdentity, Site, User


@pytest.fixture(scope="module")
def provider_server() -> Iterator[LocalProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def provider(provider_server: LocalProvider) -> Iterator[LocalProvider]:
    provider_server.tamper = {}
    provider_server.claims = {}
    reset_provider_cache()
    yield provider_server
    reset_provider_cache()


@pytest.fixture
def settings(tmp_path: Path, provider: LocalProvider) -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_role_map={"eye-clinic-doctors": "clinician", "graders": "reviewer"},
    )


def _sign_in(client: TestClient, next_path: str = "/worklist") -> httpx.Response:
    """Follow the redirects a browser follows: vitalens → provider → vitalens callback; the callback's answer."""
    start = client.get("/api/v1/auth/oidc/login", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/api/v1/auth/oidc/callback"
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def _login_error(response: httpx.Response) -> str:
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login", response.headers["location"]
    return parse_qs(location.query)["error"][0]


def test_authorization_request_uses_pkce_nonce_and_state(client: TestClient, provider: LocalProvider) -> None:
    start = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["openid email profile"] and query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/api/v1/auth/oidc/callback"]
    assert "vitalens_oidc" in start.cookies


def test_sign_in_links_the_administrators_account_by_verified_email(
    client: TestClient, world: World, db: Session, provider: LocalProvider
) -> None:
    user = world.a.users["reviewer"]
    provider.sign_in_as(sub="idp-user-1", email=user.email.upper(), email_verified=True, name="R. Grader")
    done = _sign_in(client, "/worklist")
    assert done.status_code == 303 and done.headers["location"] == "/worklist"
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["id"] == user.id and me.json()["role"] == "reviewer"
    link = db.scalar(select(ExternalIdentity).where(ExternalIdentity.subject == "idp-user-1"))
    assert link is not None and link.user_id == user.id and link.issuer == provider.issuer
    events = db.scalars(select(AuditEvent).where(AuditEvent.actor_id == user.id, AuditEvent.action == "auth.login"))
    assert any((e.detail or {}).get("method") == "oidc" for e in events)

    # the provider's subject keeps naming the account after the e-mail changes there
    client.cookies.clear()
    provider.sign_in_as(sub="idp-user-1", email="renamed@example.org", email_verified=False)
    assert _sign_in(client).status_code == 303
    assert client.get("/api/v1/auth/me").json()["id"] == user.id


def test_unknown_identity_without_provisioning_is_refused_and_audited(
    client: TestClient, world: World, db: Session, provider: LocalProvider
) -> None:
    provider.sign_in_as(sub="stranger", email="stranger@example.org", email_verified=True)
    reason = _login_error(_sign_in(client))
    assert "no vitalens account" in reason
    assert client.get("/api/v1/auth/me").status_code == 401
    failed = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sso_failed")).all()
    assert any("no vitalens account" in (e.detail or {}).get("reason", "") for e in failed)


def test_an_unverified_email_links_nothing(client: TestClient, world: World, provider: LocalProvider) -> None:
    provider.sign_in_as(sub="spoof", email=world.a.users["admin"].email, email_verified=False)
    assert "no vitalens account" in _login_error(_sign_in(client))


def test_the_instance_administrator_never_signs_in_through_the_provider(
    client: TestClient, db: Session, provider: LocalProvider
) -> None:
    site = f.create_site(db)
    root = f.create_user(db, site=site, role="instance_admin")
    provider.sign_in_as(sub="root", email=root.email, email_verified=True)
    assert "instance administrator" in _login_error(_sign_in(client))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ({"nonce": "another-nonce"}, "identity token was refused"),
        ({"aud": "another-client"}, "identity token was refused"),
        ({"lifetime": -600}, "identity token was refused"),
        ({"key": RSAKey.generate_key(2048, parameters={"kid": "k1"})}, "identity token was refused"),
        ({"state": "forged-state"}, "does not belong to this browser"),
    ],
    ids=["nonce", "audience", "expired", "foreign-key", "state"],
)
def test_a_tampered_answer_is_refused(
    client: TestClient, world: World, provider: LocalProvider, tamper: dict[str, object], expected: str
) -> None:
    provider.sign_in_as(sub="idp-user-2", email=world.a.users["clinician"].email, email_verified=True)
    provider.tamper = tamper
    assert expected in _login_error(_sign_in(client))
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_callback_without_the_browsers_state_cookie_is_refused(
    client: TestClient, world: World, provider: LocalProvider
) -> None:
    provider.sign_in_as(sub="idp-user-3", email=world.a.users["clinician"].email, email_verified=True)
    start = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    back = urlsplit(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])
    client.cookies.clear()  # another browser replays the code
    answer = client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert "no sign-in in progress" in _login_error(answer)


def test_provider_error_and_open_redirect(client: TestClient, world: World, provider: LocalProvider) -> None:
    refused = client.get("/api/v1/auth/oidc/callback", params={"error": "access_denied"}, follow_redirects=False)
    assert "access_denied" in _login_error(refused)
    provider.sign_in_as(sub="idp-user-4", email=world.a.users["clinician"].email, email_verified=True)
    done = _sign_in(client, "//evil.example.org/phish")
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_provisioning_from_claims(client: TestClient, db: Session, settings: Settings, provider: LocalProvider) -> None:
    settings.oidc_provision = True
    site = f.create_site(db, name="Eye Clinic North")
    provider.sign_in_as(
        sub="new-1",
        email="new.grader@example.org",
        email_verified=True,
        name="New Grader",
        vitalens_site="Eye Clinic North",
        vitalens_role=["staff", "graders"],
    )
    assert _sign_in(client).status_code == 303
    me = client.get("/api/v1/auth/me").json()
    assert me["email"] == "new.grader@example.org" and me["role"] == "reviewer" and me["site_id"] == site.id
    db.expire_all()
    created = db.scalar(select(User).where(User.email == "new.grader@example.org"))
    assert created is not None and created.full_name == "New Grader"
    # no password signs this account in: it has none anybody knows
    login = client.post("/api/v1/auth/login", json={"email": "new.grader@example.org", "password": ""})
    assert login.status_code == 401


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"vitalens_site": "Nowhere", "vitalens_role": "clinician"}, "does not exist"),
        ({"vitalens_role": "clinician"}, "must name exactly one site"),
        ({"vitalens_site": "Eye Clinic South", "vitalens_role": "instance_admin"}, "maps to no vitalens role"),
        ({"vitalens_site": "Eye Clinic South", "vitalens_role": "superuser"}, "maps to no vitalens role"),
    ],
    ids=["unknown-site", "no-site", "instance-admin-claim", "unmapped-role"],
)
def test_provisioning_refuses_what_the_claims_cannot_grant(
    client: TestClient, db: Session, settings: Settings, provider: LocalProvider, claims: dict[str, str], expected: str
) -> None:
    settings.oidc_provision = True
    if db.scalar(select(Site).where(Site.name == "Eye Clinic South")) is None:
        f.create_site(db, name="Eye Clinic South")
    provider.sign_in_as(
        sub=f"p-{expected}", email=f"p-{uuid.uuid4().hex[:8]}@example.org", email_verified=True, **claims
    )
    assert expected in _login_error(_sign_in(client))


def test_login_page_offers_sso_and_shows_the_reason(client: TestClient, world: World) -> None:
    page = client.get("/login", params={"error": "single sign-on: no vitalens account"})
    assert page.status_code == 200
    assert 'id="sso-login"' in page.text and "Sign in with single sign-on" in page.text
    assert "single sign-on: no vitalens account" in page.text
    config = client.get("/api/v1/auth/oidc").json()
    assert config == {"enabled": True, "display_name": "single sign-on", "login_url": "/api/v1/auth/oidc/login"}


def test_unconfigured_installation_says_so(tmp_path: Path) -> None:
    local = Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path)
    from vitalens.service.ops.oidc import begin_login, oidc_enabled

    assert not oidc_enabled(local)
    with pytest.raises(ValueError, match="not configured"):
        begin_login(settings=local, redirect_uri="http://x/cb")
