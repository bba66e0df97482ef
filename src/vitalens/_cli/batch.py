"""``vitalens batch ANALYZER --input DIR|manifest.csv --out results.parquet``: screen an archive on Ray Data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    from vitalens._cli._common import err_console, user_errors

    @app.command("batch")
    @user_errors
    def batch_cmd(
        analyzer: str = typer.Argument(..., help="Registered analyzer name, e.g. fundus.odir."),
        source: Path = typer.Option(..., "--input", help="A folder (DICOM studies or one file per case) or a CSV."),
        out: Path = typer.Option(..., "--out", help="Results file (.parquet); parts go to OUT.parts/ meanwhile."),
        artifact: Path | None = typer.Option(None, "--artifact", help="Model artifact (default: the bundled one)."),
        chunk_size: int = typer.Option(256, "--chunk-size", min=1, help="Cases per part file (resume granularity)."),
        concurrency: int | None = typer.Option(None, "--workers", min=1, help="Model replicas (default: CPUs / 2)."),
        threads: int = typer.Option(1, "--threads", min=1, max=64, help="Torch threads per replica."),
    ) -> None:
        """Analyse every case; re-running the same command resumes where an interrupted run stopped.

        A manifest has a ``case_id`` column and one column per slot of the analyzer (file paths relative to the
        CSV; numbers such as ``age`` as values). A folder of DICOM files is grouped by study and sorted into slots
        by the files' modality and laterality, with age and sex from the tags.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        from vitalens.batch import load_cases, run_batch

        if out.suffix.lower() != ".parquet":
            raise ValueError(f"--out must be a .parquet file, got {out.name}")
        cases = load_cases(source, analyzer)
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err_console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"{analyzer}", total=len(cases))
            summary = run_batch(
                analyzer,
                cases,
                out,
                artifact=artifact,
                chunk_size=chunk_size,
                concurrency=concurrency,
                torch_threads=threads,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        err_console.print(
            f"{summary.total} cases: {summary.skipped} already done, {summary.analysed} analysed "
            f"({summary.cases_per_second:.1f}/s), {summary.failed} failed → {summary.out or 'incomplete'}",
            highlight=False,
        )
        typer.echo(json.dumps({k: v for k, v in vars(summary).items() if k != "parts"}))
