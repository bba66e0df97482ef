"""``vitalens worker``: a Celery worker executing analyses from ``VITALENS_BROKER_URL`` (Redis).

Why a command of our own: it configures Celery from the same ``Settings`` as the API (database, blobs, models,
memory budget), so a worker on a GPU node needs only the environment variables, not a Celery config file.
"""

from __future__ import annotations

import importlib
import logging

import typer

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_cmd(
        concurrency: int = typer.Option(
            1, "--concurrency", "-c", min=1, max=64, help="Analyses run at once (one model cache per process)."
        ),
        pool: str = typer.Option("prefork", "--pool", help="Celery pool: prefork, solo or threads."),
        loglevel: str = typer.Option("INFO", "--loglevel", help="Celery log level."),
        imports: list[str] = typer.Option([], "--import", help="Extra modules to import first (custom analyzers)."),
    ) -> None:
        """Run a Celery worker for analysis jobs (needs VITALENS_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
        from vitalens._cli._common import err_console
        from vitalens.config import get_settings

        settings = get_settings()
        if not settings.broker_url:
            err_console.print(
                "[red]error:[/red] VITALENS_BROKER_URL is not set; e.g. "
                "VITALENS_BROKER_URL=redis://127.0.0.1:6379/0 vitalens worker",
                highlight=False,
            )
            raise typer.Exit(code=2)
        if pool not in ("prefork", "solo", "threads"):
            err_console.print(f"[red]error:[/red] unknown pool '{pool}'. Valid: prefork, solo, threads")
            raise typer.Exit(code=2)
        import vitalens.analyzers  # noqa: F401 - fills the analyzer registry before tasks arrive

        for module in imports:
            importlib.import_module(module)
        from vitalens.service.jobs.celery_app import QUEUE, create_celery_app

        celery = create_celery_app(settings.broker_url)
        logger.info("starting worker on %s (pool=%s, concurrency=%d)", settings.broker_url, pool, concurrency)
        celery.worker_main(
            argv=[
                "worker",
                f"--loglevel={loglevel}",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                "-Q",
                QUEUE,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                "vitalens@%h",
            ]
        )
