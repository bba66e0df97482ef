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

__all__ = [
    "Bar",
    "SeriesStyle",
    "TimelinePoint",
    "probability_bars_svg",
    "series_styles",
    "study_positions",
    "timeline_svg",
]

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
    """One study's score for one series (probability in [0, 1]), linked to the study page by ``href``.

    ``study`` tells apart two studies of the same day (default: the ``href``); ``order`` puts them in the order they
    were made. ``normal`` marks the "no abnormal finding" output (drawn neutral, never as a finding); ``badge`` is the
    study's band or tier in this panel's section (``"Band: Medium"``), shown under its date.
    """

    series: str
    when: date
    value: float
    href: str
    study: str = ""
    order: int = 0
    normal: bool = False
    badge: str = ""


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: its stroke colour, dash pattern ("" for solid) and whether it is the Normal line."""

    colour: str
    dash: str
    normal: bool = False


#: Distinct, print-safe stroke colours (Okabe–Ito and Tableau hues, all ≥ 3:1 against white); a panel with more
#: series than this gets further hues spaced around the colour wheel, so no two series of a panel share a colour.
PALETTE: tuple[str, ...] = (
    "#0b5cad",  # blue
    "#c0392b",  # red
    "#1e7b34",  # green
    "#8e44ad",  # purple
    "#b9770e",  # ochre
    "#117a8b",  # teal
    "#d35400",  # orange
    "#a0306e",  # magenta
    "#5b4a1f",  # brown
    "#3d52d5",  # indigo
    "#6b8e23",  # olive
    "#c71585",  # pink
)
#: the Normal series: grey and dashed (the absence of findings, not a finding)
NORMAL_STYLE = SeriesStyle(colour="#5d6d7e", dash="6 4", normal=True)
#: the smallest horizontal distance between two studies' points (px): same-day studies sit side by side
MIN_STUDY_GAP = 18.0


def _hue_colour(k: int, n: int) -> str:
    """The ``k``-th of ``n`` extra colours: hues spread evenly, dark enough to read on white."""
    import colorsys

    r, g, b = colorsys.hls_to_rgb(((k + 0.5) / max(n, 1)) % 1.0, 0.36, 0.75)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def series_styles(series: list[str], normal: set[str] | frozenset[str] = frozenset()) -> dict[str, SeriesStyle]:
    """One style per series of a panel, no colour used twice: palette colours in order (sorted series names, so a
    finding keeps its colour from one visit to the next), then evenly spaced hues; ``normal`` series are grey
    and dashed."""
    names = sorted(set(series))
    findings = [n for n in names if n not in normal]
    extra = max(0, len(findings) - len(PALETTE))
    out: dict[str, SeriesStyle] = {}
    for k, name in enumerate(findings):
        colour = PALETTE[k] if k < len(PALETTE) else _hue_colour(k - len(PALETTE), extra)
        out[name] = SeriesStyle(colour=colour, dash="")
    for name in names:
        if name in normal:
            out[name] = NORMAL_STYLE
    return out


def study_positions(keys: list[tuple[date, int, str]], left: float, width: float) -> dict[str, float]:
    """The x of each study: proportional to its date, but never closer than :data:`MIN_STUDY_GAP` to its
    neighbour (same-day and next-day studies sit side by side instead of on top of each other).

    Args:
        keys: one ``(date, order, study)`` per study.
        left, width: the plot's left edge and width (px).

    Returns:
        ``study -> x``, every x within ``[left, left + width]``.
    """
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    if len(ordered) == 1:
        return {ordered[0][2]: left + width / 2}
    gap = min(MIN_STUDY_GAP, width / (len(ordered) - 1))
    d0, d1 = ordered[0][0].toordinal(), ordered[-1][0].toordinal()
    if d1 == d0:  # one day: the studies spread around the middle
        mid = left + width / 2 - gap * (len(ordered) - 1) / 2
        return {k[2]: mid + i * gap for i, k in enumerate(ordered)}
    xs = [left + (k[0].toordinal() - d0) / (d1 - d0) * width for k in ordered]
    for i in range(1, len(xs)):  # push right what sits too close to its left neighbour
        xs[i] = max(xs[i], xs[i - 1] + gap)
    xs[-1] = min(xs[-1], left + width)
    for i in range(len(xs) - 2, -1, -1):  # and back from the right edge
        xs[i] = min(xs[i], xs[i + 1] - gap)
    return {k[2]: x for k, x in zip(ordered, xs, strict=True)}


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def probability_bars_svg(
    bars: list[Bar],
    *,
    width: int = 600,
    row_h: int = 26,
    label_w: int = 250,
    value: str = "Probability",
    stacked: bool = False,
    css_class: str = "",
) -> str:
    """A horizontal bar chart, highest probability first, each threshold drawn as a dark tick.

    Args:
        bars: the findings (any order; sorted here by probability, descending).
        width: SVG width in user units (px); the chart scales with its container.
        row_h: height of one row, px (a stacked row is taller: its label sits on a line of its own).
        label_w: width of the label column, px (side-by-side layout only).
        value: what the numbers are (the findings block's ``value``: ``Probability``, ``Anomaly score``), for the
            chart's accessible title.
        stacked: the phone layout: each label on its own line above its bar, the bar the full width, so a 390 px
            screen shows the chart at a readable size without scrolling sideways (side by side, a 250 px label
            column leaves a phone a third of its width for the bars).
        css_class: extra classes of the ``<svg>`` (the page shows one layout per screen width).

    Returns:
        An ``<svg>`` element as text (``role="img"`` with a textual summary in ``<title>``/``<desc>``; their ids are
        derived from the content and layout, so several charts on one page keep distinct ids).
    """
    import hashlib

    ordered = sorted(bars, key=lambda b: b.probability, reverse=True)
    # stacked: no label column; a margin so the "0%" tick label is not cut at the left edge
    pad = 14 if stacked else 0
    if stacked:
        label_w, row_h = 0, max(row_h, 40)
    plot_w = width - label_w - pad - 70
    height = row_h * len(ordered) + 34
    summary = "; ".join(
        f"{b.label} {b.probability:.0%}"
        + (f" (threshold {b.threshold:.0%}, {'above' if b.positive else 'below'})" if b.threshold is not None else "")
        for b in ordered
    )
    uid = hashlib.sha1(f"{stacked}|{value}|{summary}".encode()).hexdigest()[:8]
    classes = " ".join(c for c in ("chart bars", "stacked" if stacked else "", css_class) if c)
    out = [
        f'<svg class="{classes}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="bars-title-{uid} bars-desc-{uid}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="bars-title-{uid}">{escape(value)} of each finding, highest first, with decision thresholds'
        "</title>",
        f'<desc id="bars-desc-{uid}">{escape(summary)}</desc>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + pad + tick * plot_w
        out.append(f'<line class="grid" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 24}"/>')
        out.append(f'<text class="axis" x="{x:.1f}" y="{height - 8}" text-anchor="middle">{tick:.0%}</text>')
    for i, b in enumerate(ordered):
        y = 6 + i * row_h
        p = _clip01(b.probability)
        cls = "bar normal" if b.normal else "bar pos" if b.positive else "bar neg"
        x0 = label_w + pad
        bar_y, bar_h = (y + 19, row_h - 24) if stacked else (y + 3, row_h - 8)
        if stacked:
            out.append(f'<text class="label" x="{x0}" y="{y + 13}">{escape(b.label)}</text>')
        else:
            out.append(
                f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.62:.1f}" text-anchor="end">'
                f"{escape(b.label)}</text>"
            )
        out.append(
            f'<rect class="{cls}" x="{x0}" y="{bar_y}" width="{max(p * plot_w, 1.0):.1f}" height="{bar_h}">'
            f"<title>{escape(b.label)}: {p:.1%}</title></rect>"
        )
        if b.threshold is not None:
            tx = x0 + _clip01(b.threshold) * plot_w
            top, bottom = (bar_y - 3, bar_y + bar_h + 3) if stacked else (y, y + row_h - 2)
            out.append(
                f'<line class="threshold" x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{bottom}">'
                f"<title>threshold {b.threshold:.1%}</title></line>"
            )
        flag = " ▲" if b.positive else ""
        value_y = bar_y + bar_h * 0.85 if stacked else y + row_h * 0.62
        out.append(f'<text class="value" x="{x0 + plot_w + 6}" y="{value_y:.1f}">{p:.0%}{flag}</text>')
    out.append("</svg>")
    return "".join(out)


def _legend_swatch(style: SeriesStyle) -> str:
    dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
    return (
        '<svg class="swatch" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true" focusable="false">'
        f'<line x1="1" y1="6" x2="29" y2="6" stroke="{style.colour}" stroke-width="2.5"{dash}/>'
        f'<circle cx="15" cy="6" r="4" fill="#fff" stroke="{style.colour}" stroke-width="2"/></svg>'
    )


def timeline_svg(points: list[TimelinePoint], *, width: int = 640, height: int = 260, ident: str = "tl") -> str:
    """Scores over the patient's studies: one line per series, each point a link to its study, and a legend.

    Same-day studies are drawn side by side (:func:`study_positions`), each series has its own colour
    (:func:`series_styles`; Normal grey and dashed), each study's band or tier is written under its date, and the
    legend is an HTML list under the chart (its labels wrap instead of being cut off).

    Args:
        points: the points (any order); dates on x, probability 0–1 on y.
        width, height: SVG size in user units (px).
        ident: the id prefix of the chart's title (unique per page: a page holds one chart per section).

    Returns:
        The ``<svg>`` element and its legend (``<ul class="tl-legend">``) as HTML; an empty-state message when there
        are no points.
    """
    if not points:
        return '<p class="muted">No analysed studies yet: the timeline fills as studies are analysed.</p>'
    badges = any(p.badge for p in points)
    left, right, top, bottom = 44, 20, 12, 30 + (16 if badges else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    keys = {(p.when, p.order, p.study or p.href) for p in points}
    xs = study_positions(list(keys), left + 10, plot_w - 20)
    per_day: dict[date, list[str]] = {}
    for when, _, key in sorted(keys):
        per_day.setdefault(when, []).append(key)

    def y_of(p: TimelinePoint) -> float:
        return top + (1.0 - _clip01(p.value)) * plot_h

    series = sorted({p.series for p in points})
    styles = series_styles(series, {p.series for p in points if p.normal})
    out = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" width="100%" role="group" '
        f'aria-labelledby="{ident}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">Scores over this patient\'s studies (each point links to its study)</title>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + (1 - tick) * plot_h
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>')
    # dates under their studies (one label per day, centred on its studies; a label that would run into the one
    # before it is left out, the points keep the date in their names), the band or tier under each study
    last_end = -1e9
    for when, studies in per_day.items():
        centre = sum(xs[k] for k in studies) / len(studies)
        for k in studies:
            x = xs[k]
            out.append(f'<line class="grid" x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}"/>')
        label = when.isoformat() + (f" ({len(studies)})" if len(studies) > 1 else "")
        half = 3.4 * len(label)
        if centre - half > last_end + 4:
            out.append(
                f'<text class="axis date" x="{centre:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{label}</text>'
            )
            last_end = centre + half
    band_note = ""
    if badges:
        # the full value ("Medium") where every study's fits under it, else every value's initial ("M"), the
        # initials then spelled out under the legend; the point's name and the title keep the full text
        placed = sorted(xs.items(), key=lambda kv: kv[1])
        texts = [next((p.badge for p in points if (p.study or p.href) == k and p.badge), "") for k, _ in placed]
        values = [t.split(":", 1)[-1].strip() for t in texts]

        def fits(labels: list[str]) -> bool:
            ends = [(x - 3.4 * len(v), x + 3.4 * len(v)) for (_, x), v in zip(placed, labels, strict=True) if v]
            return all(b[0] > a[1] + 3 for a, b in zip(ends, ends[1:], strict=False))

        if not fits(values):
            initials = {v: v[:1].upper() for v in values if v}
            values = [initials.get(v, "") for v in values]
            kinds = sorted({t.split(":", 1)[0].strip() for t in texts if t})
            band_note = f"{' / '.join(kinds)} under each study: " + ", ".join(
                f"{i} {v.lower()}" for v, i in sorted(initials.items(), key=lambda kv: kv[1])
            )
        for (_, x), badge, value in zip(placed, texts, values, strict=True):
            if value:
                out.append(
                    f'<text class="axis band" x="{x:.1f}" y="{height - 6}" text-anchor="middle">'
                    f"<title>{escape(badge)}</title>{escape(value)}</text>"
                )
    legend = []
    for name in series:
        st = styles[name]
        dash = f' stroke-dasharray="{st.dash}"' if st.dash else ""
        pts = sorted((p for p in points if p.series == name), key=lambda p: xs[p.study or p.href])
        coords = [(xs[p.study or p.href], y_of(p)) for p in pts]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(
                f'<polyline class="series{" normal" if st.normal else ""}" points="{path}" stroke="{st.colour}"{dash}/>'
            )
        for p, (x, y) in zip(pts, coords, strict=True):
            day = per_day[p.when]
            nth = f" (study {day.index(p.study or p.href) + 1} of {len(day)} that day)" if len(day) > 1 else ""
            band = f"; {p.badge}" if p.badge else ""
            label = f"{name} {p.value:.0%} on {p.when.isoformat()}{nth}{band}: open study"
            out.append(
                f'<a href="{escape(p.href)}" aria-label="{escape(label)}" data-series="{escape(name)}">'
                f'<circle class="pt" cx="{x:.1f}" '
                f'cy="{y:.1f}" r="6" stroke="{st.colour}"><title>{escape(label)}</title></circle></a>'
            )
        note = ' <span class="muted">(no abnormal finding; not itself a finding)</span>' if st.normal else ""
        legend.append(f'<li data-colour="{st.colour}">{_legend_swatch(st)} <span>{escape(name)}{note}</span></li>')
    out.append("</svg>")
    if band_note:
        legend.append(f'<li class="band-note">{escape(band_note)}</li>')
    out.append(f'<ul class="tl-legend" aria-label="Legend">{"".join(legend)}</ul>')
    return "".join(out)
