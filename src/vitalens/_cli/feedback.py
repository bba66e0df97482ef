"""``vitalens feedback export``: clinicians' reviewed labels, per analyzer, in its dataset's layout for retraining.

Why a command: exports run on the server (they read the database and blob store directly, with no API token),
typically on a schedule; the work is done by :func:`vitalens.service.ops.export.export_feedback`.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

__all__ = ["register"]

logger = logging.getLogger(__name__)
console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    from vitalens._cli._common import user_errors

    feedback_app = typer.Typer(help="Clinician feedback: export reviewed labels for retraining.", no_args_is_help=True)
    app.add_typer(feedback_app, name="feedback")

    @feedback_app.command("export")
    @user_errors
    def export_cmd(
        out: Path = typer.Option(
            ..., "--out", help="New (or empty) folder: one <dataset>/ folder per adapter written, and EXPORT.json."
        ),
        analyzers: list[str] = typer.Option(
            [], "--analyzer", help="Only this analyzer (repeatable); default every analyzer with a dataset adapter."
        ),
        site: str | None = typer.Option(None, "--site", help="Only this site (id or name)."),
        since: str | None = typer.Option(
            None, "--since", help="Only studies reviewed on/after this date (YYYY-MM-DD)."
        ),
        include_unreviewed: bool = typer.Option(
            False, "--include-unreviewed", help="Use the model's output for findings nobody reviewed."
        ),
    ) -> None:
        """Export confirmed/corrected labels with their inputs, each analyzer through its dataset adapter's writer
        (ODIR-5K, PTB-XL, Kermany, APTOS... as the analyzer's contract names)."""
        from vitalens import DECISION_SUPPORT_NOTICE
        from vitalens.config import get_settings
        from vitalens.errors import InputError
        from vitalens.service.ops.export import export_feedback
        from vitalens.store import make_blob_store, make_engine, make_session_factory, session_scope

        since_date = None
        if since:
            try:
                since_date = date.fromisoformat(since)
            except ValueError:
                raise InputError(f"--since {since!r} is not a date (YYYY-MM-DD)", field="since") from None
        settings = get_settings()
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                summary = export_feedback(
                    session=session,
                    blob_store=make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url),
                    out=out,
                    site_id=site,
                    since=since_date,
                    include_unreviewed=include_unreviewed,
                    analyzers=analyzers or None,
                )
        finally:
            engine.dispose()
        console.print(
            f"exported {summary.records} records to {summary.out}; labels from feedback "
            f"{summary.labels_from_feedback}, from the model {summary.labels_from_model}"
        )
        for analyzer, n in sorted(summary.by_analyzer.items()):
            console.print(f"  {analyzer}: {n} records")
        for dataset, n in sorted(summary.by_dataset.items()):
            console.print(f"  {summary.out / dataset}: {n} records")
        for reason, n in summary.skipped.items():
            console.print(f"  skipped {n}: {reason}")
        console.print(DECISION_SUPPORT_NOTICE)
