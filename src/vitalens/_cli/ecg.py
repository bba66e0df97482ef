"""``vitalens analyze ecg RECORD``: the first version's short form of ``analyze ecg.ptbxl --input ecg=RECORD``,
with ``ecg.intervals`` run on the same record as before.

Why kept: scripts call it. It reads the record by the ``ecg`` slot, runs both analyzers through the generic
command's path (:func:`vitalens._cli.analyze.run_named`) and prints the same document as ``POST
/api/v1/predict/ecg`` (:func:`vitalens.service.ops.predict.with_companions`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from vitalens._cli._common import user_errors
from vitalens._cli.analyze import analyze_app, print_result, run_named

__all__ = ["register"]

logger = logging.getLogger(__name__)

MAIN, COMPANION = "ecg.ptbxl", "ecg.intervals"


@analyze_app.command("ecg")
@user_errors
def analyze_ecg(
    record: Path = typer.Argument(..., help="ECG file: WFDB .hea (or .zip), DICOM, HL7 aECG, GE MUSE XML, CSV."),
    fmt: str | None = typer.Option(None, "--format", help="wfdb | dicom | aecg | muse | csv (default: detect)."),
    fs: float | None = typer.Option(None, "--fs", help="Sampling rate in Hz (needed for CSV without one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the 12-lead sheet with the attribution (PNG)."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Model artifact folder (default: bundled)."),
) -> None:
    """A 12-lead ECG → PTB-XL superclasses (calibrated), risk tier, intervals and where the model looked."""
    from vitalens.errors import VitalensError
    from vitalens.service.ops.predict import attribution_summary, result_document, with_companions

    hints = {"ecg": {k: str(v) for k, v in (("format", fmt), ("fs_hz", fs)) if v is not None}}
    files = {"ecg": record}
    result = run_named(MAIN, files, {}, hints=hints, explain=True, artifact=artifact)
    companion: Any
    try:
        companion = run_named(COMPANION, files, {}, hints=hints)
    except VitalensError as exc:
        companion = exc
    if plot is not None:
        sheet = next((e.overlay_png for e in result.explanations if e.overlay_png), None)
        if sheet is None:
            raise ValueError("no attribution sheet to plot: the analysis made no explanation")
        plot.write_bytes(sheet)
        logger.info("wrote %s", plot)
    if as_json:
        docs = {COMPANION: companion if isinstance(companion, Exception) else result_document(COMPANION, companion)}
        typer.echo(
            json.dumps(with_companions(result_document(MAIN, result), docs, measurements_key="intervals"), indent=2)
        )
        return
    print_result(result)
    if isinstance(companion, Exception):
        typer.echo(f"  intervals not measured: {companion}")
    else:
        for m in companion.measurements:
            value = "not computed" if m.value is None else f"{m.value:.0f} {m.unit}"
            typer.echo(f"  {m.name}: {value}" + (f" ({m.flag})" if m.flag else ""))
    for code, s in attribution_summary(result).items():
        leads = ", ".join(s["top_leads"])
        typer.echo(f"  {code} attribution ({s['method']}): leads {leads}, peak at {s['peak_time_s']} s")


def register(app: typer.Typer) -> None:
    """Nothing to add at the root: ``analyze ecg`` lives on the shared ``analyze`` sub-app."""
