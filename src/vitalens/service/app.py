"""The FastAPI application factory: settings, model registry and database are owned by the lifespan.

Why a factory: tests and workers build apps with their own settings; nothing heavy happens at import.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vitalens import DECISION_SUPPORT_NOTICE, __version__
from vitalens.config import Settings, ensure_secret_key, get_settings
from vitalens.errors import ArtifactError, InputError, StorageError, UnknownNameError, UnsupportedMediaError

__all__ = ["create_app", "ROUTER_MODULES"]

logger = logging.getLogger(__name__)

#: Router modules, each exposing ``router`` (an APIRouter). Adding a resource adds one line.
ROUTER_MODULES: tuple[str, ...] = (
    "vitalens.service.api.health",
    "vitalens.service.api.predict",
    "vitalens.service.api.auth",
    "vitalens.service.api.oidc",
    "vitalens.service.api.users",
    "vitalens.service.api.patients",
    "vitalens.service.api.studies",
    "vitalens.service.api.analyses",
    "vitalens.service.api.annotations",
    "vitalens.service.api.feedback",
    "vitalens.service.api.reports",
    "vitalens.service.api.dicom",
    "vitalens.service.api.dicomweb",
    "vitalens.service.api.ops_status",
    "vitalens.service.api.quality",
    "vitalens.service.api.assistant",
    "vitalens.service.api.notes",
    "vitalens.web",
)

#: Optional lifespan hooks ``(app) -> contextmanager`` contributed by other layers (database, jobs, ...).
LIFESPAN_HOOKS: list[Any] = []


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment).

    Without ``VITALENS_SECRET_KEY`` the signing key is read from (or generated into) ``data_dir/secret_key``.
    """
    settings = ensure_secret_key(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from vitalens.service.registry import ModelRegistry

        app.state.settings = settings
        app.state.registry = ModelRegistry(settings)
        from vitalens.service.deps import close_store, open_store

        open_store(app, settings)  # engine, sessions, blobs, rate limiter (SQLite auto-migrates)
        hooks = [hook(app) for hook in LIFESPAN_HOOKS]
        for cm in hooks:
            await cm.__aenter__()
        try:
            yield
        finally:
            for cm in reversed(hooks):
                await cm.__aexit__(None, None, None)
            close_store(app)

    app = FastAPI(
        title="vitalens API",
        version=__version__,
        description=f"Explainable multimodal screening. {DECISION_SUPPORT_NOTICE}",
        lifespan=lifespan,
    )
    app.state.settings = settings

    from vitalens.service.middleware import SecurityMiddleware
    from vitalens.service.ops import OpsError

    if settings.cors_origins:  # CORS is off unless origins are configured
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
        )
    app.add_middleware(SecurityMiddleware, hsts=settings.environment == "prod")

    @app.exception_handler(OpsError)
    async def _ops_error(_: Request, exc: OpsError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.reason}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One readable sentence naming each bad field (e.g. "right: field required"), plus the structured list.
        parts = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # loc is ("body", <character position>): name the body
                position = err.get("loc", ("body", "?"))[-1]
                reason = (err.get("ctx") or {}).get("error", "malformed")
                parts.append(f"body: invalid JSON at character {position} ({str(reason).lower()})")
                continue
            loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header", "cookie")]
            parts.append(f"{'.'.join(loc) or 'body'}: {str(err.get('msg', 'invalid')).lower()}")
        return JSONResponse(
            status_code=422,
            content={"detail": "; ".join(parts), "errors": jsonable_encoder(exc.errors())},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        # FastAPI answers a body it cannot decode with a bare 400 "There was an error parsing the body"; say why
        # (a JSON nested deeper than the parser's recursion limit is the usual cause) and name the body
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            cause = exc.__cause__
            reason = (
                "JSON nested too deeply"
                if isinstance(cause, RecursionError)
                else f"could not be decoded ({type(cause).__name__ if cause else 'unknown error'})"
            )
            return JSONResponse(status_code=422, content={"detail": f"body: {reason}", "field": "body"})
        return await http_exception_handler(request, exc)

    @app.exception_handler(UnsupportedMediaError)
    async def _unsupported(_: Request, exc: UnsupportedMediaError) -> JSONResponse:
        return JSONResponse(status_code=415, content={"detail": str(exc), "field": exc.field})

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc), "field": exc.field})

    @app.exception_handler(UnknownNameError)
    async def _unknown(_: Request, exc: UnknownNameError) -> JSONResponse:
        # a name sent in a field (analyzer, format, role) that is not registered: the request is wrong (422), the
        # route exists; routes that take a name in their *path* answer 404 themselves
        field = getattr(exc, "field", None)
        detail = str(exc) if not field or str(exc).startswith(f"{field}:") else f"{field}: {exc}"
        return JSONResponse(status_code=422, content={"detail": detail, "field": field})

    @app.exception_handler(ArtifactError)
    async def _artifact(_: Request, exc: ArtifactError) -> JSONResponse:
        logger.error("model artifact problem: %s", exc)
        return JSONResponse(status_code=503, content={"detail": f"model unavailable: {exc}"})

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"storage unavailable: {exc}"})

    modules = [importlib.import_module(name) for name in ROUTER_MODULES]
    for module in modules:
        app.include_router(module.router)
    for module in modules:  # after every fixed route: a module may add middleware (metrics) or generated routes
        if callable(getattr(module, "install", None)):  # (one predict route per registered analyzer)
            module.install(app)
    return app
