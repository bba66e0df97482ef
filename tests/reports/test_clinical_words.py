"""The results in clinical words: Normal as the absence of findings (the conflict stated, never coloured as a
finding), band and tier edges in words, and the model card as readable rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vitalens.reports.card_text import card_summary_items
from vitalens.reports.sections import method_title, normal_conflict, stage_title, warning_text
from vitalens.risk.cardio import band_definition
from vitalens.risk.ecg_tiers import tier_definition
from vitalens.web.charts import Bar, probability_bars_svg


def _f(code: str, p: float, positive: bool, slot: str | None = None, name: str | None = None):
    return SimpleNamespace(code=code, name=name or code, probability=p, positive=positive, input_name=slot)


def test_normal_beside_a_positive_finding_is_stated_as_a_conflict() -> None:
    note = normal_conflict([_f("NORM", 0.61, True, name="Normal ECG"), _f("MI", 0.7, True, name="MI")], "NORM")
    assert note.startswith("The scores disagree: “Normal ECG” is above its threshold (61%) while MI is positive.")
    assert "Normal means the absence of the abnormal findings" in note
    two = normal_conflict([_f("N", 0.9, True), _f("D", 0.8, True), _f("C", 0.6, True)], "N")
    assert "while D, C are positive" in two


def test_no_finding_and_no_normal_is_a_conflict_too_and_agreement_is_silent() -> None:
    assert "no abnormal finding is positive, yet “N” is below its threshold (20%)" in normal_conflict(
        [_f("N", 0.2, False), _f("D", 0.1, False)], "N"
    )
    assert normal_conflict([_f("N", 0.9, True), _f("D", 0.1, False)], "N") == ""
    assert normal_conflict([_f("N", 0.1, False), _f("D", 0.9, True)], "N") == ""
    assert normal_conflict([_f("D", 0.9, True)], "N") == ""  # no normal output: nothing to compare


def test_conflict_is_checked_per_eye() -> None:
    findings = [
        _f("N", 0.9, True, "fundus_left"),
        _f("D", 0.8, True, "fundus_left"),
        _f("N", 0.9, True, "fundus_right"),
        _f("D", 0.1, False, "fundus_right"),
    ]
    note = normal_conflict(findings, "N")
    assert note.startswith("Left eye (OS): the scores disagree") and "Right eye" not in note


def test_normal_bar_is_never_drawn_as_a_finding() -> None:
    svg = probability_bars_svg([Bar("Normal", 0.9, 0.5, True, normal=True), Bar("MI", 0.7, 0.5, True)])
    assert svg.count('class="bar normal"') == 1 and svg.count('class="bar pos"') == 1


@pytest.mark.parametrize(
    ("edges", "text"),
    [
        ((0.2, 0.5), "High: an abnormal class ≥ 0.50; Low: every abnormal class < 0.20 and none positive"),
        ((0.1, 0.1), "High: an abnormal class ≥ 0.10; Low: every abnormal class < 0.10 and none positive"),
    ],
)
def test_tier_definition_states_the_edges_used(edges, text) -> None:
    assert tier_definition(edges).startswith(text)


def test_band_definition_states_the_edges_used() -> None:
    assert band_definition() == (
        "Low: overall retinal proxy score ≤ 0.33; Medium: ≤ 0.66; High: above 0.66 (0–1 scale, not a chance of disease)"
    )
    assert band_definition(0.25, 0.5).startswith("Low: overall retinal proxy score ≤ 0.25; Medium: ≤ 0.50")


def test_tier_definition_refuses_bad_edges() -> None:
    from vitalens.errors import InputError

    with pytest.raises(InputError):
        tier_definition((0.6, 0.5))


def test_card_summary_is_readable_rows_not_json() -> None:
    card = {
        "name": "ecg-ptbxl-resnet1d",
        "version": "1.2.0",
        "demonstration": False,
        "training_data": {
            "datasets": ["PTB-XL 1.0.3"],
            "provenance": "real",
            "n_patients": 5940,
            "n_samples": 6812,
            "splits": {"unit": "patient", "sizes": {"train": 4124, "val": 832, "test": 1856}},
        },
        "metrics": {"n": 1856, "split": "test", "macro_auroc": 0.90545, "ece": 0.01404, "per_class": {"MI": {}}},
        "thresholds": {"NORM": 0.4387, "MI": 0.0486},
        "threshold_method": "youden on the validation split",
        "calibration": "temperature",
        "intended_use": "Decision support.",
        "limitations": ["German hospital data", "12-lead resting ECG only"],
        "explanation_method": "Grad-CAM 1D",
    }
    rows = dict(card_summary_items(card))
    assert list(rows) == [
        "Model",
        "Training data",
        "Held-out metrics",
        "Operating points",
        "Calibration",
        "Intended use",
        "Limitations",
        "Explanation method",
    ]
    assert rows["Model"] == "ecg-ptbxl-resnet1d version 1.2.0"
    assert rows["Training data"] == (
        "PTB-XL 1.0.3 (real data); 5,940 patients, 6,812 samples; split train 4124 · val 832 · test 1856 (by patient)"
    )
    assert rows["Held-out metrics"] == "on n = 1856 (test): macro AUROC 0.91, calibration error (ECE) 0.01"
    assert rows["Operating points"] == "positive when NORM ≥ 0.44, MI ≥ 0.05 (chosen by youden on the validation split)"
    assert rows["Limitations"] == "German hospital data; 12-lead resting ECG only"
    demo = dict(card_summary_items({"name": "x", "demonstration": True}))
    assert demo == {"Model": "x — demonstration model, not for clinical use"}
    assert card_summary_items({}) == []


def test_stages_and_explanation_methods_in_words() -> None:
    assert stage_title("validate") == "Checking the inputs" and stage_title("report") == "Writing the report"
    assert stage_title("ecg.ptbxl", "ecg.ptbxl") == "12-lead ECG"
    assert stage_title("something.else") == "something.else"  # an unknown stage keeps its name
    assert method_title("grad-cam") == "Grad-CAM" and method_title("integrated_gradients") == "integrated gradients"
    assert method_title("Sato filter (classical)") == "Sato filter (classical)"


def test_quality_warnings_name_the_eye_not_the_slot() -> None:
    w = "input quality (fundus_left, fundus.gradable): image quality not checked: no gate"
    assert warning_text(w) == "Input quality, Left eye (OS) (fundus.gradable): image quality not checked: no gate"
    assert warning_text("resampled from 250 Hz to 100 Hz") == "resampled from 250 Hz to 100 Hz"
