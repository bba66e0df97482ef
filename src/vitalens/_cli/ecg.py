"""``vitalens analyze ecg RECORD``: one 12-lead ECG → superclasses, tier, intervals and attribution summary.

Why here and shared: the CLI and ``POST /api/v1/predict/ecg`` return the same JSON (:func:`ecg_json`), built from
the same two analyzers (``ecg.ptbxl`` for the classes, ``ecg.intervals`` for the measurements).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from vitalens._cli._common import user_errors
from vitalens._cli.analyze import analyze_app, print_result
from vitalens.service.ops.predict import attribution_summary, ecg_json, run_ecg

__all__ = ["register"]

logger = logging.getLogger(__name__)


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
    from vitalens.analyzers import create_analyzer
    from vitalens.io.ecg import read_ecg

    rec = read_ecg(record, format=fmt, fs_hz=fs)

    def get(name: str) -> Any:
        return create_analyzer(name, artifact=artifact if name == "ecg.ptbxl" else None)

    result, intervals = run_ecg(rec, registry_get=get)
    if plot is not None:
        _plot(rec, result, plot)
    if as_json:
        typer.echo(json.dumps(ecg_json(result, intervals), indent=2))
        return
    print_result(result)
    if intervals is not None and intervals.measurements:
        for m in intervals.measurements:
            value = "not computed" if m.value is None else f"{m.value:.0f} {m.unit}"
            typer.echo(f"  {m.name}: {value}" + (f" ({m.flag})" if m.flag else ""))
    for code, s in attribution_summary(result).items():
        leads = ", ".join(s["top_leads"])
        typer.echo(f"  {code} attribution ({s['method']}): leads {leads}, peak at {s['peak_time_s']} s")


def _plot(rec: Any, result: Any, out: Path) -> None:
    """The 12-lead sheet with the first explanation's attribution, mapped back to the record's leads and length."""
    import numpy as np

    from vitalens.plots.ecg import plot_12lead

    std = rec.to_standard12()
    attribution = None
    if result.explanations and result.explanations[0].heatmap is not None:
        heat = np.asarray(result.explanations[0].heatmap)
        card_leads = list(result.extras.get("leads", []))
        n = std.signal.shape[1]
        positions = np.linspace(0, heat.shape[1] - 1, n)
        attribution = np.zeros((len(std.leads), n), dtype=np.float32)
        for i, lead in enumerate(std.leads):
            if lead in card_leads:
                attribution[i] = np.interp(positions, np.arange(heat.shape[1]), heat[card_leads.index(lead)])
    plot_12lead(std, attribution=attribution, title=f"{result.model.name}: tier {result.tier}", out=out)
    logger.info("wrote %s", out)


def register(app: typer.Typer) -> None:
    """Nothing to add at the root: ``analyze ecg`` lives on the shared ``analyze`` sub-app."""
