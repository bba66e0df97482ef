"""``vitalens analyze fundus|ecg ...``: run one analyzer on local files and print the findings.

Why: the same analyzer the API and the job workers use, without a server, for a researcher or a quick check.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vitalens._cli._common import user_errors
from vitalens.service.ops.predict import fundus_json

__all__ = ["register", "analyze_app", "print_result"]

logger = logging.getLogger(__name__)

analyze_app = typer.Typer(
    help="Analyse local files with one analyzer (decision support, not a diagnosis).", no_args_is_help=True
)


def _age(value: str) -> float:
    try:
        age = float(value)
    except ValueError:
        raise typer.BadParameter(f"age must be a number of years in 0–120, got '{value}'") from None
    if not 0 <= age <= 120 or age != age:
        raise typer.BadParameter(f"age must be a number of years in 0–120, got {value}")
    return age


def print_result(result: object, console: Console | None = None) -> None:
    """Human-readable table of a result: findings, proxies, band, measurements, provenance, notice."""
    from vitalens.domain import AnalysisResult

    if not isinstance(result, AnalysisResult):
        raise TypeError(f"expected an AnalysisResult, got {type(result).__name__}")
    console = console or Console()
    if result.demonstration:
        console.print(f"[bold yellow]DEMONSTRATION MODEL[/] — trained on {result.trained_on}; not for clinical use.")
    table = Table(title=f"{result.analyzer} · {result.model.name} {result.model.version}")
    for col in ("code", "condition", "probability", "threshold", "positive"):
        table.add_column(col)
    for f in sorted(result.findings, key=lambda f: f.probability, reverse=True):
        table.add_row(
            f.code,
            f.name,
            f"{f.probability:.3f}",
            f"{f.threshold:.3f}" if f.threshold is not None else "—",
            "[bold red]yes[/]" if f.positive else "no",
        )
    console.print(table)
    if result.proxies:
        proxies = ", ".join(f"{k} {v:.3f}" for k, v in result.proxies.items())
        console.print(f"Cardiovascular proxies: {proxies}")
    if result.band is not None:
        console.print(f"Risk band: [bold]{result.band.value}[/]")
    if result.tier is not None:
        console.print(f"Risk tier: [bold]{result.tier.value}[/]")
    if result.measurements:
        mt = Table(title="Measurements")
        for col in ("name", "value", "unit", "reference", "flag"):
            mt.add_column(col)
        for m in result.measurements:
            ref = (
                f"{m.reference_low}–{m.reference_high}"
                if m.reference_low is not None or m.reference_high is not None
                else ""
            )
            mt.add_row(m.name, "not computed" if m.value is None else f"{m.value:.1f}", m.unit, ref, m.flag or "")
        console.print(mt)
    if result.explanation:
        console.print(result.explanation)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"[italic]{result.decision_support_notice}[/]")


def _write_explanations(result: object, folder: Path) -> list[Path]:
    from vitalens.domain import AnalysisResult

    if not isinstance(result, AnalysisResult):
        raise TypeError(f"expected an AnalysisResult, got {type(result).__name__}")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for e in result.explanations:
        if e.overlay_png is None:
            continue
        path = folder / f"{e.input_name}_{e.target}_{e.method}.png"
        path.write_bytes(e.overlay_png)
        written.append(path)
    return written


@analyze_app.command("fundus")
@user_errors
def analyze_fundus(
    left: Path = typer.Option(..., "--left", help="Left-eye fundus photograph (JPEG/PNG, colour)."),
    right: Path = typer.Option(..., "--right", help="Right-eye fundus photograph (JPEG/PNG, colour)."),
    age: str = typer.Option(..., "--age", help="Patient age in years (0–120)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    explain: Path | None = typer.Option(None, "--explain", help="Write Grad-CAM overlays of positive findings here."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Model artifact folder (default: bundled)."),
) -> None:
    """Both fundus photographs + age → 8 ODIR conditions, cardiovascular proxies and band."""
    from vitalens.analyzers import create_analyzer
    from vitalens.config import get_settings
    from vitalens.domain import StudyInputs
    from vitalens.io.images import read_image

    try:
        age_years = _age(age)
    except typer.BadParameter as exc:
        raise ValueError(f"age: {exc}") from None
    settings = get_settings()
    limits = {"max_pixels": settings.max_image_pixels, "max_bytes": settings.max_upload_bytes}
    inputs = StudyInputs(
        fundus_left=read_image(left, field="fundus_left", **limits),
        fundus_right=read_image(right, field="fundus_right", **limits),
        age_years=age_years,
    )
    analyzer = create_analyzer("fundus.odir", artifact=artifact)
    result = analyzer(inputs, explain=explain is not None)
    if explain is not None:
        for path in _write_explanations(result, explain):
            logger.info("wrote %s", path)
    if as_json:
        typer.echo(json.dumps(fundus_json(result), indent=2))
    else:
        print_result(result)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")
