"""Operational routes: readiness (database, job broker, models) and Prometheus metrics.

Why separate from ``/health``: liveness says the process answers; readiness says it can do its work (the database
answers, the job queue accepts, the bundled models are readable), which is what a load balancer should ask.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vitalens.service.api._access import permission

__all__ = ["router", "readiness", "install"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


def readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    """Check the database, the job runner and the models; returns (ready, per-component detail)."""
    from sqlalchemy import text

    from vitalens.analyzers import get_spec, list_analyzers
    from vitalens.artifacts import ModelCard

    checks: dict[str, Any] = {}
    factory = getattr(app.state, "session_factory", None)
    try:
        if factory is None:
            raise RuntimeError("not open")
        with factory() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not fail
        checks["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    runner = getattr(app.state, "jobs", None)
    if runner is None:
        checks["broker"] = {"ok": False, "detail": "job runner not started"}
    else:
        h = runner.health()
        checks["broker"] = {"ok": h.ok, "backend": h.backend, "detail": h.detail}
    models: dict[str, Any] = {}
    models_dir = app.state.settings.models_dir
    for name in list_analyzers():
        spec = get_spec(name)
        if not spec.default_artifact:
            continue
        try:
            card = ModelCard.read(models_dir / spec.default_artifact)
            models[name] = {"ok": True, "version": card.version, "demonstration": card.demonstration}
        except Exception as exc:  # noqa: BLE001
            models[name] = {"ok": False, "detail": str(exc)[:300]}
    registry = getattr(app.state, "registry", None)
    cache = getattr(registry, "cache", None)
    checks["models"] = {
        "ok": any(m["ok"] for m in models.values()) if models else True,
        "analyzers": models,
        "cache": {"budget_bytes": getattr(cache, "budget_bytes", None)},
    }
    lockout = getattr(app.state, "lockout", None)
    ping = getattr(lockout, "ping", None)
    if callable(ping):  # Redis shared by the replicas: reported, never gating readiness,
        problem = ping()  # because every replica falls back to its own limits while it is away
        checks["shared_state"] = {"ok": problem is None, "backend": "redis", "required": False}
        if problem:
            checks["shared_state"]["detail"] = f"{problem}; rate limits and lockout are per replica meanwhile"
    ready = checks["database"]["ok"] and checks["broker"]["ok"] and checks["models"]["ok"]
    return ready, checks


@router.get("/health", summary="Liveness (the process answers)", openapi_extra=permission("public"))
def health() -> dict[str, str]:
    from vitalens import DECISION_SUPPORT_NOTICE

    return {"status": "ok", "notice": DECISION_SUPPORT_NOTICE}


@router.get("/ready", summary="Readiness: database, job broker and models", openapi_extra=permission("public"))
def ready(request: Request) -> JSONResponse:
    ok, checks = readiness(request.app)
    return JSONResponse(status_code=200 if ok else 503, content={"ready": ok, "checks": checks})


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
    openapi_extra=permission("public"),
)
def metrics() -> Response:
    from vitalens.service import metrics as m

    return Response(content=m.render(), media_type=m.CONTENT_TYPE_LATEST)


class _MetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import time

        from vitalens.service import metrics as m

        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            m.HTTP_REQUESTS.labels(method=method, route=template, status=str(status["code"])).inc()
            m.HTTP_SECONDS.labels(method=method, route=template).observe(time.perf_counter() - start)


def install(app: Any) -> None:
    """Add the request-metrics middleware (counts and latency per route template) to ``app``."""
    app.add_middleware(_MetricsMiddleware)
