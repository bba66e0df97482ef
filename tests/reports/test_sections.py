"""Render blocks resolve to the parts the web page and the PDF draw: which findings, rows, figures and text."""

from __future__ import annotations

from types import SimpleNamespace

from vitalens.analyzers import (
    Classes,
    EcgAttribution,
    Findings,
    Measurements,
    Narrative,
    Overlays,
    Scores,
    Summary,
    Table,
    get_contract,
)
from vitalens.reports.sections import Figure, analyzer_blocks, resolve_blocks, section_heading


def _f(code: str, p: float, *, positive: bool = False, slot: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        code=code, name=f"name {code}", probability=p, threshold=0.5, positive=positive, tier=None, input_name=slot
    )


def test_heading_is_the_contracts_title_with_name_and_version_beneath() -> None:
    h = section_heading("fundus.odir", "fundus-odir-small", "0.2.0")
    assert h.title == get_contract("fundus.odir").title == "Eyes → heart"
    assert h.subtitle == "fundus.odir · fundus-odir-small version 0.2.0"
    assert section_heading("ecg.ptbxl").title == "12-lead ECG"
    gone = section_heading("retired.analyzer", None, None)  # rows of an analyzer no longer installed
    assert gone.title == "retired.analyzer" and gone.subtitle == "retired.analyzer"
    assert [b.kind for b in analyzer_blocks("retired.analyzer")][:2] == ["summary", "findings"]


def test_findings_and_classes_split_the_codes_and_classes_are_per_input() -> None:
    blocks = (
        Findings(title="Referable", codes=("RDR",)),
        Classes(title="Grade", codes=("0", "1", "2"), ordered=True, expected_key="expected_grade"),
        Findings(title="Everything else"),
    )
    findings = [
        _f("0", 0.7, positive=True, slot="fundus_right"),
        _f("1", 0.2, slot="fundus_right"),
        _f("2", 0.1, slot="fundus_right"),
        _f("0", 0.1, slot="fundus_left"),
        _f("1", 0.3, slot="fundus_left"),
        _f("2", 0.6, positive=True, slot="fundus_left"),
        _f("RDR", 0.65, positive=True, slot="fundus_right"),
        _f("X", 0.4),
    ]
    result = {"extras": {"expected_grade": {"fundus_right": 0.4, "fundus_left": 1.5}}}
    referable, grade, rest = resolve_blocks(blocks, result=result, findings=findings)
    assert [f.code for f in referable.findings] == ["RDR"]
    assert [f.code for f in rest.findings] == ["X"]  # claimed codes are not repeated
    assert grade.columns == ["Class", "Right eye (OD)", "Left eye (OS)"]
    assert grade.rows[0][1:] == ["70%", "10%"] and grade.rows[2][1:] == ["10%", "60%"]
    assert grade.marked == {(0, 1), (2, 2)}  # the most probable class of each eye
    assert grade.rows[-1] == ["Expected grade (Σ k·p(k))", "0.4", "1.5"]


def test_summary_scores_table_measurements_narrative_and_empty_blocks() -> None:
    blocks = (
        Summary(fields=("band", "tier"), glossary={"band": "band"}),
        Scores(title="Proxies", key="proxies", names={"hypertension": "Hypertension proxy"}, formulas={}),
        Table(title="Rows", key="rows", columns=(("a", "A"), ("b", "B"))),
        Measurements(),
        Narrative(),
        Overlays(slots=("fundus_left",)),
    )
    result = {
        "band": "Medium",
        "tier": None,
        "proxies": {"hypertension": 0.415, "diabetes": 0.2},
        "extras": {"rows": [{"a": 1, "b": None}, {"a": 2.5, "b": True}]},
        "explanation": "Because.",
    }
    summary, scores, table, narrative = resolve_blocks(blocks, result=result, measurements=[])
    assert [(b.label, b.value, b.glossary) for b in summary.badges] == [("Band", "Medium", "band")]
    (grade,) = resolve_blocks((Summary(fields=("grade",)),), result={"extras": {"grade": 2, "maps": {"a": 1}}})
    assert [(b.label, b.value) for b in grade.badges] == [("Grade", "2")]  # from the extras when not a result field
    assert scores.columns == ["Score", "Value (0–1)"]
    assert scores.rows == [["Hypertension proxy", "0.41"], ["diabetes", "0.20"]]
    assert table.columns == ["A", "B"] and table.rows == [["1", "—"], ["2.5", "yes"]]
    assert narrative.text == "Because."  # no measurements and no figures: those blocks show nothing


def test_figures_go_to_the_block_of_their_slot_in_its_order() -> None:
    blocks = (Overlays(slots=("fundus_right", "fundus_left")), EcgAttribution(slot="ecg"))
    figs = [
        Figure("fundus_left", "D", "grad-cam", "l"),
        Figure("ecg", "MI", "saliency", "e"),
        Figure("fundus_right", "D", "grad-cam", "r"),
    ]
    overlays, ecg = resolve_blocks(blocks, result={}, figures=figs)
    assert [f.ref for f in overlays.figures] == ["r", "l"]
    assert ecg.kind == "ecg_attribution" and [f.ref for f in ecg.figures] == ["e"]


def test_measurements_render_with_four_significant_digits_and_no_unit_one() -> None:
    from vitalens.domain import Measurement
    from vitalens.web.routes import templates

    ms = [
        Measurement(name="AVR", value=0.454368, unit="1", reference_low=0.6, reference_high=0.8),
        Measurement(name="QTc", value=452.0, unit="ms", reference_high=450.0, flag="high"),
        Measurement(name="QRS axis", value=None, unit="deg"),
    ]
    (part,) = resolve_blocks((Measurements(),), result={}, measurements=ms)
    html = templates.env.from_string('{% from "_results.html" import measurements_part %}{{ measurements_part(p) }}')
    text = " ".join(html.render(p=part).split())
    # each cell carries its column's name (the phone layout reflows rows into labelled cards)
    assert '<td data-label="Value">0.4544</td> <td data-label="Reference">0.6–0.8</td>' in text
    assert '<td data-label="Value">452 ms</td> <td data-label="Reference">≤ 450 ms</td>' in text
    assert "High (out of range)" in text
    assert "not measured" in text


def test_a_score_is_headed_by_its_name_in_the_page_the_pdf_and_the_cli() -> None:
    """cxr.anomaly's number is a distance-based score in [0, 1], not a probability: its findings block says so and
    each renderer heads the column with that name; a probability analyzer keeps "Probability"."""
    from reportlab.lib.styles import getSampleStyleSheet

    from vitalens._cli.analyze import findings_value
    from vitalens.reports.pdf import _findings_table

    row = SimpleNamespace(**vars(_f("anomaly", 0.7, positive=True)), review=None, review_note=None)
    score = resolve_blocks(analyzer_blocks("cxr.anomaly"), result={}, findings=[row])
    part = next(p for p in score if p.kind == "findings")
    assert part.value == "Anomaly score"
    assert _findings_table(part, getSampleStyleSheet())._cellvalues[0][2] == "Anomaly score"
    assert findings_value("cxr.anomaly") == "Anomaly score"
    odir = resolve_blocks(analyzer_blocks("fundus.odir"), result={}, findings=[_f("D", 0.7, positive=True)])
    assert next(p for p in odir if p.kind == "findings").value == "Probability"
    assert findings_value("fundus.odir") == "Probability" and findings_value("retired.analyzer") == "Probability"
