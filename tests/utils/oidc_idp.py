"""A small OpenID Provider served on localhost for the single-sign-on tests (no network).

It implements what a real provider does on the code flow: discovery, a JWKS, an authorize endpoint that "signs in"
whoever the test chose and redirects back with a one-time code, and a token endpoint that checks the client, the
redirect URI and the PKCE verifier before returning an RS256-signed ID token. ``tamper`` lets a test make it
misbehave the ways a broken or hostile provider would (another nonce, audience, key, an expired token).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "vitalens-test"
CLIENT_SECRET = "idp-test-client-secret"  # noqa: S105


@dataclass
class LocalProvider:
    """State of the running provider: who signs in next, and how to misbehave."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    claims: dict[str, Any] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def sign_in_as(self, **claims: Any) -> None:
        self.claims = claims


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _app(provider: LocalProvider) -> Starlette:
    async def discovery(_: Request) -> Response:
        return JSONResponse(
            {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(_: Request) -> Response:
        return JSONResponse(KeySet([provider.key]).as_dict(private=False))

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE required"}, status_code=400)
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {
            "nonce": q.get("nonce"),
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "claims": dict(provider.claims),
        }
        state = provider.tamper.get("state", q.get("state"))
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': state})}", status_code=302)

    async def token(request: Request) -> Response:
        provider.token_requests += 1
        form = await request.form()
        grant = provider.codes.pop(str(form.get("code")), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        if _challenge(str(form.get("code_verifier"))) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": provider.issuer,
            "aud": provider.tamper.get("aud", CLIENT_ID),
            "iat": now,
            "exp": now + provider.tamper.get("lifetime", 300),
            "nonce": provider.tamper.get("nonce", grant["nonce"]),
            **grant["claims"],
        }
        key = provider.tamper.get("key", provider.key)
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
        ]
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_provider() -> Iterator[LocalProvider]:
    """Start the provider on a free localhost port in a thread; stop it afterwards."""
    provider = LocalProvider()
    port = _free_port()
    provider.issuer = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(_app(provider), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test identity provider did not start")
        time.sleep(0.05)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
