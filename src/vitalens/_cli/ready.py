"""``vitalens ready``: is this node able to work? For container health checks and Kubernetes probes.

Why a command and not only ``GET /api/v1/ready``: an analysis worker serves no HTTP, yet an orchestrator must know
when it can take jobs (database reachable, broker reachable, blob store reachable, its Celery worker answering).
Exit code 0 when every check passes, 1 otherwise; the checks are printed as one JSON line.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import typer

__all__ = ["register", "node_checks"]

logger = logging.getLogger(__name__)


def _check(checks: dict[str, Any], name: str, fn: Any) -> None:
    try:
        detail = fn()
        checks[name] = {"ok": True, **(detail or {})}
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        checks[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}


def node_checks(*, worker: bool = False, timeout_s: float = 3.0) -> dict[str, Any]:
    """Database, broker (when configured), blob store, and with ``worker`` this host's Celery worker."""
    from sqlalchemy import text

    from vitalens.config import get_settings
    from vitalens.store import is_sqlite, make_blob_store, make_engine
    from vitalens.store.blobs import blob_key_for

    settings = get_settings()
    checks: dict[str, Any] = {}

    def database() -> dict[str, Any]:
        url = settings.sqlalchemy_url
        kwargs: dict[str, Any] = {} if is_sqlite(url) else {"connect_args": {"connect_timeout": max(1, int(timeout_s))}}
        engine = make_engine(url, **kwargs)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
        return {"backend": engine.dialect.name}

    def blobs() -> dict[str, Any]:
        store = make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url)
        store.exists(blob_key_for(b"vitalens readiness probe"))
        return {"location": settings.blob_location if not settings.blob_location.startswith("s3://") else "s3"}

    _check(checks, "database", database)
    _check(checks, "blobs", blobs)
    if settings.broker_url:
        from kombu import Connection

        def broker() -> dict[str, Any]:
            with Connection(settings.broker_url, connect_timeout=timeout_s) as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout_s)
            return {}

        _check(checks, "broker", broker)
        if worker:

            def celery_worker() -> dict[str, Any]:
                from vitalens.service.jobs.celery_app import create_celery_app

                name = f"vitalens@{socket.gethostname()}"
                replies = create_celery_app(settings.broker_url).control.ping(destination=[name], timeout=timeout_s)
                if not replies:
                    raise RuntimeError(f"worker {name} did not answer a ping")
                return {"name": name}

            _check(checks, "worker", celery_worker)
    elif worker:
        checks["worker"] = {"ok": False, "detail": "VITALENS_BROKER_URL is not set"}
    return checks


def register(app: typer.Typer) -> None:
    @app.command("ready")
    def ready_cmd(
        worker: bool = typer.Option(False, "--worker", help="Also require this host's Celery worker to answer."),
        timeout: float = typer.Option(3.0, "--timeout", min=0.1, max=60, help="Seconds per check."),
    ) -> None:
        """Check the database, broker, blob store (and worker); exit 0 when all pass, 1 otherwise."""
        checks = node_checks(worker=worker, timeout_s=timeout)
        ok = all(c["ok"] for c in checks.values())
        typer.echo(json.dumps({"ready": ok, "checks": checks}))
        raise typer.Exit(code=0 if ok else 1)
