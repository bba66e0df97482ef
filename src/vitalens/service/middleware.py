"""ASGI middleware: request context for the audit trail, security headers, and no caching of responses.

Why pure ASGI (not ``BaseHTTPMiddleware``): the request context is a ``contextvars`` value that must be visible in
the handlers, including sync handlers run in the thread pool; setting it in a plain ASGI wrapper before calling
the app guarantees that, and it costs no extra task per request.

Why it also answers unhandled errors: Starlette's outermost ``ServerErrorMiddleware`` would send the 500 itself,
outside this wrapper and so without the security headers. Here an unhandled exception is logged with its request id
and answered with a JSON 500 that carries every header (and no traceback or server path).

Why ``no-store`` on everything but ``/static``: pages and API answers hold patient data, and a shared or back-button
cache must not keep them after sign-out.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from vitalens.service.ops import RequestContext, request_context, reset_request_context

__all__ = ["SecurityMiddleware", "SECURITY_HEADERS", "CONTENT_SECURITY_POLICY"]

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
#: The interactive API docs load Swagger UI / ReDoc from a CDN; only those pages get this looser policy.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; worker-src 'self' blob:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)
SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the microphone for the app's own pages only (dictation of the note); never for a frame of another origin
    "Permissions-Policy": "camera=(), microphone=(self), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_DOCS_PATHS = ("/docs", "/redoc")


class SecurityMiddleware:
    """Sets :class:`RequestContext` for each HTTP request and adds security headers to every response.

    Args:
        app: the ASGI app.
        hsts: also send ``Strict-Transport-Security`` (production behind TLS).
        trust_forwarded: take the client IP from ``X-Forwarded-For`` (only behind a trusted proxy).
    """

    def __init__(self, app: Any, *, hsts: bool = False, trust_forwarded: bool = False) -> None:
        self.app = app
        self.hsts = hsts
        self.trust_forwarded = trust_forwarded

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        ip = client[0] if client else None
        if self.trust_forwarded and headers.get("x-forwarded-for"):
            ip = headers["x-forwarded-for"].split(",")[0].strip()
        incoming_id = headers.get("x-request-id", "")
        request_id = incoming_id if incoming_id.isalnum() and len(incoming_id) <= 64 else secrets.token_hex(8)
        path: str = scope.get("path", "")
        ctx = RequestContext(ip=ip, user_agent=headers.get("user-agent"), request_id=request_id, channel="api")
        token = request_context(ctx)

        started = False

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in raw}
                extra = dict(SECURITY_HEADERS)
                extra["Content-Security-Policy"] = (
                    DOCS_CONTENT_SECURITY_POLICY if path.startswith(_DOCS_PATHS) else CONTENT_SECURITY_POLICY
                )
                extra["X-Request-ID"] = request_id
                if self.hsts:
                    extra["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
                if not path.startswith("/static/"):
                    extra["Cache-Control"] = "no-store"
                for key, value in extra.items():
                    if key.lower() not in present:
                        raw.append((key.encode("latin-1"), value.encode("latin-1")))
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error in %s %s (request %s)", scope.get("method"), path, request_id)
            if started:  # the status line is out: nothing more can be said to the client
                raise
            body = json.dumps(
                {"detail": f"internal server error; quote request id {request_id}", "request_id": request_id}
            ).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
        finally:
            reset_request_context(token)
