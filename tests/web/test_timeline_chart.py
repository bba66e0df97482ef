"""The patient timeline chart: same-day studies side by side, one colour per series of a panel (Normal grey and
dashed, never a finding colour), a legend that is never cut off, and the band or tier under each study."""

from __future__ import annotations

import re
from datetime import date

from vitalens.web.charts import (
    MIN_STUDY_GAP,
    NORMAL_STYLE,
    PALETTE,
    TimelinePoint,
    series_styles,
    study_positions,
    timeline_svg,
)

ODIR = ["Normal", "Diabetic retinopathy", "Glaucoma", "Cataract", "AMD", "Hypertension", "Myopia", "Other"]


def _circles(svg: str) -> list[tuple[str, float, float]]:
    """(href, cx, cy) of every point."""
    return [
        (href, float(cx), float(cy))
        for href, cx, cy in re.findall(r'<a href="([^"]+)"[^>]*><circle class="pt" cx="([\d.]+)" cy="([\d.]+)"', svg)
    ]


def test_no_colour_repeats_within_a_panel_and_normal_is_neutral() -> None:
    styles = series_styles(ODIR, {"Normal"})
    findings = [styles[n] for n in ODIR if n != "Normal"]
    assert len({s.colour for s in findings}) == len(findings) == 7
    assert styles["Normal"] == NORMAL_STYLE and NORMAL_STYLE.dash and NORMAL_STYLE.colour not in PALETTE
    assert all(not s.dash for s in findings)
    # sorted names take the palette in order, so a finding keeps its colour whatever order the points come in
    assert styles["AMD"].colour == PALETTE[0] and styles == series_styles(list(reversed(ODIR)), {"Normal"})
    # both eyes of eight findings, and more: still one colour each (hues beyond the palette)
    many = [f"{n} ({eye})" for n in ODIR for eye in ("right eye", "left eye")] + [f"x{i}" for i in range(10)]
    colours = [s.colour for s in series_styles(many).values()]
    assert len(colours) == 26 and len(set(colours)) == 26
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


def test_same_day_studies_sit_side_by_side() -> None:
    day, later = date(2024, 5, 1), date(2026, 5, 1)
    xs = study_positions([(day, 0, "a"), (day, 1, "b"), (day, 2, "c"), (later, 3, "d")], 50.0, 500.0)
    assert xs["a"] == 50.0 and xs["b"] == 50.0 + MIN_STUDY_GAP and xs["c"] == 50.0 + 2 * MIN_STUDY_GAP
    assert xs["d"] == 550.0
    # one day only: centred, in creation order
    xs = study_positions([(day, 1, "b"), (day, 0, "a")], 0.0, 100.0)
    assert xs == {"a": 50.0 - MIN_STUDY_GAP / 2, "b": 50.0 + MIN_STUDY_GAP / 2}
    # crowded at the right edge: pushed back left, never past the plot
    xs = study_positions([(date(2020, 1, 1), 0, "a"), (later, 1, "b"), (later, 2, "c")], 0.0, 100.0)
    assert xs == {"a": 0.0, "b": 100.0 - MIN_STUDY_GAP, "c": 100.0}
    # more studies than fit at the full gap: evenly spread over the width
    xs = study_positions([(day, i, f"s{i}") for i in range(11)], 0.0, 100.0)
    assert [round(xs[f"s{i}"], 6) for i in range(11)] == [10.0 * i for i in range(11)]


def test_timeline_points_of_same_day_studies_are_distinct_links() -> None:
    day = date(2024, 5, 1)
    pts = [
        TimelinePoint("Cataract", day, 0.4, "/studies/a", study="a", order=0, badge="Band: Low"),
        TimelinePoint("Cataract", day, 0.4, "/studies/b", study="b", order=1, badge="Band: High"),
        TimelinePoint("Normal", day, 0.7, "/studies/a", study="a", order=0, normal=True, badge="Band: Low"),
        TimelinePoint("Normal", day, 0.7, "/studies/b", study="b", order=1, normal=True, badge="Band: High"),
    ]
    svg = timeline_svg(pts, ident="tl3")
    circles = _circles(svg)
    assert len(circles) == 4
    by_study = {href: cx for href, cx, _ in circles}
    assert by_study["/studies/b"] - by_study["/studies/a"] == MIN_STUDY_GAP  # 6 px points, 18 px apart: no overlap
    assert "Cataract 40% on 2024-05-01 (study 2 of 2 that day); Band: High: open study" in svg
    assert "2024-05-01 (2)" in svg  # the date once, with how many studies that day
    # the band under each study (18 px apart: initials, spelled out in the legend), the title id unique to the panel
    assert re.findall(r'class="axis band"[^>]*><title>([^<]*)</title>(\w+)</text>', svg) == [
        ("Band: Low", "L"),
        ("Band: High", "H"),
    ]
    assert "Band under each study: H high, L low" in svg
    wide = timeline_svg([pts[0], TimelinePoint("Cataract", date(2026, 5, 1), 0.5, "/studies/c", badge="Band: Medium")])
    assert re.findall(r'class="axis band"[^>]*><title>[^<]*</title>(\w+)</text>', wide) == ["Low", "Medium"]
    assert "under each study" not in wide
    assert 'id="tl3-title"' in svg and 'aria-labelledby="tl3-title"' in svg


def test_legend_is_html_with_every_label_whole_and_normal_marked() -> None:
    long = "Age-related macular degeneration (right eye, the longest label a panel has)"
    pts = [
        TimelinePoint(long, date(2024, 1, 1), 0.2, "/studies/a"),
        TimelinePoint("Normal", date(2024, 1, 1), 0.8, "/studies/a", normal=True),
        TimelinePoint("Cataract", date(2024, 1, 1), 0.1, "/studies/a"),
    ]
    svg = timeline_svg(pts)
    legend = svg[svg.index('<ul class="tl-legend"') :]
    assert svg.index("</svg>", svg.index('class="chart timeline"')) < svg.index('<ul class="tl-legend"')
    items = re.findall(r'<li data-colour="(#[0-9a-f]{6})">.*?</svg> <span>([^<]+)', legend)
    assert [name.strip() for _, name in items] == [
        "Age-related macular degeneration (right eye, the longest label a panel has)",
        "Cataract",
        "Normal",
    ]
    assert len({c for c, _ in items}) == 3
    assert "no abnormal finding; not itself a finding" in legend
    assert f'stroke="{NORMAL_STYLE.colour}" stroke-width="2.5" stroke-dasharray="{NORMAL_STYLE.dash}"' in legend


def test_dates_that_would_collide_are_not_printed_on_top_of_each_other() -> None:
    pts = [
        TimelinePoint("D", date(2020, 1, 1), 0.2, "/studies/a"),
        TimelinePoint("D", date(2020, 1, 2), 0.3, "/studies/b"),
        TimelinePoint("D", date(2024, 1, 1), 0.6, "/studies/c"),
    ]
    svg = timeline_svg(pts)
    assert re.findall(r'class="axis date"[^>]*>([^<]+)<', svg) == ["2020-01-01", "2024-01-01"]
    xs = sorted(cx for _, cx, _ in _circles(svg))
    assert xs[1] - xs[0] >= MIN_STUDY_GAP - 1e-6  # the next-day study is still its own point
