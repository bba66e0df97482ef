"""Server-side SVG charts for the web app: sorted probability bars with thresholds, and the patient timeline.

Why SVG strings built here (no chart library, no CDN): the charts are a few rectangles and lines, they must obey
the strict Content-Security-Policy (no inline styles or scripts: presentation attributes and CSS classes only),
print and scale cleanly, and be readable without colour (every bar and point carries its value as text and a
``<title>`` for screen readers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from html import escape

__all__ = ["Bar", "TimelinePoint", "probability_bars_svg", "timeline_svg"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bar:
    """One finding: ``probability`` and ``threshold`` in [0, 1]; ``positive`` means at or above the threshold."""

    label: str
    probability: float
    threshold: float | None
    positive: bool
    #: the "no abnormal finding" output (NORM, N): drawn in a neutral colour, never as a finding
    normal: bool = False


@dataclass(frozen=True)
class TimelinePoint:
    """One study's score for one series (probability in [0, 1]), linked to the study page by ``href``."""

    series: str
    when: date
    value: float
    href: str


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def probability_bars_svg(bars: list[Bar], *, width: int = 600, row_h: int = 26, label_w: int = 250) -> str:
    """A horizontal bar chart, highest probability first, each threshold drawn as a dark tick.

    Args:
        bars: the findings (any order; sorted here by probability, descending).
        width: SVG width in user units (px); the chart scales with its container.
        row_h: height of one row, px.
        label_w: width of the label column, px.

    Returns:
        An ``<svg>`` element as text (``role="img"`` with a textual summary in ``<title>``/``<desc>``).
    """
    ordered = sorted(bars, key=lambda b: b.probability, reverse=True)
    plot_w = width - label_w - 70
    height = row_h * len(ordered) + 34
    summary = "; ".join(
        f"{b.label} {b.probability:.0%}"
        + (f" (threshold {b.threshold:.0%}, {'above' if b.positive else 'below'})" if b.threshold is not None else "")
        for b in ordered
    )
    out = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="bars-title bars-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="bars-title">Finding probabilities, highest first, with decision thresholds</title>',
        f'<desc id="bars-desc">{escape(summary)}</desc>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + tick * plot_w
        out.append(f'<line class="grid" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 24}"/>')
        out.append(f'<text class="axis" x="{x:.1f}" y="{height - 8}" text-anchor="middle">{tick:.0%}</text>')
    for i, b in enumerate(ordered):
        y = 6 + i * row_h
        p = _clip01(b.probability)
        cls = "bar normal" if b.normal else "bar pos" if b.positive else "bar neg"
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.62:.1f}" text-anchor="end">'
            f"{escape(b.label)}</text>"
        )
        out.append(
            f'<rect class="{cls}" x="{label_w}" y="{y + 3}" width="{max(p * plot_w, 1.0):.1f}" height="{row_h - 8}">'
            f"<title>{escape(b.label)}: {p:.1%}</title></rect>"
        )
        if b.threshold is not None:
            tx = label_w + _clip01(b.threshold) * plot_w
            out.append(
                f'<line class="threshold" x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + row_h - 2}">'
                f"<title>threshold {b.threshold:.1%}</title></line>"
            )
        flag = " ▲" if b.positive else ""
        out.append(f'<text class="value" x="{label_w + plot_w + 6}" y="{y + row_h * 0.62:.1f}">{p:.0%}{flag}</text>')
    out.append("</svg>")
    return "".join(out)


def timeline_svg(points: list[TimelinePoint], *, width: int = 640, height: int = 260) -> str:
    """Scores over the patient's studies: one polyline per series, each point a link to its study.

    Args:
        points: the points (any order); dates on x, probability 0–1 on y.
        width, height: SVG size in user units (px).

    Returns:
        An ``<svg>`` element as text; an empty-state message when there are no points.
    """
    if not points:
        return '<p class="muted">No analysed studies yet: the timeline fills as studies are analysed.</p>'
    left, right, top, bottom = 44, 150, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    days = [p.when.toordinal() for p in points]
    d0, d1 = min(days), max(days)
    span = max(d1 - d0, 1)

    def xy(p: TimelinePoint) -> tuple[float, float]:
        x = left + ((p.when.toordinal() - d0) / span if d1 > d0 else 0.5) * plot_w
        return x, top + (1.0 - _clip01(p.value)) * plot_h

    series = sorted({p.series for p in points})
    out = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" width="100%" role="group" '
        f'aria-labelledby="tl-title" xmlns="http://www.w3.org/2000/svg">',
        '<title id="tl-title">Scores over this patient\'s studies (each point links to its study)</title>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + (1 - tick) * plot_h
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>')
    for when in sorted({p.when for p in points}):
        x = xy(TimelinePoint("", when, 0, ""))[0]
        out.append(f'<text class="axis" x="{x:.1f}" y="{height - 8}" text-anchor="middle">{when.isoformat()}</text>')
    for k, name in enumerate(series):
        pts = sorted((p for p in points if p.series == name), key=lambda p: p.when)
        coords = [xy(p) for p in pts]
        cls = f"series s{k % 8}"
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(f'<polyline class="{cls}" points="{path}"/>')
        for p, (x, y) in zip(pts, coords, strict=True):
            label = f"{name} {p.value:.0%} on {p.when.isoformat()}: open study"
            out.append(
                f'<a href="{escape(p.href)}" aria-label="{escape(label)}"><circle class="{cls} pt" cx="{x:.1f}" '
                f'cy="{y:.1f}" r="6"><title>{escape(label)}</title></circle></a>'
            )
        ly = top + 14 + k * 18
        out.append(
            f'<line class="{cls}" x1="{width - right + 10}" y1="{ly - 4}" x2="{width - right + 28}" '
            f'y2="{ly - 4}"/><text class="legend" x="{width - right + 32}" y="{ly}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
