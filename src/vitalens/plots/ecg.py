"""The standard 12-lead ECG sheet as a PNG: 3 × 4 leads plus a lead II rhythm strip on calibrated paper.

Why calibrated paper: clinicians read ECGs by the grid (25 mm/s, 10 mm/mV, 1 mm and 5 mm squares). The axes
here are in millimetres of paper, so one small square is exactly 0.04 s × 0.1 mV whatever the pixel size,
and a model's attribution is shaded under the trace it refers to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

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
#: Where the grid's axes sit in the figure, as (left, bottom, width, height) fractions.
_AXES_RECT = (
    _MARGIN_MM["left"] / SHEET_SIZE_MM[0],
    _MARGIN_MM["bottom"] / SHEET_SIZE_MM[1],
    _GRID_W_MM / SHEET_SIZE_MM[0],
    _GRID_H_MM / SHEET_SIZE_MM[1],
)
_ATTRIBUTION_CMAP = "YlOrRd"
_ATTRIBUTION_MAX_ALPHA = 0.65


def _grid_lines(ax: Any) -> None:
    from matplotlib.collections import LineCollection

    x0, x1 = -_CAL_MM, _SHEET_S * PAPER_SPEED_MM_PER_S
    for step, width, colour in ((1.0, 0.25, "#f6c6c6"), (5.0, 0.6, "#e58e8e")):
        xs = np.arange(x0, x1 + 1e-9, step)
        ys = np.arange(0.0, _GRID_H_MM + 1e-9, step)
        segs = [[(x, 0.0), (x, _GRID_H_MM)] for x in xs] + [[(x0, y), (x1, y)] for y in ys]
        ax.add_collection(LineCollection(segs, linewidths=width, colors=colour, zorder=0))


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


def _sheet(facecolor: str = "white") -> tuple[Any, Any]:
    """An empty figure of the sheet's size with the grid's axes in millimetres of paper (``"none"``: transparent)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width_mm, height_mm = SHEET_SIZE_MM
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=_DPI, facecolor=facecolor)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(_AXES_RECT)
    ax.set_xlim(-_CAL_MM, _SHEET_S * PAPER_SPEED_MM_PER_S)
    ax.set_ylim(0.0, _GRID_H_MM)
    ax.set_axis_off()
    return fig, ax


def _pixels(fig: Any) -> np.ndarray:
    """The figure drawn, as (H, W, 4) uint8 RGBA (straight alpha)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def _grid_box(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, left, rows, columns) of the grid's axes in a sheet image of ``shape``, as matplotlib places them."""
    height, width = shape[0], shape[1]
    left, bottom, w, h = _AXES_RECT
    x0, x1 = round(left * width), round((left + w) * width)
    y0, y1 = round((1.0 - bottom - h) * height), round((1.0 - bottom) * height)
    return y0, x0, y1 - y0, x1 - x0


def _blend(base: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Paint ``rgb`` (uint8, the shape of ``base``) with straight opacity ``alpha`` (uint8, 0–255, one value per
    pixel of ``base``) over uint8 RGB ``base``, in place; only pixels with some opacity are touched (the traces and
    labels are a small part of the sheet)."""
    mask = alpha > 0
    if not mask.any():
        return
    a = alpha[mask].astype(np.uint16)[:, None]
    base[mask] = ((base[mask] * (255 - a) + rgb[mask] * a + 127) // 255).astype(np.uint8)


def _row_baselines() -> list[float]:
    return [_GRID_H_MM - (r + 0.5) * _ROW_MM for r in range(len(ECG_LAYOUT) + 1)]


@lru_cache(maxsize=2)
def _paper(shaded: bool) -> np.ndarray:
    """The parts of the sheet that no record changes, drawn once per process: the grid, every row's calibration
    pulse and the footer (scale line, with the shading legend when ``shaded``, and the decision-support notice).

    Why: drawing ~1,400 grid lines and the footer text was most of a sheet's cost, repeated for every explained
    finding; they depend only on the module's constants. Read-only, shared by every caller (threads included)."""
    fig, ax = _sheet()
    _grid_lines(ax)
    for baseline in _row_baselines():
        cal_x = np.array([-8.0, -7.0, -7.0, -2.0, -2.0, -1.0])
        cal_y = baseline - 5.0 + np.array([0.0, 0.0, GAIN_MM_PER_MV, GAIN_MM_PER_MV, 0.0, 0.0])
        ax.plot(cal_x, cal_y, color="black", linewidth=0.8, zorder=3)
    width_mm, height_mm = SHEET_SIZE_MM
    scale = (
        f"{PAPER_SPEED_MM_PER_S:g} mm/s · {GAIN_MM_PER_MV:g} mm/mV · grid 1 mm / 5 mm · "
        f"rhythm strip: lead {RHYTHM_LEAD}"
    )
    if shaded:
        scale += " · shading: model attribution (darker = more influence)"
    fig.text(_MARGIN_MM["left"] / width_mm, 8.0 / height_mm, scale, fontsize=6.5)
    fig.text(_MARGIN_MM["left"] / width_mm, 3.0 / height_mm, DECISION_SUPPORT_NOTICE, fontsize=6.5, style="italic")
    pixels = _pixels(fig)[:, :, :3]
    pixels.setflags(write=False)
    return pixels


def _segments(std: ECGRecord) -> list[tuple[str, float, int, int, int]]:
    """(lead, baseline mm, first sample, end sample, column) of every drawn segment of the 3 × 4 layout and the
    rhythm strip."""
    out = []
    for baseline, row in zip(_row_baselines(), [*ECG_LAYOUT, (RHYTHM_LEAD,)], strict=True):
        seg_s = _SHEET_S / len(row)
        for c, lead in enumerate(row):
            a = int(round(c * seg_s * std.fs_hz))
            b = min(int(round((c + 1) * seg_s * std.fs_hz)), std.n_samples)
            if b - a >= 2:
                out.append((lead, baseline, a, b, c))
    return out


def _shade(
    sheet: np.ndarray, std: ECGRecord, attr_rows: np.ndarray, segments: list[tuple[str, float, int, int, int]]
) -> None:
    """Shade each segment's attribution under its trace, in place: over the segment's row band, every pixel column
    takes the nearest sample's strength as the colour of ``_ATTRIBUTION_CMAP`` with opacity ``0.65 · strength``."""
    from vitalens.explain.overlay import colorize

    top, left, rows, cols = _grid_box(sheet.shape)
    x_mm = -_CAL_MM + (np.arange(cols) + 0.5) * (_GRID_W_MM / cols)
    y_mm = _GRID_H_MM - (np.arange(rows) + 0.5) * (_GRID_H_MM / rows)  # row 0 is the top of the grid
    for lead, baseline, a, b, _ in segments:
        in_x = np.flatnonzero(
            (x_mm >= a / std.fs_hz * PAPER_SPEED_MM_PER_S) & (x_mm <= (b - 1) / std.fs_hz * PAPER_SPEED_MM_PER_S)
        )
        in_y = np.flatnonzero(np.abs(y_mm - baseline) <= _ROW_MM / 2)
        if in_x.size == 0 or in_y.size == 0:
            continue
        sample = np.clip(np.rint(x_mm[in_x] / PAPER_SPEED_MM_PER_S * std.fs_hz).astype(int), a, b - 1)
        strength = np.clip(attr_rows[STANDARD_LEADS.index(lead), sample], 0.0, 1.0).astype(np.float32)
        alpha = np.rint(255.0 * _ATTRIBUTION_MAX_ALPHA * strength).astype(np.uint16)[None, :, None]
        colour = colorize(strength, _ATTRIBUTION_CMAP).astype(np.uint16)[None, :, :]
        band = sheet[top + in_y[0] : top + in_y[-1] + 1, left + in_x[0] : left + in_x[-1] + 1]
        # dense: an attribution is non-zero almost everywhere, and one value per pixel column spans the band
        band[...] = ((band * (255 - alpha) + colour * alpha + 127) // 255).astype(np.uint8)


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
    from vitalens.explain.overlay import png_bytes

    attr_rows = _attribution_rows(
        record, attribution, record.leads if attribution_leads is None else tuple(attribution_leads)
    )
    std = record.to_standard12()
    fs = std.fs_hz
    segments = _segments(std)
    sheet = _paper(attr_rows is not None).copy()
    if attr_rows is not None:
        _shade(sheet, std, attr_rows, segments)
    fig, ax = _sheet(facecolor="none")  # traces and text only, painted over the paper below
    for lead, baseline, a, b, column in segments:
        x = (a + np.arange(b - a)) / fs * PAPER_SPEED_MM_PER_S
        v = std.signal[STANDARD_LEADS.index(lead), a:b].astype(np.float64)
        y = baseline + (v - np.median(v)) * GAIN_MM_PER_MV
        ax.plot(x, y, color="black", linewidth=0.6, zorder=4)
        ax.text(x[0] + 1.0, baseline + _ROW_MM / 2 - 4.0, lead, fontsize=7, fontweight="bold", zorder=5)
        if column > 0:
            ax.plot([x[0], x[0]], [baseline - 3.0, baseline + 3.0], color="black", linewidth=0.6, zorder=4)
    width_mm, height_mm = SHEET_SIZE_MM
    duration = std.duration_s()
    heading = title or f"12-lead ECG · {fs:g} Hz · {duration:.1f} s" + (
        f" (first {_SHEET_S:g} s shown)" if duration > _SHEET_S else ""
    )
    fig.text(_MARGIN_MM["left"] / width_mm, 1.0 - 7.0 / height_mm, heading, fontsize=9, fontweight="bold")
    ink = _pixels(fig)
    _blend(sheet, ink[:, :, :3], ink[:, :, 3])
    png = png_bytes(sheet)
    if out is not None:
        Path(out).write_bytes(png)
    return png
