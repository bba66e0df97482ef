"""The lexicon and the ConText rule files: parsing, guards and the plural rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalens.notes import EntityType, load_lexicon
from vitalens.notes._lexicon import Concept


def test_bundled_lexicon_has_every_type_and_a_version() -> None:
    lexicon = load_lexicon()
    assert {c.type for c in lexicon.concepts} == set(EntityType)
    assert len(lexicon.version) == 12
    assert lexicon["shortness of breath"].abbreviations[:1] == ("SOB",)


def test_plural_variants_only_for_symptoms_and_findings() -> None:
    symptom = Concept(name="headache", type=EntityType.SYMPTOM, synonyms=("head ache", "flashes"))
    assert symptom.phrases() == ["headache", "head ache", "flashes", "headaches", "head aches"]
    medication = Concept(name="statin", type=EntityType.MEDICATION, synonyms=())
    assert medication.phrases() == ["statin"]
    assert Concept(name="drusen", type=EntityType.FINDING, synonyms=(), plural=False).phrases() == ["drusen"]


def test_concepts_with_label() -> None:
    names = {c.name for c in load_lexicon().concepts_with_label("fundus.odir:D")}
    assert names == {"diabetic retinopathy", "macular edema"}


def test_a_bare_yaml_boolean_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lex.yaml"
    path.write_text("concepts:\n  oops:\n    type: symptom\n    synonyms: [no, cough]\n")
    with pytest.raises(ValueError, match="not a string; quote it"):
        load_lexicon(path)


def test_an_unknown_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lex.yaml"
    path.write_text("concepts:\n  oops:\n    type: organ\n")
    with pytest.raises(ValueError, match="concept 'oops' needs a type"):
        load_lexicon(path)


def test_context_rules_load_without_duplicates() -> None:
    pytest.importorskip("medspacy", reason="the notes extra is not installed")
    from vitalens.notes._context import context_rules

    rules = context_rules()
    literals = [r.literal.lower() for r in rules if r.literal != "in <year>" and r.literal != "in his/her relative"]
    assert len(literals) == len(set(literals))
    assert {r.category for r in rules} == {"NEGATED", "HISTORICAL", "FAMILY", "HYPOTHETICAL", "UNCERTAIN", "TERMINATE"}
    assert any(r.literal == "no" and r.category == "NEGATED" for r in rules)  # the YAML boolean trap is closed
