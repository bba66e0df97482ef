"""The standard 12-lead ECG sheet as a PNG: 3 × 4 leads plus a lead II rhythm strip on calibrated paper.

Why calibrated paper: clinicians read ECGs by the grid (25 mm/s, 10 mm/mV, 1 mm and 5 mm squares). The axes
here are in millimetres of paper, so one small square is exactly 0.04 s × 0.1 mV whatever the pixel size,
and a model's attribution is shaded under the trace it refers to.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, ECGRecord

__all__ = [
    "ECG_LAYOUT",
    "PAPER_SPEED_MM_PER_S",
    "GAIN_MM_PER_MV",
    "SHEET_SIZE_MM",
    "plot_12lead",
]

logger = logging.getLogger(__name__)

#: Rows × columns of the standard sheet; each column shows 2.5 s of the same 10 s.
ECG_LAYOUT: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_LEAD = "II"
PAPER_SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0
_SHEET_S = 10.0
_COL_S = _SHEET_S / 4
_ROW_MM = 30.0
_CAL_MM = 10.0  # left margin on the grid for the 1 mV calibration pulse
_GRID_W_MM = _SHEET_S * PAPER_SPEED_MM_PER_S + _CAL_MM
_GRID_H_MM = _ROW_MM * (len(ECG_LAYOUT) + 1)
_MARGIN_MM = {"left": 8.0, "right": 5.0, "top": 12.0, "bottom": 14.0}
#: Width × height of the whole PNG sheet in mm (its pixel aspect ratio is this ratio).
SHEET_SIZE_MM: tuple[float, float] = (
    _MARGIN_MM["left"] + _GRID_W_MM + _MARGIN_MM["right"],
    _MARGIN_MM["bottom"] + _GRID_H_MM + _MARGIN_MM["top"],
)
_DPI = 150


def _grid_lines(ax: object) -> None:
    from matplotlib.collections import LineCollection

    x0, x1 = -_CAL_MM, _SHEET_S * PAPER_SPEED_MM_PER_S
    for step, width, colour in ((1.0, 0.25, "#f6c6c6"), (5.0, 0.6, "#e58e8e")):
        xs = np.arange(x0, x1 + 1e-9, step)
        ys = np.arange(0.0, _GRID_H_MM + 1e-9, step)
        segs = [[(x, 0.0), (x, _GRID_H_MM)] for x in xs] + [[(x0, y), (x1, y)] for y in ys]
        ax.add_collection(LineCollection(segs, linewidths=width, colors=colour, zorder=0))  # type: ignore[attr-defined]


def _attribution_rows(
    record: ECGRecord, attribution: np.ndarray | None, source_leads: Sequence[str]
) -> np.ndarray | None:
    if attribution is None:
        return None
    from vitalens.io.ecg import normalise_lead_name

    source_leads = [normalise_lead_name(ld) for ld in source_leads]
    attr = np.asarray(attribution, dtype=np.float64)
    if attr.ndim != 2 or attr.shape[0] != len(source_leads) or attr.shape[1] != record.n_samples:
        raise InputError(
            f"attribution has shape {attr.shape}; expected ({len(source_leads)}, {record.n_samples}) "
            "(leads × samples of the record)",
            field="attribution",
        )
    if not np.all(np.isfinite(attr)):
        raise InputError("attribution contains NaN/inf", field="attribution")
    rows = np.zeros((len(STANDARD_LEADS), record.n_samples))
    for i, lead in enumerate(source_leads):
        if lead in STANDARD_LEADS:
            rows[STANDARD_LEADS.index(lead)] = np.clip(attr[i], 0.0, 1.0)
    return rows


def plot_12lead(
    record: ECGRecord,
    *,
    attribution: np.ndarray | None = None,
    attribution_leads: Sequence[str] | None = None,
    title: str | None = None,
    out: Path | None = None,
) -> bytes:
    """Render the standard 12-lead sheet (3 × 4 + lead II rhythm strip) as PNG bytes.

    Paper: 25 mm/s, 10 mm/mV, 1 mm minor and 5 mm major grid, a 1 mV × 0.2 s calibration pulse per row.
    The first 10 s are shown (shorter records leave the rest of the row empty). Each segment is drawn
    about its own median so baseline wander does not push it into the next row.

    Args:
        record: the ECG; missing III/aVR/aVL/aVF are derived from I and II (``to_standard12``).
        attribution: optional ``(n_leads, n_samples)`` in [0, 1], rows in ``record.leads`` order (values are
            clipped to [0, 1]); shaded under the trace, darker = more influence on the model.
        attribution_leads: the lead of each attribution row when they are not ``record.leads`` (a model that saw
            the 12 standard leads of an 8-lead record: its derived limb leads are shaded too). The time axis is
            always the record's.
        title: text above the sheet; default names the rate and duration.
        out: also write the PNG there.

    Returns:
        The PNG bytes (sheet of ``SHEET_SIZE_MM`` at 150 dpi).

    Raises:
        InputError: a chest lead is missing, or the attribution's shape does not match the record.

    Example:
        >>> png = plot_12lead(read_ecg("braveheart_example1.xml"))  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    attr_rows = _attribution_rows(
        record, attribution, record.leads if attribution_leads is None else tuple(attribution_leads)
    )
    std = record.to_standard12()
    fs = std.fs_hz
    width_mm, height_mm = SHEET_SIZE_MM
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (
            _MARGIN_MM["left"] / width_mm,
            _MARGIN_MM["bottom"] / height_mm,
            _GRID_W_MM / width_mm,
            _GRID_H_MM / height_mm,
        )
    )
    ax.set_xlim(-_CAL_MM, _SHEET_S * PAPER_SPEED_MM_PER_S)
    ax.set_ylim(0.0, _GRID_H_MM)
    ax.set_axis_off()
    _grid_lines(ax)
    rows = [*ECG_LAYOUT, (RHYTHM_LEAD,)]
    for r, row in enumerate(rows):
        baseline = _GRID_H_MM - (r + 0.5) * _ROW_MM
        cal_x = np.array([-8.0, -7.0, -7.0, -2.0, -2.0, -1.0])
        cal_y = baseline - 5.0 + np.array([0.0, 0.0, GAIN_MM_PER_MV, GAIN_MM_PER_MV, 0.0, 0.0])
        ax.plot(cal_x, cal_y, color="black", linewidth=0.8, zorder=3)
        seg_s = _SHEET_S / len(row)
        for c, lead in enumerate(row):
            t0 = c * seg_s
            a = int(round(t0 * fs))
            b = min(int(round((t0 + seg_s) * fs)), std.n_samples)
            if b - a < 2:
                continue
            x = (t0 + np.arange(b - a) / fs) * PAPER_SPEED_MM_PER_S
            v = std.signal[STANDARD_LEADS.index(lead), a:b].astype(np.float64)
            y = baseline + (v - np.median(v)) * GAIN_MM_PER_MV
            if attr_rows is not None:
                strength = attr_rows[STANDARD_LEADS.index(lead), a:b]
                ax.imshow(
                    strength[None, :],
                    extent=(x[0], x[-1], baseline - _ROW_MM / 2, baseline + _ROW_MM / 2),
                    cmap="YlOrRd",
                    vmin=0.0,
                    vmax=1.0,
                    alpha=0.65 * strength[None, :],
                    aspect="auto",
                    interpolation="nearest",
                    zorder=1,
                )
            ax.plot(x, y, color="black", linewidth=0.6, zorder=4)
            ax.text(x[0] + 1.0, baseline + _ROW_MM / 2 - 4.0, lead, fontsize=7, fontweight="bold", zorder=5)
            if c > 0:
                ax.plot([x[0], x[0]], [baseline - 3.0, baseline + 3.0], color="black", linewidth=0.6, zorder=4)
    duration = std.duration_s()
    heading = title or f"12-lead ECG · {fs:g} Hz · {duration:.1f} s" + (
        f" (first {_SHEET_S:g} s shown)" if duration > _SHEET_S else ""
    )
    fig.text(_MARGIN_MM["left"] / width_mm, 1.0 - 7.0 / height_mm, heading, fontsize=9, fontweight="bold")
    scale = (
        f"{PAPER_SPEED_MM_PER_S:g} mm/s · {GAIN_MM_PER_MV:g} mm/mV · grid 1 mm / 5 mm · "
        f"rhythm strip: lead {RHYTHM_LEAD}"
    )
    if attr_rows is not None:
        scale += " · shading: model attribution (darker = more influence)"
    fig.text(_MARGIN_MM["left"] / width_mm, 8.0 / height_mm, scale, fontsize=6.5)
    fig.text(_MARGIN_MM["left"] / width_mm, 3.0 / height_mm, DECISION_SUPPORT_NOTICE, fontsize=6.5, style="italic")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    png = buffer.getvalue()
    if out is not None:
        Path(out).write_bytes(png)
    return png
