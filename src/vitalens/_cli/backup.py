"""``vitalens backup`` and ``vitalens restore``: the database and its blobs in one verified archive.

Why in the CLI: backups are run by the person operating the server (cron, a Kubernetes CronJob), against the
deployment's own settings (``VITALENS_DATABASE_URL``, ``VITALENS_BLOB_DIR`` / ``VITALENS_BLOB_URL``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

__all__ = ["register"]

logger = logging.getLogger(__name__)
console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    from vitalens._cli._common import user_errors

    @app.command("backup")
    @user_errors
    def backup_cmd(
        out: Path = typer.Option(..., "--out", help="Archive to write (a .tar; refused if it exists)."),
        referenced_only: bool = typer.Option(
            False, "--referenced-only", help="Only blobs a row references (default: every blob in the store)."
        ),
    ) -> None:
        """Back up the database and every blob to one archive with a verifiable manifest."""
        from vitalens.config import get_settings
        from vitalens.store import make_blob_store, make_engine
        from vitalens.store.backup import backup

        settings = get_settings()
        engine = make_engine(settings.sqlalchemy_url)
        try:
            blobs = make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url)
            summary = backup(engine=engine, blobs=blobs, out=out, all_blobs=not referenced_only)
        finally:
            engine.dispose()
        rows = sum(summary.tables.values())
        console.print(
            f"backed up {rows} rows in {len(summary.tables)} tables and {summary.blobs} blobs "
            f"({summary.blob_bytes / 1e6:.1f} MB) at revision {summary.revision} to {out}"
        )
        typer.echo(json.dumps(summary.as_dict()))

    @app.command("restore")
    @user_errors
    def restore_cmd(
        archive: Path = typer.Argument(..., help="An archive written by `vitalens backup`.", exists=True),
    ) -> None:
        """Restore an archive into an empty database and the configured blob store, checking every member."""
        from vitalens.config import get_settings
        from vitalens.store import make_blob_store, make_engine
        from vitalens.store.backup import restore

        settings = get_settings()
        engine = make_engine(settings.sqlalchemy_url)
        try:
            blobs = make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url)
            summary = restore(archive=archive, engine=engine, blobs=blobs, url=settings.sqlalchemy_url)
        finally:
            engine.dispose()
        console.print(
            f"restored {sum(summary.tables.values())} rows in {len(summary.tables)} tables and {summary.blobs} blobs "
            f"from {archive}"
        )
        typer.echo(json.dumps(summary.as_dict()))
