"""Calibration: ECE and reliability on hand-made bins, temperature and Platt recovery (per-label, shared-slope, shrunk),
isotonic, cross-fitting, the card spec round trip."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.artifacts import CalibrationSpec
from vitalens.training.calibration import (
    MIN_PLATT_SLOPE,
    SHRINK_STRENGTHS,
    apply_calibration,
    choose_shrinkage,
    crossfit_calibration,
    ece_consistency,
    expected_calibration_error,
    fit_calibration,
    fit_isotonic,
    fit_platt,
    fit_platt_shared_slope,
    fit_platt_shrunk,
    fit_temperature,
    logit,
    reliability_curve,
    sigmoid,
)


def test_ece_is_zero_for_perfectly_calibrated_bins() -> None:
    # each bin's positive rate equals its probability: 1 of 4 at 0.25, 3 of 4 at 0.75
    probs = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0])
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.0, abs=1e-12)


def test_ece_hand_computed() -> None:
    # bin [0.9, 1.0]: 2 predictions at 0.95, 1 positive → gap 0.45; bin [0.1, 0.2): 2 at 0.15, 0 positive → 0.15
    probs = np.array([0.95, 0.95, 0.15, 0.15])
    y = np.array([1, 0, 0, 0])
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)


def test_reliability_bins_edges_and_counts() -> None:
    probs = np.array([0.0, 0.1, 0.5, 0.99, 1.0])
    curve = reliability_curve(probs, np.array([0, 0, 1, 1, 1]), n_bins=10)
    assert curve["edges"][0] == 0.0 and curve["edges"][-1] == 1.0
    # 0.1 falls in the second bin [0.1, 0.2) (lower edge inclusive); 1.0 in the last bin
    assert curve["count"] == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert np.isnan(curve["mean_prob"][2])
    assert curve["frac_positive"][9] == 1.0


def test_temperature_recovers_known_t() -> None:
    rng = np.random.default_rng(0)
    true_t = 2.5
    z = rng.normal(0.0, 4.0, size=40_000)
    y = (rng.random(z.size) < sigmoid(z / true_t)).astype(int)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.05)


def test_temperature_per_label_and_single_class_label() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 3.0, size=(20_000, 2))
    y = (rng.random(z.shape) < sigmoid(z / np.array([0.5, 2.0]))).astype(int)
    y[:, 1] = 0  # a label with one class: nothing to fit → T = 1
    t = fit_temperature(z, y, per_label=True)
    assert t[0] == pytest.approx(0.5, rel=0.05)
    assert t[1] == 1.0


def test_isotonic_is_monotone_and_applied_through_the_card() -> None:
    rng = np.random.default_rng(2)
    p = rng.random((500, 2))
    y = (rng.random((500, 2)) < p**2).astype(int)  # over-confident scores: truth is p²
    params = fit_isotonic(p, y)
    assert len(params["x"]) == 2 and all(np.all(np.diff(ys) >= 0) for ys in params["y"])
    spec = CalibrationSpec(method="isotonic", params=params, fitted_on="val")
    cal = apply_calibration(spec, p, kind="probs")
    assert cal.shape == p.shape and (cal >= 0).all() and (cal <= 1).all()
    assert expected_calibration_error(cal, y) < expected_calibration_error(p, y)


def test_fit_calibration_specs_and_apply() -> None:
    z = np.array([[-2.0, 1.0], [3.0, -1.0], [0.5, 0.0], [-1.0, 2.0]])
    y = np.array([[0, 1], [1, 0], [1, 0], [0, 1]])
    none = fit_calibration("none", z, y)
    assert none.method == "none"
    np.testing.assert_allclose(apply_calibration(none, z), sigmoid(z))
    spec = CalibrationSpec(method="temperature", params={"temperature": 2.0})
    np.testing.assert_allclose(apply_calibration(spec, z), sigmoid(z / 2.0))
    np.testing.assert_allclose(apply_calibration(spec, sigmoid(z), kind="probs"), sigmoid(z / 2.0), atol=1e-9)
    np.testing.assert_allclose(logit(sigmoid(z)), z, atol=1e-9)
    with pytest.raises(ValueError, match="Unknown calibration method 'platypus'"):
        fit_calibration("platypus", z, y)


def test_platt_without_prior_correction_is_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.0, size=(3000, 2))
    y = (rng.random(z.shape) < sigmoid(np.array([0.6, 1.5]) * z + np.array([-1.0, 0.4]))).astype(int)
    params = fit_platt(z, y, prior_correction=False)
    for j in range(2):
        ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(z[:, [j]], y[:, j])
        assert params["a"][j] == pytest.approx(float(ref.coef_[0, 0]), abs=1e-4)
        assert params["b"][j] == pytest.approx(float(ref.intercept_[0]), abs=1e-4)


def test_platt_recovers_slope_and_intercept_and_keeps_single_class_identity() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(0.0, 3.0, size=(40_000, 2))
    y = (rng.random(z.shape) < sigmoid(0.5 * z - 2.0)).astype(int)
    y[:, 1] = 1  # one class only: identity
    params = fit_platt(z, y)
    assert params["a"][0] == pytest.approx(0.5, rel=0.05)
    assert params["b"][0] == pytest.approx(-2.0, rel=0.05)
    assert (params["a"][1], params["b"][1]) == (1.0, 0.0)
    spec = fit_calibration("platt", z, y)
    assert spec.method == "platt"
    np.testing.assert_allclose(apply_calibration(spec, z)[:, 0], sigmoid(params["a"][0] * z[:, 0] + params["b"][0]))


def test_platt_prior_correction_keeps_a_separable_label_finite() -> None:
    z = np.array([[-3.0], [-1.0], [1.0], [3.0]])
    y = np.array([[0], [0], [1], [1]])
    params = fit_platt(z, y)
    p = sigmoid(params["a"][0] * z[:, 0] + params["b"][0])
    # Platt targets for 2 positives and 2 negatives: 3/4 and 1/4; the fit cannot be more confident than the data
    assert np.isfinite(params["a"][0]) and 0.0 < params["a"][0] < 5.0
    assert p[0] > 0.05 and p[-1] < 0.95


def test_shared_slope_hand_computed() -> None:
    # label 1: at z = +1 three of four positive, at z = −1 one of four: σ(a + b) = 3/4, σ(−a + b) = 1/4, so a = ln 3,
    # b = 0; label 2 is the same patients with every logit shifted by +1, so the one slope fits both exactly and its
    # intercept is b = 0 − a·1 = −ln 3 (0/1 targets: the maximum-likelihood solution of the pooled problem)
    z1 = np.r_[np.ones(4), -np.ones(4)]
    y1 = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    params = fit_platt_shared_slope(np.column_stack([z1, z1 + 1.0]), np.column_stack([y1, y1]), prior_correction=False)
    assert params["a"][0] == params["a"][1]
    assert params["a"][0] == pytest.approx(np.log(3.0), abs=1e-5)
    assert params["b"][0] == pytest.approx(0.0, abs=1e-5)
    assert params["b"][1] == pytest.approx(-np.log(3.0), abs=1e-5)
    p = sigmoid(params["a"][1] * (z1 + 1.0) + params["b"][1])
    np.testing.assert_allclose(p, np.r_[np.full(4, 0.75), np.full(4, 0.25)], atol=1e-5)


def test_shared_slope_with_one_label_is_per_label_platt() -> None:
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 2.0, size=(50, 1))
    y = (rng.random(z.shape) < sigmoid(0.5 * z - 1.0)).astype(int)
    shared, single = fit_platt_shared_slope(z, y), fit_platt(z, y)
    assert shared["a"][0] == pytest.approx(single["a"][0], rel=1e-12)
    assert shared["b"][0] == pytest.approx(single["b"][0], rel=1e-12)


def test_shared_slope_floor_single_class_identity_and_card_spec() -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 2.0, size=(400, 3))
    y = (rng.random(z.shape) < sigmoid(-1.5 * z + np.array([-1.0, 0.5, 0.0]))).astype(int)  # ranked the wrong way
    y[:, 2] = 0  # one class only: identity, left out of the pooled fit
    params = fit_platt_shared_slope(z, y)
    assert params["a"][:2] == [MIN_PLATT_SLOPE, MIN_PLATT_SLOPE]
    assert (params["a"][2], params["b"][2]) == (1.0, 0.0)
    spec = fit_calibration("platt-shared-slope", z, y)
    assert spec.method == "platt" and spec.params == params  # ordinary per-label Platt for the card and analyzers
    shrunk = fit_platt_shrunk(z, y, strength=10.0)  # pulled toward the floored shared slope: floored too
    assert shrunk["a"][:2] == [MIN_PLATT_SLOPE, MIN_PLATT_SLOPE] and (shrunk["a"][2], shrunk["b"][2]) == (1.0, 0.0)
    p = apply_calibration(spec, z)
    for j in range(2):  # at the floor each label's probabilities stay at its base rate, ranking not turned round
        assert abs(float(p[:, j].mean()) - float(y[:, j].mean())) < 0.01
        assert np.all(np.diff(p[np.argsort(z[:, j]), j]) >= 0.0)


def test_shrunk_platt_hand_computed_where_per_label_and_shared_agree() -> None:
    # the ln 3 set-up above: each label's own Platt optimum is the shared-slope one, so the pull costs nothing and any
    # strength returns a = ln 3 and b = 0 and −ln 3
    z1 = np.r_[np.ones(4), -np.ones(4)]
    y1 = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    z, y = np.column_stack([z1, z1 + 1.0]), np.column_stack([y1, y1])
    for strength in (0.0, 3.0, 1e6):
        params = fit_platt_shrunk(z, y, strength=strength, prior_correction=False)
        np.testing.assert_allclose(params["a"], [np.log(3.0), np.log(3.0)], atol=1e-4)
        np.testing.assert_allclose(params["b"], [0.0, -np.log(3.0)], atol=1e-4)


def test_shrunk_platt_runs_from_per_label_to_shared_slope() -> None:
    rng = np.random.default_rng(9)
    z = rng.normal(0.0, 2.0, size=(60, 3))
    y = (rng.random(z.shape) < sigmoid(np.array([0.3, 1.0, 2.0]) * z - 1.0)).astype(int)
    y[:, 2] = 0  # one class only: identity at every strength
    assert fit_platt_shrunk(z, y, strength=0.0) == fit_platt(z, y)  # strength 0 is per-label Platt, exactly
    shared, per_label = fit_platt_shared_slope(z, y), fit_platt(z, y)
    far = fit_platt_shrunk(z, y, strength=1e9)
    np.testing.assert_allclose(far["a"][:2], shared["a"][:2], atol=1e-4)
    np.testing.assert_allclose(far["b"][:2], shared["b"][:2], atol=1e-4)
    mid = fit_platt_shrunk(z, y, strength=20.0)
    for j in range(2):  # the pulled slope lies between the label's own and the shared one
        lo, hi = sorted((per_label["a"][j], shared["a"][0]))
        assert lo < mid["a"][j] < hi
    assert (mid["a"][2], mid["b"][2]) == (1.0, 0.0)
    spec = fit_calibration("platt-shrunk", z, y)
    assert spec.method == "platt"
    strength, table = choose_shrinkage(z, y)
    assert set(table) == set(SHRINK_STRENGTHS) and table[strength] == min(table.values())
    assert spec.params == fit_platt_shrunk(z, y, strength=strength)
    with pytest.raises(ValueError, match="≥ 0"):
        fit_platt_shrunk(z, y, strength=-1.0)


def test_crossfit_scores_each_fold_with_parameters_from_the_others() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 2.0, size=(600, 1))
    y = (rng.random(z.shape) < sigmoid(0.5 * z)).astype(int)
    folds = np.repeat([0, 1, 2], 200)
    out = crossfit_calibration("platt", z, y, folds)
    for k in range(3):
        held = folds == k
        spec = fit_calibration("platt", z[~held], y[~held])
        np.testing.assert_allclose(out[held], apply_calibration(spec, z[held]))
    assert expected_calibration_error(out, y) < expected_calibration_error(sigmoid(z), y)
    with pytest.raises(ValueError, match="two folds"):
        crossfit_calibration("platt", z, y, np.zeros(600))


# --- consistency resampling (Bröcker & Smith 2007) ---------------------------------------------------------------


def test_consistency_two_coins_at_one_half_hand_computed() -> None:
    # two decisions at p = 0.5 (one bin): y* ∈ {00, 01, 10, 11} → ECE* 0.5, 0, 0, 0.5, so P(ECE* = 0.5) = 1/2,
    # mean 0.25, 95 % range [0, 0.5]; observed 0/1 has ECE 0 → every resample ≥ it → p = (1 + R) / (1 + R) = 1
    r = ece_consistency(np.array([0.5, 0.5]), np.array([0, 1]), n_resamples=4000, seed=3)
    assert r.observed == 0.0 and r.p_value == 1.0
    assert set(np.unique(r.samples)) == {0.0, 0.5}
    assert r.mean == pytest.approx(0.25, abs=0.02)
    assert (r.low, r.high) == (0.0, 0.5)
    # observed 1/1 has ECE 0.5: the resamples tied with it (half of them) count → p ≈ 0.5
    r11 = ece_consistency(np.array([0.5, 0.5]), np.array([1, 1]), n_resamples=4000, seed=3)
    assert r11.observed == 0.5
    assert r11.p_value == pytest.approx(0.5, abs=0.03)
    assert r11.p_value == (1 + np.count_nonzero(r11.samples == 0.5)) / 4001


def test_consistency_one_bin_hand_computed() -> None:
    # one bin, p = (0.2, 0.8): mean p 0.5; S* = 0 or 2 with probability 0.2·0.8 each → ECE* 0.5 w.p. 0.32, else 0
    r = ece_consistency(np.array([0.2, 0.8]), np.array([0, 1]), n_bins=1, n_resamples=5000, seed=0)
    assert r.observed == 0.0 and r.n_bins == 1 and r.n == 2
    assert np.mean(r.samples == 0.5) == pytest.approx(0.32, abs=0.02)
    assert r.mean == pytest.approx(0.16, abs=0.01)
    assert r.band_low.tolist() == [0.0] and r.band_high.tolist() == [1.0]


def test_consistency_saturated_probabilities_are_exact() -> None:
    # p exactly 0 or 1: y* = p in every resample, so a calibrated model's ECE is exactly 0
    p = np.array([0.0, 1.0, 1.0, 0.0])
    r = ece_consistency(p, p, n_resamples=200, seed=1)
    assert (r.observed, r.mean, r.low, r.high, r.p_value) == (0.0, 0.0, 0.0, 0.0, 1.0)
    # the labels the other way round: ECE 1 (bin 0 all positive, bin 9 all negative), no resample reaches it
    flipped = ece_consistency(p, 1 - p, n_resamples=200, seed=1)
    assert flipped.observed == 1.0
    assert flipped.p_value == 1 / 201
    assert flipped.band_low[0] == flipped.band_high[0] == 0.0 and flipped.band_low[9] == flipped.band_high[9] == 1.0
    assert np.isnan(flipped.band_low[1:9]).all()


def test_consistency_is_seeded_and_matches_the_reported_ece() -> None:
    rng = np.random.default_rng(7)
    p = rng.random((50, 8))
    y = (rng.random(p.shape) < p).astype(int)
    a = ece_consistency(p, y, n_resamples=500, seed=11)
    b = ece_consistency(p, y, n_resamples=500, seed=11, max_elements=1000)  # other chunking, same draws
    c = ece_consistency(p, y, n_resamples=500, seed=12)
    assert a.observed == expected_calibration_error(p, y)  # the same ECE definition, to the bit
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.summary() == b.summary()
    assert not np.array_equal(a.samples, c.samples)
    assert set(a.summary()) == {"mean", "low", "high", "p_value", "n_resamples", "seed"}
    assert 0.0 < a.p_value <= 1.0 and a.low <= a.mean <= a.high


def test_consistency_resampled_ece_equals_expected_calibration_error_of_the_draw() -> None:
    # R = 1 with a known generator stream: the single resample is the ECE of the labels that stream draws
    rng = np.random.default_rng(2)
    p = rng.random((30, 3))
    r = ece_consistency(p, np.zeros_like(p), n_resamples=1, seed=5)
    drawn = np.random.default_rng(5).random((1, p.size)) < p.ravel()
    assert r.samples[0] == pytest.approx(expected_calibration_error(p.ravel(), drawn[0].astype(float)), abs=1e-15)


def test_consistency_calibrated_labels_are_usually_not_significant() -> None:
    # labels drawn from p are calibrated: over 40 data sets the p-value is roughly uniform, so few fall under 0.05
    rng = np.random.default_rng(0)
    pvals = []
    for k in range(40):
        p = rng.random((50, 8))
        y = (rng.random(p.shape) < p).astype(int)
        pvals.append(ece_consistency(p, y, n_resamples=400, seed=k).p_value)
    assert np.mean(np.asarray(pvals) < 0.05) <= 0.15
    assert 0.3 < float(np.median(pvals)) < 0.7


def test_consistency_grossly_miscalibrated_is_significant() -> None:
    # probabilities pushed towards the extremes (over-confident): true rate sigmoid(z), reported sigmoid(3 z)
    rng = np.random.default_rng(4)
    z = rng.normal(0.0, 1.0, size=(50, 8))
    y = (rng.random(z.shape) < sigmoid(z)).astype(int)
    r = ece_consistency(sigmoid(3.0 * z), y, n_resamples=2000, seed=0)
    assert r.observed > r.high
    assert r.p_value < 0.01


def test_consistency_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        ece_consistency(np.array([0.1, 0.2]), np.array([1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ece_consistency(np.array([1.2]), np.array([1]))
    with pytest.raises(ValueError, match="at least one"):
        ece_consistency(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="n_resamples"):
        ece_consistency(np.array([0.5]), np.array([1]), n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        ece_consistency(np.array([0.5]), np.array([1]), level=1.0)
