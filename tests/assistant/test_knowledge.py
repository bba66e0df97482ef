"""The bundled knowledge base: every passage cites its sources, numbers come from the code."""

from __future__ import annotations

import pytest

from vitalens.assistant import PassageKind, knowledge_passages
from vitalens.assistant.knowledge import parse_kb_page


def test_every_knowledge_passage_cites_sources_and_has_a_unique_id() -> None:
    passages = knowledge_passages()
    assert len(passages) >= 20
    assert len({p.id for p in passages}) == len(passages)
    assert all(p.kind is PassageKind.KNOWLEDGE and p.source and p.text for p in passages)
    titles = {p.title for p in passages}
    assert {"Glaucoma", "Myocardial infarction on the ECG", "notes.symptoms: the clinician's note"} <= titles


def test_formulas_and_ranges_are_the_codes_own() -> None:
    by_id = {p.id: p for p in knowledge_passages()}
    cardio = by_id["kb:formulas#cardio-proxies"].text
    assert "hypertension = 0.7·P(hypertensive retinopathy) + 0.2·P(diabetic retinopathy) + 0.1·P(AMD)" in cardio
    assert "Low when overall ≤ 0.33, Medium when ≤ 0.66, High above" in cardio
    assert "PR_ms: 120 to 200" in by_id["kb:formulas#interval-ranges"].text
    assert "Low below 0.2, High from 0.5" in by_id["kb:formulas#ecg-tiers"].text


def test_a_section_without_sources_is_refused() -> None:
    with pytest.raises(ValueError, match="section 'A' has no 'Sources:' line"):
        parse_kb_page("page", "# P\n\n## A\nSome text.\n")
    [passage] = parse_kb_page("page", "## A b\nText one.\nSources: Someone 2020.\n")
    assert (passage.id, passage.text, passage.source, passage.anchor) == (
        "kb:page#a-b",
        "Text one.",
        "Someone 2020.",
        "/knowledge#page-a-b",
    )
