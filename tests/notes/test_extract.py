"""notes.extract: lexicon concepts with their ConText modifiers, exact on hand-written sentences."""

from __future__ import annotations

import pytest

pytest.importorskip("medspacy", reason="the notes extra is not installed (pip install 'vitalens[notes]')")

from vitalens.errors import InputError  # noqa: E402
from vitalens.notes import MAX_NOTE_CHARS, EntityType, Modifier, extract_entities  # noqa: E402


def _summary(text: str) -> list[tuple[str, str, str, list[str]]]:
    return [(e.text, e.type.value, e.concept, [m.value for m in e.modifiers]) for e in extract_entities(text).entities]


def test_the_headline_sentence_comes_out_right() -> None:
    assert _summary("No chest pain, father had MI, SOB for 3 days") == [
        ("chest pain", "symptom", "chest pain", ["negated"]),
        ("MI", "condition", "myocardial infarction", ["family"]),
        ("SOB", "symptom", "shortness of breath", []),
    ]


def test_offsets_slice_the_note_and_triggers_name_the_words() -> None:
    text = "No chest pain, father had MI, SOB for 3 days"
    entities = extract_entities(text).entities
    assert [text[e.start : e.end] for e in entities] == ["chest pain", "MI", "SOB"]
    assert entities[0].triggers == {Modifier.NEGATED: "No"}
    assert entities[1].triggers == {Modifier.FAMILY: "father"}
    assert entities[2].affirmed


def test_negation_runs_along_a_list_of_findings() -> None:
    assert [m for *_, m in _summary("Denies fever, chills or night sweats.")] == [["negated"]] * 3
    assert [m for *_, m in _summary("No cough, sputum, wheeze or chest pain; mild fatigue.")] == [
        ["negated"],
        ["negated"],
        ["negated"],
        ["negated"],
        [],
    ]


def test_a_clause_that_is_not_a_list_ends_the_scope() -> None:
    assert _summary("Denies chest pain, reports palpitations.") == [
        ("chest pain", "symptom", "chest pain", ["negated"]),
        ("palpitations", "symptom", "palpitations", []),
    ]
    assert [m for *_, m in _summary("No fever, no cough, but reports wheezing.")] == [["negated"], ["negated"], []]


def test_a_coordinated_list_after_a_verb_keeps_the_family() -> None:
    assert [m for *_, m in _summary("Mother has diabetes, hypertension and glaucoma.")] == [["family"]] * 3


def test_backward_triggers_reach_over_a_coordinated_list_only() -> None:
    assert [m for *_, m in _summary("Chest pain and fever were denied.")] == [["negated"], ["negated"]]
    assert [m for *_, m in _summary("Cough, COVID-19 suspected.")] == [[], ["uncertain"]]


@pytest.mark.parametrize(
    ("text", "concept", "modifiers"),
    [
        ("PMH: HTN.", "hypertension", ["historical"]),
        ("?early cataract", "cataract", ["uncertain"]),
        ("Return if blurred vision worsens.", "blurred vision", ["hypothetical"]),
        ("Possible LVH on ECG.", "left ventricular hypertrophy", ["uncertain"]),
        ("No family history of glaucoma.", "glaucoma", ["negated", "family"]),
        ("History of MI in his father.", "myocardial infarction", ["family"]),  # a relative's history is family only
        ("No history of stroke.", "stroke", ["negated"]),
        ("Pneumonia cannot be excluded.", "pneumonia", ["uncertain"]),
        ("TB ruled out.", "tuberculosis", ["negated"]),
        ("Evaluate for diabetic retinopathy.", "diabetic retinopathy", ["hypothetical"]),
        ("Glaucoma runs in the family.", "glaucoma", ["family"]),
        ("Pedal oedema absent.", "peripheral edema", ["negated"]),
        ("No change in the drusen.", "drusen", []),  # pseudo-negation
    ],
)
def test_each_modifier_from_its_trigger(text: str, concept: str, modifiers: list[str]) -> None:
    found = {c: m for _, _, c, m in _summary(text)}
    assert found[concept] == modifiers


def test_a_findings_modifier_stays_off_the_drug_taken_for_it() -> None:
    assert _summary("History of AF on apixaban.") == [
        ("AF", "condition", "atrial fibrillation", ["historical"]),
        ("apixaban", "medication", "apixaban", []),
    ]
    assert [m for *_, m in _summary("Previously on warfarin.")] == [["historical"]]
    assert [m for *_, m in _summary("Not on any anticoagulant.")] == [["negated"]]


def test_body_sites_carry_no_modifier() -> None:
    assert _summary("No pain in the left arm.") == [
        ("pain", "symptom", "pain", ["negated"]),
        ("left arm", "body_site", "left arm", []),
    ]


def test_abbreviations_match_case_sensitively() -> None:
    assert [c for _, _, c, _ in _summary("SOB and CP")] == ["shortness of breath", "chest pain"]
    assert _summary("she began to sob") == []  # the verb is not the abbreviation
    assert [c for _, _, c, _ in _summary("IOP raised OD, fine OS")] == ["right eye", "left eye"]


def test_longest_concept_wins_and_plurals_are_found() -> None:
    assert _summary("chest pain radiating to the back") == [
        ("chest pain", "symptom", "chest pain", []),
        ("the back", "body_site", "back", []),
    ]
    assert [c for _, _, c, _ in _summary("headaches and palpitations")] == ["headache", "palpitations"]
    assert _summary("come back next week") == []


def test_line_breaks_end_sentences_but_a_leading_question_mark_does_not() -> None:
    extraction = extract_entities("No fever\nCough for 2 weeks\n?MI")
    assert [(e.concept, [m.value for m in e.modifiers]) for e in extraction.entities] == [
        ("fever", ["negated"]),
        ("cough", []),
        ("myocardial infarction", ["uncertain"]),
    ]
    assert [e.sentence for e in extraction.entities] == ["No fever", "Cough for 2 weeks", "?MI"]


def test_entities_carry_their_study_labels() -> None:
    labels = {e.concept: e.labels for e in extract_entities("STEMI with diabetic retinopathy and asthma").entities}
    assert labels == {
        "myocardial infarction": ["ecg.ptbxl:MI"],
        "diabetic retinopathy": ["fundus.odir:D"],
        "asthma": [],
    }


def test_describe_says_the_modifier_and_its_trigger() -> None:
    entity = extract_entities("No SOB").entities[0]
    assert entity.type is EntityType.SYMPTOM
    assert entity.describe() == "shortness of breath (\"SOB\"): negated ('No')"


def test_bad_input_is_refused_with_the_field() -> None:
    with pytest.raises(InputError, match=f"note: the note has {MAX_NOTE_CHARS + 1} characters"):
        extract_entities("x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(InputError, match="note: the note must be text"):
        extract_entities(b"bytes")  # type: ignore[arg-type]
    assert extract_entities("").entities == []
