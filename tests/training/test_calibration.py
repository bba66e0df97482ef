"""Calibration: ECE and reliability on hand-made bins, temperature and Platt recovery, isotonic, cross-fitting, the
card spec round trip."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.artifacts import CalibrationSpec
from vitalens.training.calibration import (
    apply_calibration,
    crossfit_calibration,
    expected_calibration_error,
    fit_calibration,
    fit_isotonic,
    fit_platt,
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
