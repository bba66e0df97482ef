"""``vitalens calibrate``: per-label Platt/isotonic refitted on an artifact's validation split, weights untouched.

Exact values for the Platt map the analyzers apply (known a, b → known probabilities; logits of ±inf), the slope floor
that keeps every label's ranking, the validation-only choice between per-label Platt, shared-slope Platt and isotonic,
and one run on a tiny artifact: the card is rewritten, the test AUROC is unchanged, and the analyzer shows σ(a·z + b).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from vitalens.artifacts import CalibrationSpec, ModelCard
from vitalens.artifacts import apply_calibration as apply_card_calibration
from vitalens.training.calibration import MIN_PLATT_SLOPE, fit_platt, sigmoid
from vitalens.training.recalibrate import CANDIDATES, choose_method


def _platt(a: list[float], b: list[float]) -> CalibrationSpec:
    return CalibrationSpec(method="platt", params={"a": a, "b": b}, fitted_on="val")


# -- the Platt map as inference applies it --------------------------------------------------------------------------
def test_platt_known_parameters_give_known_probabilities() -> None:
    spec = _platt([2.0, 1.0, 0.5], [-2.0, math.log(3.0), 1.0])
    z = np.array([[1.0, 0.0, 2.0], [0.0, -math.log(3.0), -2.0]])
    p = apply_card_calibration(spec, z)
    assert p[0, 0] == 0.5  # σ(2·1 − 2) = σ(0)
    assert p[0, 1] == pytest.approx(0.75, abs=1e-15)  # σ(ln 3) = 3/4
    assert p[0, 2] == pytest.approx(1.0 / (1.0 + math.exp(-2.0)), abs=1e-15)  # σ(0.5·2 + 1) = σ(2)
    assert p[1, 0] == pytest.approx(1.0 / (1.0 + math.e**2), abs=1e-15)  # σ(−2)
    assert p[1, 1] == 0.5  # σ(−ln 3 + ln 3)
    assert p[1, 2] == 0.5  # σ(0.5·(−2) + 1)


def test_platt_maps_infinite_logits_to_certainty_and_keeps_nan() -> None:
    spec = _platt([0.7, 3.0], [-5.0, 4.0])
    p = apply_card_calibration(spec, np.array([[np.inf, -np.inf], [np.nan, 1e308]]))
    assert p[0, 0] == 1.0 and p[0, 1] == 0.0
    assert math.isnan(p[1, 0]) and p[1, 1] == 1.0  # 3·1e308 overflows to +inf: still 1, not NaN


def test_platt_slope_must_be_positive_and_finite() -> None:
    z = np.zeros((1, 2))
    for a, b in (([0.0, 1.0], [0.0, 0.0]), ([-1.0, 1.0], [0.0, 0.0]), ([np.nan, 1.0], [0.0, 0.0])):
        with pytest.raises(ValueError, match="Platt slopes must be positive"):
            apply_card_calibration(_platt(a, b), z)
    with pytest.raises(ValueError, match="intercepts finite"):
        apply_card_calibration(_platt([1.0, 1.0], [np.inf, 0.0]), z)
    with pytest.raises(ValueError, match="2 per-label values for 3 labels"):
        apply_card_calibration(_platt([1.0, 1.0], [0.0, 0.0]), np.zeros((1, 3)))


def test_platt_fit_floors_the_slope_so_a_reversed_label_keeps_its_ranking() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, size=(400, 1))
    y = (rng.random(z.shape) < sigmoid(-1.5 * z)).astype(int)  # ranked the wrong way round
    params = fit_platt(z, y)
    assert params["a"][0] == MIN_PLATT_SLOPE
    p = apply_card_calibration(_platt(params["a"], params["b"]), z)
    assert roc_auc_score(y[:, 0], p[:, 0]) == roc_auc_score(y[:, 0], z[:, 0])  # < 0.5, and not turned round
    # with the slope at its floor the probabilities stay near the base rate, the honest answer for such a label
    assert abs(float(p.mean()) - float(y.mean())) < 0.01


# -- choosing Platt or isotonic on validation -----------------------------------------------------------------------
def test_choose_method_prefers_platt_when_the_truth_is_a_sigmoid_per_label() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, size=(600, 2))
    y = (rng.random(z.shape) < sigmoid(np.array([0.4, 2.0]) * z - 1.0)).astype(int)  # slopes differ: none shared
    method, table = choose_method(z, y)
    assert method == "platt" and set(table) == set(CANDIDATES)
    assert table["platt"]["brier"] < table["isotonic"]["brier"]
    assert table["platt"]["brier"] < table["platt-shared-slope"]["brier"]
    assert all(0.0 <= row["ece"] <= 1.0 for row in table.values())


def test_choose_method_prefers_isotonic_for_a_step_the_sigmoid_cannot_follow() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, size=(3000, 1))
    truth = np.where(z > 1.0, 0.95, 0.05)  # a jump: no σ(a·z + b) fits it
    y = (rng.random(z.shape) < truth).astype(int)
    method, table = choose_method(z, y)
    assert method == "isotonic" and table["isotonic"]["brier"] < table["platt"]["brier"]


def test_choose_method_prefers_the_shared_slope_on_few_noisy_positives() -> None:
    # 30 patients × 8 labels with one true slope and 4 to 13 positives per label: 16 per-label parameters overfit, the
    # shared slope (9 parameters) has the lower cross-fitted Brier (it does on 8 of the seeds 0-11 of this set-up)
    rng = np.random.default_rng(6)
    z = rng.normal(0.0, 3.0, size=(30, 8))
    y = (rng.random(z.shape) < sigmoid(0.4 * z + np.linspace(-2.5, -0.5, 8))).astype(int)
    method, table = choose_method(z, y)
    assert method == "platt-shared-slope" and set(table) == set(CANDIDATES)
    assert table["platt-shared-slope"]["brier"] < table["platt"]["brier"] - 0.003
    assert table["platt-shared-slope"]["brier"] < table["isotonic"]["brier"]


def test_choose_method_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same"):
        choose_method(np.zeros((5, 2)), np.zeros((5, 3)))


# -- one run on a tiny artifact -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random-weight fundus.odir artifact with the card's normalisation, and 60 synthetic patients."""
    from tests.utils.fundus_artifact import make_tiny_fundus_artifact
    from vitalens.synth.odir import write_odir_synth

    base = tmp_path_factory.mktemp("recal")
    artifact = make_tiny_fundus_artifact(base / "artifact", seed=1)
    card = ModelCard.read(artifact)
    spec = card.input.model_copy(update={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})
    card.model_copy(update={"input": spec, "metrics": {"macro_auroc": None}}).write(artifact)
    root = write_odir_synth(base / "odir", n_patients=60, seed=4, image_size=64)
    return artifact, root


def test_calibrate_rewrites_the_card_and_keeps_every_auroc(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    from vitalens.artifacts import load_model
    from vitalens.cli import app

    artifact = tmp_path / "a"
    shutil.copytree(tiny[0], artifact)
    weights = (artifact / "model.safetensors").read_bytes()
    out_json = tmp_path / "res.json"
    result = CliRunner().invoke(
        app,
        ["calibrate", str(artifact), "--data", str(tiny[1]), "--method", "platt", "--json", str(out_json)],
    )
    assert result.exit_code == 0, result.output
    assert "platt fitted on" in result.output and "test (n =" in result.output
    res = json.loads(out_json.read_text(encoding="utf-8"))
    _, card = load_model(artifact, device="cpu")  # the weights' sha256 still matches: nothing retrained
    assert (artifact / "model.safetensors").read_bytes() == weights
    assert card.calibration.method == "platt" and card.calibration.fitted_on == "val"
    assert card.calibration.params == res["params"] and all(a >= MIN_PLATT_SLOPE for a in res["params"]["a"])
    assert card.version == "0.1.1" and card.extra["calibration_step"]["retrained"] is False
    assert "Calibration refitted on val" in card.training_data.description
    assert res["fitted_on"]["split"] == "val" and res["replaced"]["method"] == "temperature"
    test = res["test"]
    assert test["n_patients"] == card.metrics["n"] > 0
    assert test["max_abs_auroc_change"] == 0.0  # Platt is monotone per label: each AUROC identical
    assert test["per_label_auroc_after"] == test["per_label_auroc_before"]
    assert card.metrics["ece"] == pytest.approx(test["ece_after"]["value"])
    lo, hi = card.metrics["ece_ci95"]
    assert lo <= test["ece_after"]["value"] <= hi
    c = test["ece_if_calibrated"]  # reported beside the test ECE, not stored in the card
    assert c["n_resamples"] == 2000 and 1 / 2001 <= c["p_value"] <= 1.0 and c["low"] <= c["mean"] <= c["high"]
    assert "ece_if_calibrated" not in card.metrics and "would show ECE" in result.output
    assert set(card.thresholds) == set(card.labels) and all(0.0 <= t <= 1.0 for t in card.thresholds.values())
    report = json.loads((artifact / "report.json").read_text(encoding="utf-8"))
    assert report["calibration"]["method"] == "platt" and report["recalibration"]["method"] == "platt"
    assert report["splits"]["test"]["ece_if_calibrated"] == c
    assert "ECE a perfectly calibrated model would show" in (artifact / "report.md").read_text(encoding="utf-8")
    assert (artifact / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same command again fits the same calibration: the card keeps its version
    again = CliRunner().invoke(app, ["calibrate", str(artifact), "--data", str(tiny[1]), "--method", "platt"])
    assert again.exit_code == 0, again.output
    assert load_model(artifact, device="cpu")[1].version == "0.1.1"


def test_same_within_compares_numbers_with_a_tolerance() -> None:
    from vitalens.training.recalibrate import CALIBRATION_ATOL, same_within

    a = {"method": "platt", "params": {"a": [1.0, 0.5], "b": [0.0, -2.0]}}
    assert CALIBRATION_ATOL == 1e-5
    assert same_within(a, {"method": "platt", "params": {"a": [1.0 + 9e-7, 0.5], "b": [0.0, -2.0 - 9e-6]}})
    assert not same_within(a, {"method": "platt", "params": {"a": [1.0 + 2e-5, 0.5], "b": [0.0, -2.0]}})
    assert not same_within(a, {"method": "isotonic", "params": a["params"]})
    assert not same_within(a, {"method": "platt", "params": {"a": [1.0], "b": [0.0, -2.0]}})
    assert not same_within(a, {"method": "platt", "params": {"a": [1.0, 0.5]}})
    assert not same_within(True, 1) and same_within(None, None) and not same_within(1, "1")


def test_shrunk_platt_at_strength_zero_is_recorded_as_per_label_platt(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vitalens.cli import app
    from vitalens.training import calibration, recalibrate

    def run(method: str, name: str) -> dict[str, object]:
        out_json = tmp_path / f"{name}.json"
        args = ["calibrate", str(tiny[0]), "--data", str(tiny[1]), "--method", method, "--dry-run", "--json"]
        result = CliRunner().invoke(app, [*args, str(out_json)])
        assert result.exit_code == 0, result.output
        return dict(json.loads(out_json.read_text(encoding="utf-8")))

    platt = run("platt", "platt")
    table = {m: {"brier": 0.1, "ece": 0.0} for m in CANDIDATES}
    monkeypatch.setattr(recalibrate, "choose_method", lambda *a, **k: ("platt-shrunk", table))
    monkeypatch.setattr(calibration, "choose_shrinkage", lambda *a, **k: (0.0, {0.0: 0.1, 1.0: 0.2}))
    auto = run("auto", "auto")
    assert auto["method"] == "platt" and auto["params"] == platt["params"]
    shrinkage = auto["choice"]["shrinkage"]  # type: ignore[index]
    assert shrinkage["strength"] == 0.0 and "per-label Platt" in shrinkage["resolved"]


def test_the_analyzer_shows_the_platt_probability(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    import torch

    from vitalens.analyzers import create_analyzer
    from vitalens.artifacts import ModelCache, load_model
    from vitalens.data.odir import OdirDataset
    from vitalens.domain import StudyInputs
    from vitalens.io.images import read_image
    from vitalens.training.recalibrate import recalibrate_artifact

    artifact = tmp_path / "a"
    shutil.copytree(tiny[0], artifact)
    recalibrate_artifact(artifact, data=tiny[1], method="platt", device="cpu", n_boot=50)
    # set slopes and intercepts by hand so the expected probability does not come from the code under test
    card = ModelCard.read(artifact)
    a, b = [0.5 + 0.25 * j for j in range(8)], [-1.0 + 0.3 * j for j in range(8)]
    card.model_copy(update={"calibration": _platt(a, b)}).write(artifact)
    rec = OdirDataset(tiny[1]).records[0]
    inputs = StudyInputs(fundus_left=read_image(rec.left), fundus_right=read_image(rec.right), age_years=rec.age_years)
    analyzer = create_analyzer("fundus.odir", artifact=artifact, cache=ModelCache(budget_bytes=2**26), device="cpu")
    found = analyzer(inputs, explain=False)
    net, _ = load_model(artifact, device="cpu")
    left, right, age, _ = analyzer._tensors(inputs)
    with torch.inference_mode():
        z = net(left, right, age).double().numpy()[0]
    for j, finding in enumerate(found.findings):
        expected = 1.0 / (1.0 + math.exp(-(a[j] * z[j] + b[j])))
        assert finding.probability == pytest.approx(expected, abs=1e-6) and finding.calibrated
        assert finding.positive == (finding.probability >= card.thresholds[finding.code])
