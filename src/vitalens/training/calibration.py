"""Post-hoc probability calibration (temperature, per-label Platt, isotonic regression) and its diagnostics.

Why: a clinician reads "0.82" as "82 % likely"; networks trained with BCE on small data are over-confident.
Calibration is fitted on the validation split only, stored in the model card (``CalibrationSpec``), and applied
by :func:`apply_calibration` at inference — numpy only, so analyzers can use it without the training stack.
References: Guo et al., 2017, "On Calibration of Modern Neural Networks" (temperature, ECE);
Platt, 1999 (sigmoid fit with prior-corrected targets); Zadrozny & Elkan, 2002 (isotonic); Bröcker & Smith, 2007
(consistency resampling: the ECE and reliability bands a perfectly calibrated model would show at the same n).

Why per-label Platt for multi-label: one temperature shares a single slope across labels and cannot move a label's
intercept, so a label whose base rate the loss's ``pos_weight`` shifted stays mis-calibrated (ODIR: ECE 0.21 after
temperature). Platt fits slope and intercept per label; on a few dozen validation patients both are noisy, which is
why :func:`crossfit_calibration` fits them on out-of-fold predictions and scores each fold with parameters fitted on
the others.

Why a shared-slope variant: 8 labels × (slope, intercept) are 16 parameters on ODIR's 49 validation patients, with 3 to
6 positives for some labels, so the per-label slopes are noisy. :func:`fit_platt_shared_slope` fits one slope for all
labels and one intercept per label (9 parameters): the intercept still absorbs each label's base-rate shift, while the
slope — how far the net's logits overstate their confidence — is estimated from all pooled decisions. It is stored as
ordinary per-label Platt parameters whose slopes happen to be equal, so the card and the analyzers apply it unchanged;
the cross-fitted Brier score of ``vitalens calibrate`` decides between it and the per-label fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from vitalens.artifacts import CalibrationSpec
from vitalens.artifacts.calibration import sigmoid

__all__ = [
    "fit_temperature",
    "fit_isotonic",
    "fit_platt",
    "fit_platt_shared_slope",
    "fit_platt_shrunk",
    "choose_shrinkage",
    "SHRINK_STRENGTHS",
    "crossfit_calibration",
    "fit_calibration",
    "apply_calibration",
    "expected_calibration_error",
    "reliability_curve",
    "ece_consistency",
    "EceConsistency",
    "sigmoid",
    "logit",
    "MIN_PLATT_SLOPE",
]

logger = logging.getLogger(__name__)

_EPS = 1e-7
#: Smallest Platt slope the fit may return: a label whose validation logits rank the wrong way would otherwise get
#: a negative slope and its ranking inverted at inference; at this floor its probabilities stay strictly increasing
#: in the logit (AUROC unchanged) and close to the label's validation base rate.
MIN_PLATT_SLOPE = 1e-3
#: Strengths :func:`choose_shrinkage` tries for ``platt-shrunk``, in prior pseudo-observations: 0 is per-label Platt,
#: the largest is close to the shared-slope fit (ties go to the stronger pull, the lower-variance fit).
SHRINK_STRENGTHS: tuple[float, ...] = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _bce_of_logits(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of logits ``z`` against 0/1 ``y`` (numerically stable)."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def _fit_one_temperature(z: np.ndarray, y: np.ndarray) -> float:
    if z.size == 0 or np.unique(y).size < 2:
        return 1.0
    res = minimize_scalar(
        lambda log_t: _bce_of_logits(z / np.exp(log_t), y), bounds=(np.log(0.05), np.log(20.0)), method="bounded"
    )
    return float(np.exp(res.x))


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, per_label: bool = False) -> float | list[float]:
    """Temperature ``T`` minimising the validation NLL of ``sigmoid(logits / T)``.

    Args:
        logits: ``(N,)`` or ``(N, L)`` raw logits.
        y: 0/1 targets of the same shape.
        per_label: one T per column (list) instead of one shared T (float).

    Returns:
        T in [0.05, 20]; 1.0 where the data hold a single class (nothing to fit).
    """
    z = np.asarray(logits, dtype=float)
    t = np.asarray(y, dtype=float)
    if z.shape != t.shape:
        raise ValueError(f"logits {z.shape} and targets {t.shape} differ in shape")
    if per_label:
        z2, t2 = z.reshape(z.shape[0], -1), t.reshape(t.shape[0], -1)
        return [_fit_one_temperature(z2[:, j], t2[:, j]) for j in range(z2.shape[1])]
    return _fit_one_temperature(z.ravel(), t.ravel())


def _platt_targets(y: np.ndarray, prior_correction: bool) -> np.ndarray:
    """Platt's (1999) targets for one label: (N+ + 1)/(N+ + 2) and 1/(N- + 2), which keep a small set from
    saturating; the 0/1 labels themselves without ``prior_correction``."""
    if not prior_correction:
        return np.asarray(y, dtype=float)
    n_pos, n_neg = float(y.sum()), float(y.size - y.sum())
    return np.where(y > 0.5, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))


def _fit_one_platt(z: np.ndarray, y: np.ndarray, prior_correction: bool) -> tuple[float, float]:
    return _fit_platt_targets(z, _platt_targets(y, prior_correction))


def _fit_platt_targets(z: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(a, b)`` of ``sigmoid(a * z + b)`` against targets ``t`` in [0, 1], ``a`` floored."""
    from scipy.optimize import minimize

    def nll(ab: np.ndarray) -> tuple[float, np.ndarray]:
        s = ab[0] * z + ab[1]
        p = sigmoid(s)
        loss = float(np.mean(np.logaddexp(0.0, s) - t * s))
        g = p - t
        return loss, np.array([float(np.mean(g * z)), float(np.mean(g))])

    res = minimize(
        nll, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(MIN_PLATT_SLOPE, None), (None, None)]
    )
    return float(res.x[0]), float(res.x[1])


def fit_platt(logits: np.ndarray, y: np.ndarray, *, prior_correction: bool = True) -> dict[str, list[float]]:
    """Per-label Platt scaling ``p = sigmoid(a * z + b)`` fitted by maximum likelihood on ``logits``.

    Args:
        logits: ``(N, L)`` (or ``(N,)``) raw logits.
        y: 0/1 targets of the same shape.
        prior_correction: Platt's smoothed targets instead of 0/1 (default; without it the fit is plain logistic
            regression on one feature and diverges on a separable label).

    Returns:
        ``{"a": [...], "b": [...]}`` per label, the card's ``platt`` parameters, every slope ≥
        :data:`MIN_PLATT_SLOPE` (monotone: each label's AUROC is unchanged); a label with a single class keeps the
        identity ``a = 1, b = 0`` (nothing to fit).
    """
    z = np.asarray(logits, dtype=float)
    t = np.asarray(y, dtype=float)
    if z.shape != t.shape:
        raise ValueError(f"logits {z.shape} and targets {t.shape} differ in shape")
    z2, t2 = z.reshape(z.shape[0], -1), t.reshape(t.shape[0], -1)
    a: list[float] = []
    b: list[float] = []
    for j in range(z2.shape[1]):
        if np.unique(t2[:, j]).size < 2:
            a.append(1.0)
            b.append(0.0)
            continue
        aj, bj = _fit_one_platt(z2[:, j], t2[:, j], prior_correction)
        a.append(aj)
        b.append(bj)
    return {"a": a, "b": b}


def fit_platt_shared_slope(
    logits: np.ndarray, y: np.ndarray, *, prior_correction: bool = True
) -> dict[str, list[float]]:
    """Platt scaling ``p_k = sigmoid(a * z_k + b_k)`` with one slope ``a`` shared by all labels and an intercept per
    label, fitted jointly by maximum likelihood over all pooled decisions.

    Why: a slope per label is noisy when a label has a handful of validation positives; one slope pooled over every
    label's decisions is estimated from all of them, while each label keeps its own intercept (its base rate). The
    objective is the mean cross-entropy over the pooled decisions, so with a single label it is exactly
    :func:`fit_platt`'s and gives the same ``(a, b)``.

    Args:
        logits: ``(N, L)`` (or ``(N,)``) raw logits.
        y: 0/1 targets of the same shape.
        prior_correction: Platt's smoothed targets, per label, instead of 0/1 (as :func:`fit_platt`).

    Returns:
        ``{"a": [...], "b": [...]}`` per label — the card's ordinary ``platt`` parameters, every fitted label with the
        same slope ``a ≥`` :data:`MIN_PLATT_SLOPE` (monotone: each label's AUROC is unchanged). A label with a single
        class keeps the identity ``a = 1, b = 0`` and takes no part in the fit, as in :func:`fit_platt`.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=float)
    t = np.asarray(y, dtype=float)
    if z.shape != t.shape:
        raise ValueError(f"logits {z.shape} and targets {t.shape} differ in shape")
    z2, t2 = z.reshape(z.shape[0], -1), t.reshape(t.shape[0], -1)
    n_labels = z2.shape[1]
    fitted = [j for j in range(n_labels) if np.unique(t2[:, j]).size == 2]
    a_out, b_out = [1.0] * n_labels, [0.0] * n_labels
    if not fitted:
        return {"a": a_out, "b": b_out}
    zs = z2[:, fitted]
    ts = np.column_stack([_platt_targets(t2[:, j], prior_correction) for j in fitted])
    n = float(zs.size)

    def nll(x: np.ndarray) -> tuple[float, np.ndarray]:
        s = x[0] * zs + x[1:]
        loss = float(np.sum(np.logaddexp(0.0, s) - ts * s) / n)
        g = (sigmoid(s) - ts) / n
        return loss, np.concatenate([[float(np.sum(g * zs))], g.sum(axis=0)])

    x0 = np.concatenate([[1.0], np.zeros(len(fitted))])
    bounds = [(MIN_PLATT_SLOPE, None)] + [(None, None)] * len(fitted)
    res = minimize(nll, x0=x0, jac=True, method="L-BFGS-B", bounds=bounds)
    slope = float(res.x[0])
    for i, j in enumerate(fitted):
        a_out[j] = slope
        b_out[j] = float(res.x[1 + i])
    logger.debug("shared-slope Platt over %d labels: a = %.4f", len(fitted), slope)
    return {"a": a_out, "b": b_out}


def _fit_one_platt_toward(
    z: np.ndarray, t: np.ndarray, prior: tuple[float, float], strength: float
) -> tuple[float, float]:
    """Per-label Platt on targets ``t`` with an L2 pull of ``strength`` pseudo-observations toward ``prior``.

    Projected Newton on the two parameters (the penalised objective is strictly convex for ``strength > 0``), with
    backtracking, started at the prior: ``choose_shrinkage`` runs some thousand of these fits, which a general
    optimiser makes slow. Strength 0 is per-label Platt and is fitted exactly as :func:`fit_platt` fits it.
    """
    a0, b0 = prior
    if strength == 0.0:
        return _fit_platt_targets(z, t)
    c = strength / float(z.size)

    def objective(x: np.ndarray) -> float:
        s = x[0] * z + x[1]
        return float(np.mean(np.logaddexp(0.0, s) - t * s)) + c * ((x[0] - a0) ** 2 + (x[1] - b0) ** 2)

    x = np.array([max(a0, MIN_PLATT_SLOPE), b0])
    f = objective(x)
    for _ in range(100):
        p = sigmoid(x[0] * z + x[1])
        g, w = p - t, p * (1.0 - p)
        grad = np.array([np.mean(g * z) + 2.0 * c * (x[0] - a0), np.mean(g) + 2.0 * c * (x[1] - b0)])
        hess = np.array([[np.mean(w * z * z) + 2.0 * c, np.mean(w * z)], [np.mean(w * z), np.mean(w) + 2.0 * c]])
        if x[0] <= MIN_PLATT_SLOPE and grad[0] > 0.0:  # the slope floor is active: move the intercept only
            step = np.array([0.0, -grad[1] / hess[1, 1]])
        else:
            step = -np.linalg.solve(hess, grad)
        size, improved = 1.0, False
        while size > 1e-10:
            cand = x + size * step
            cand[0] = max(cand[0], MIN_PLATT_SLOPE)
            f_cand = objective(cand)
            if f_cand <= f:
                improved = True
                break
            size /= 2.0
        if not improved:
            break
        moved = float(np.max(np.abs(cand - x)))
        x, f = cand, f_cand
        if moved < 1e-12:
            break
    return float(x[0]), float(x[1])


def _platt_shrunk_at(
    z2: np.ndarray, t2: np.ndarray, strengths: tuple[float, ...], prior_correction: bool
) -> list[dict[str, list[float]]]:
    """``platt-shrunk`` parameters at each of ``strengths`` (one shared-slope prior fit for all of them)."""
    shared = fit_platt_shared_slope(z2, t2, prior_correction=prior_correction)
    out: list[dict[str, list[float]]] = [{"a": [], "b": []} for _ in strengths]
    for j in range(z2.shape[1]):
        two_classes = np.unique(t2[:, j]).size == 2
        t = _platt_targets(t2[:, j], prior_correction) if two_classes else t2[:, j]
        for params, lam in zip(out, strengths, strict=True):
            aj, bj = (
                _fit_one_platt_toward(z2[:, j], t, (shared["a"][j], shared["b"][j]), lam) if two_classes else (1.0, 0.0)
            )
            params["a"].append(aj)
            params["b"].append(bj)
    return out


def choose_shrinkage(
    logits: np.ndarray,
    y: np.ndarray,
    *,
    strengths: tuple[float, ...] = SHRINK_STRENGTHS,
    n_folds: int = 5,
    seed: int = 0,
    prior_correction: bool = True,
) -> tuple[float, dict[float, float]]:
    """The ``platt-shrunk`` strength with the lowest Brier score cross-fitted over label-stratified folds of the rows.

    Args:
        logits: ``(N, L)`` raw logits (one row per patient).
        y: 0/1 targets of the same shape.
        strengths: candidate strengths (pseudo-observations, ≥ 0).
        n_folds: folds of the rows (at most N).
        seed: fold assignment seed.
        prior_correction: as :func:`fit_platt`.

    Returns:
        ``(strength, {strength: cross-fitted pooled Brier})``; ties go to the larger strength.
    """
    from vitalens.data.splits import patient_kfold

    z = np.asarray(logits, dtype=float)
    t = np.asarray(y, dtype=float)
    z2, t2 = z.reshape(z.shape[0], -1), t.reshape(t.shape[0], -1)
    if not strengths or min(strengths) < 0:
        raise ValueError(f"strengths must be non-empty and ≥ 0, got {strengths}")
    rows = [str(i) for i in range(z2.shape[0])]
    strata = t2.astype(int) if t2.shape[1] > 1 else np.column_stack([t2, 1 - t2]).astype(int)
    folds = patient_kfold(rows, strata, k=min(n_folds, len(rows)), seed=seed)
    probs = {lam: np.empty_like(z2) for lam in strengths}
    for train, held in folds:
        fits = _platt_shrunk_at(z2[train], t2[train], strengths, prior_correction)
        for lam, params in zip(strengths, fits, strict=True):
            probs[lam][held] = sigmoid(np.asarray(params["a"]) * z2[held] + np.asarray(params["b"]))
    table = {lam: float(np.mean((probs[lam] - t2) ** 2)) for lam in strengths}
    best = min(strengths, key=lambda lam: (round(table[lam], 12), -lam))
    return best, table


def fit_platt_shrunk(
    logits: np.ndarray,
    y: np.ndarray,
    *,
    strength: float | None = None,
    seed: int = 0,
    prior_correction: bool = True,
) -> dict[str, list[float]]:
    """Per-label Platt with an L2 prior pulling each label's ``(a_k, b_k)`` toward the shared-slope fit.

    Why: between 16 free per-label parameters (noisy on a few positives) and one shared slope (biased where the labels'
    slopes truly differ), a label moves away from the shared fit only as far as its own data justify. Each label
    minimises its mean Platt cross-entropy plus ``strength · ((a_k − a)² + (b_k − b_k⁰)²) / N``, where ``(a, b_k⁰)``
    is :func:`fit_platt_shared_slope` on the same rows, so ``strength`` counts prior pseudo-observations: 0 is
    :func:`fit_platt`, large values approach the shared-slope fit.

    Args:
        logits: ``(N, L)`` (or ``(N,)``) raw logits.
        y: 0/1 targets of the same shape.
        strength: the pull (≥ 0); ``None`` chooses it among :data:`SHRINK_STRENGTHS` by :func:`choose_shrinkage`
            on these rows (nested: inside :func:`crossfit_calibration` it sees the training folds only).
        seed: fold seed of that choice.
        prior_correction: as :func:`fit_platt`.

    Returns:
        ``{"a": [...], "b": [...]}``, the card's ordinary ``platt`` parameters, every slope ≥ :data:`MIN_PLATT_SLOPE`;
        a label with a single class keeps the identity ``a = 1, b = 0``.
    """
    z = np.asarray(logits, dtype=float)
    t = np.asarray(y, dtype=float)
    if z.shape != t.shape:
        raise ValueError(f"logits {z.shape} and targets {t.shape} differ in shape")
    z2, t2 = z.reshape(z.shape[0], -1), t.reshape(t.shape[0], -1)
    if strength is None:
        strength, table = choose_shrinkage(z2, t2, seed=seed, prior_correction=prior_correction)
        logger.debug("platt-shrunk strength %.3g chosen by cross-fitted Brier %s", strength, table)
    elif strength < 0:
        raise ValueError(f"strength must be ≥ 0, got {strength}")
    return _platt_shrunk_at(z2, t2, (float(strength),), prior_correction)[0]


def crossfit_calibration(
    method: str, logits: np.ndarray, y: np.ndarray, folds: np.ndarray, *, per_label: bool = False
) -> np.ndarray:
    """Calibrated probabilities of out-of-fold ``logits`` where each fold is mapped by a calibration fitted on the
    other folds only, so the ECE of the result is an honest estimate of the calibration fitted on all of them.

    Args:
        method: ``none``, ``temperature``, ``platt``, ``platt-shared-slope``, ``platt-shrunk`` or ``isotonic``.
        logits: ``(N, L)`` out-of-fold logits.
        y: ``(N, L)`` 0/1 targets.
        folds: ``(N,)`` fold of each row (at least two distinct values).

    Returns:
        ``(N, L)`` probabilities.
    """
    z = np.asarray(logits, dtype=float)
    f = np.asarray(folds)
    if f.shape[0] != z.shape[0]:
        raise ValueError(f"{f.shape[0]} fold ids for {z.shape[0]} rows")
    values = np.unique(f)
    if values.size < 2:
        raise ValueError("cross-fitting needs at least two folds")
    out = np.empty_like(z)
    for k in values:
        held = f == k
        spec = fit_calibration(method, z[~held], np.asarray(y)[~held], per_label=per_label, fitted_on="other folds")
        out[held] = apply_calibration(spec, z[held])
    return out


def fit_isotonic(probs: np.ndarray, y: np.ndarray) -> dict[str, list[list[float]]]:
    """Per-label isotonic regression of ``y`` on ``probs``, as interpolation knots.

    Args:
        probs: ``(N, L)`` (or ``(N,)``) uncalibrated probabilities.
        y: 0/1 targets of the same shape.

    Returns:
        ``{"x": [[...] per label], "y": [[...] per label]}``: the knots ``np.interp`` maps through; a label with a
        single class keeps the identity ``[0, 1] → [0, 1]``.
    """
    from sklearn.isotonic import IsotonicRegression

    p = np.asarray(probs, dtype=float)
    t = np.asarray(y, dtype=float)
    if p.shape != t.shape:
        raise ValueError(f"probs {p.shape} and targets {t.shape} differ in shape")
    p2, t2 = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    for j in range(p2.shape[1]):
        if np.unique(t2[:, j]).size < 2:
            xs.append([0.0, 1.0])
            ys.append([0.0, 1.0])
            continue
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p2[:, j], t2[:, j])
        xs.append([float(v) for v in iso.X_thresholds_])
        ys.append([float(v) for v in iso.y_thresholds_])
    return {"x": xs, "y": ys}


def fit_calibration(
    method: str, logits: np.ndarray, y: np.ndarray, *, per_label: bool = False, fitted_on: str = "val"
) -> CalibrationSpec:
    """Fit the named calibration and return the card's spec.

    ``none``, ``temperature``, ``platt``, ``platt-shared-slope`` (stored as ``platt`` with equal slopes: the card and
    the analyzers apply it as ordinary per-label Platt), ``platt-shrunk`` (stored as ``platt`` too; its strength is
    chosen on the rows given) or ``isotonic``.
    """
    if method == "none":
        return CalibrationSpec(method="none", fitted_on=None)
    if method == "temperature":
        temp = fit_temperature(logits, y, per_label=per_label)
        logger.info("temperature scaling fitted on %s: T = %s", fitted_on, temp)
        return CalibrationSpec(method="temperature", params={"temperature": temp}, fitted_on=fitted_on)
    if method == "platt":
        return CalibrationSpec(method="platt", params=fit_platt(logits, y), fitted_on=fitted_on)
    if method == "platt-shared-slope":
        return CalibrationSpec(method="platt", params=fit_platt_shared_slope(logits, y), fitted_on=fitted_on)
    if method == "platt-shrunk":
        return CalibrationSpec(method="platt", params=fit_platt_shrunk(logits, y), fitted_on=fitted_on)
    if method == "isotonic":
        return CalibrationSpec(method="isotonic", params=fit_isotonic(sigmoid(logits), y), fitted_on=fitted_on)
    from vitalens._naming import unknown_name_error

    raise unknown_name_error(
        "calibration method", method, ["none", "temperature", "platt", "platt-shared-slope", "platt-shrunk", "isotonic"]
    )


def apply_calibration(
    spec: CalibrationSpec | dict[str, Any], scores: np.ndarray, *, kind: str = "logits"
) -> np.ndarray:
    """Calibrated probabilities from raw logits (``kind="logits"``) or from uncalibrated probabilities.

    Delegates to :func:`vitalens.artifacts.apply_calibration` (what the analyzers run), so training, evaluation
    and inference turn logits into the same numbers.

    Args:
        spec: the card's calibration (or its dict form).
        scores: ``(N, L)`` logits or probabilities.
        kind: ``logits`` or ``probs`` (converted to logits first, clipped at 1e-7).

    Returns:
        ``(N, L)`` probabilities in [0, 1].
    """
    from vitalens.artifacts import apply_calibration as _apply

    if isinstance(spec, dict):
        spec = CalibrationSpec.model_validate(spec)
    if kind not in ("logits", "probs"):
        raise ValueError(f"kind must be 'logits' or 'probs', got {kind!r}")
    z = np.asarray(scores, dtype=float)
    if kind == "probs":
        z = logit(z)
    return _apply(spec, z)


def reliability_curve(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, list[float]]:
    """Equal-width reliability bins over [0, 1] (the last bin includes 1.0); all labels pooled.

    Returns:
        ``{"edges" (n_bins+1), "count", "mean_prob", "frac_positive"}``; empty bins have NaN means.
    """
    _, count, sum_p, sum_y = _bin_sums(*_pooled(probs, y), n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        frac = np.where(count > 0, sum_y / count, np.nan)
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": count.tolist(),
        "mean_prob": mean_p.tolist(),
        "frac_positive": frac.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE = Σ_b (n_b / n) · |frac_positive_b − mean_prob_b| over equal-width bins (all labels pooled).

    Returns NaN for empty input.
    """
    _, count, sum_p, sum_y = _bin_sums(*_pooled(probs, y), n_bins)
    if count.sum() == 0:
        return float("nan")
    return float(_ece_from_sums(sum_y[None, :], count, sum_p)[0])


def _pooled(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and targets flattened (every label of a multi-label output one decision), sizes checked."""
    p = np.asarray(probs, dtype=float).ravel()
    t = np.asarray(y, dtype=float).ravel()
    if p.shape != t.shape:
        raise ValueError(f"probs ({p.size}) and targets ({t.size}) differ in size")
    return p, t


def _bin_sums(p: np.ndarray, t: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(bin index per decision, count, sum of p, sum of y)`` over equal-width bins of [0, 1] (lower edge inclusive,
    the last bin includes 1.0): the one binning of the reliability curve, the ECE and its consistency resampling."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    return idx, count, np.bincount(idx, weights=p, minlength=n_bins), np.bincount(idx, weights=t, minlength=n_bins)


def _ece_from_sums(sum_y: np.ndarray, count: np.ndarray, sum_p: np.ndarray) -> np.ndarray:
    """ECE of each row of per-bin positive sums ``sum_y`` ``(R, B)`` over fixed bins (``count``, ``sum_p`` ``(B,)``):
    Σ_b (n_b / n) · |frac_positive_b − mean_prob_b|, empty bins contributing 0."""
    n = count.sum()
    safe = np.where(count > 0, count, 1.0)
    gap = np.abs(
        np.nan_to_num(np.where(count > 0, sum_y / safe, 0.0)) - np.nan_to_num(np.where(count > 0, sum_p / safe, 0.0))
    )
    return np.asarray((count / n * gap).sum(axis=-1), dtype=float)


@dataclass(frozen=True)
class EceConsistency:
    """Result of :func:`ece_consistency`.

    Attributes:
        observed: the ECE of the observed labels (equal to :func:`expected_calibration_error`).
        mean: mean ECE over the resamples (the ECE a perfectly calibrated model shows at this n and these bins).
        low: lower percentile of the resampled ECEs (``(1 - level) / 2``).
        high: upper percentile of the resampled ECEs.
        p_value: Monte Carlo p-value of ``observed`` under perfect calibration, ``(1 + #{ECE* ≥ observed}) / (1 + R)``.
        n_resamples: ``R``.
        n_bins: equal-width bins over [0, 1].
        seed: seed of the generator the labels were drawn from.
        level: coverage of ``[low, high]`` and of the per-bin bands.
        n: number of decisions pooled (rows × labels).
        samples: ``(R,)`` the resampled ECEs.
        band_low: ``(n_bins,)`` lower percentile of each bin's resampled fraction positive (NaN: empty bin).
        band_high: ``(n_bins,)`` upper percentile of each bin's resampled fraction positive (NaN: empty bin).
    """

    observed: float
    mean: float
    low: float
    high: float
    p_value: float
    n_resamples: int
    n_bins: int
    seed: int
    level: float
    n: int
    samples: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray

    def summary(self) -> dict[str, float | int]:
        """The figures a report stores beside ``ece``: ``{mean, low, high, p_value, n_resamples, seed}``."""
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
        }


def ece_consistency(
    probs: np.ndarray,
    y: np.ndarray,
    n_bins: int = 10,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    max_elements: int = 4_000_000,
) -> EceConsistency:
    """The ECE a perfectly calibrated model would show on these probabilities, by consistency resampling.

    Why: the binned ECE is biased upwards: even a perfectly calibrated model shows a positive ECE on a finite
    sample (a bin of 5 decisions at p = 0.3 cannot have a positive fraction of 0.3), and the smaller the set the
    larger it is, so "ECE 0.062 on 400 decisions" cannot be told apart from sampling noise without knowing the ECE
    a calibrated model would show at the same n. Consistency resampling (Bröcker & Smith, 2007, "Increasing the
    reliability of reliability diagrams", Weather and Forecasting 22:651–661) answers it: draw surrogate labels
    ``y* ~ Bernoulli(p)`` from the model's own (calibrated) probabilities, so that the model is calibrated by
    construction, and recompute the ECE with the same bins; the resampled ECEs are its distribution under perfect
    calibration at this n, and the share at least as large as the observed ECE is a p-value. The per-bin percentiles
    of the surrogate positive fractions are the consistency bands of the reliability diagram.

    The ECE is exactly :func:`expected_calibration_error`'s: equal-width bins over [0, 1] (lower edge inclusive, the
    last bin includes 1.0), all labels of a multi-label output pooled as independent decisions. The forecasts are
    held fixed (Bröcker & Smith also resample them): the bins, their counts and mean probabilities are those of the
    observed set, so the null distribution is conditional on the probabilities the reported ECE was computed on.
    Labels are drawn independently, including the labels of one patient; under calibration each one is a Bernoulli
    of its own probability whatever their dependence, but a dependence between them would widen the null range.

    Args:
        probs: ``(N,)`` or ``(N, L)`` calibrated probabilities in [0, 1].
        y: observed 0/1 labels of the same size.
        n_bins: equal-width bins (as for the reported ECE).
        n_resamples: surrogate label sets ``R`` (≥ 1).
        level: coverage of the ECE range and of the per-bin bands, in (0, 1).
        seed: seed of the ``numpy.random.Generator`` the surrogate labels come from (the only randomness).
        max_elements: surrogate labels drawn at once (memory bound; the result does not depend on it).

    Returns:
        :class:`EceConsistency`; ``p_value`` is ``(1 + #{ECE* ≥ observed}) / (1 + R)`` (never 0: the observed set
        counts as one draw; Davison & Hinkley, 1997, §4.2), comparing with a tolerance of 1e-12 so that resamples
        tied with the observed ECE count.

    Raises:
        ValueError: sizes differ, the input is empty, a probability lies outside [0, 1], ``n_resamples < 1``, or
            ``level`` is not in (0, 1).

    Example:
        >>> r = ece_consistency(np.full(400, 0.3), np.r_[np.ones(120), np.zeros(280)], n_resamples=500, seed=0)
        >>> round(r.observed, 6), r.p_value  # observed 120 of 400 at p = 0.3: as calibrated as it gets
        (0.0, 1.0)
    """
    p, t = _pooled(probs, y)
    if p.size == 0:
        raise ValueError("consistency resampling needs at least one probability")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"probabilities must lie in [0, 1], got range [{np.nanmin(p)}, {np.nanmax(p)}]")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be ≥ 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    idx, count, sum_p, sum_y = _bin_sums(p, t, n_bins)
    onehot = np.zeros((p.size, n_bins))
    onehot[np.arange(p.size), idx] = 1.0
    observed = float(_ece_from_sums(sum_y[None, :], count, sum_p)[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, max_elements // p.size))
    sums = np.empty((n_resamples, n_bins))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        # u < p: exactly 1 where p = 1 and exactly 0 where p = 0 (u ∈ [0, 1)), so saturated forecasts are honoured
        draws = (rng.random((stop - start, p.size)) < p).astype(float)
        sums[start:stop] = draws @ onehot
    samples = _ece_from_sums(sums, count, sum_p)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(count > 0, sums / np.where(count > 0, count, 1.0), np.nan)
    band_low = np.where(count > 0, np.quantile(np.nan_to_num(frac), alpha, axis=0), np.nan)
    band_high = np.where(count > 0, np.quantile(np.nan_to_num(frac), 1.0 - alpha, axis=0), np.nan)
    exceed = int(np.count_nonzero(samples >= observed - 1e-12))
    result = EceConsistency(
        observed=observed,
        mean=float(samples.mean()),
        low=float(np.quantile(samples, alpha)),
        high=float(np.quantile(samples, 1.0 - alpha)),
        p_value=(1.0 + exceed) / (1.0 + n_resamples),
        n_resamples=int(n_resamples),
        n_bins=int(n_bins),
        seed=int(seed),
        level=float(level),
        n=int(p.size),
        samples=samples,
        band_low=band_low,
        band_high=band_high,
    )
    logger.debug(
        "ECE consistency (n = %d, %d bins, R = %d): observed %.4f, calibrated %.4f [%.4f, %.4f], p = %.4f",
        result.n,
        n_bins,
        n_resamples,
        observed,
        result.mean,
        result.low,
        result.high,
        result.p_value,
    )
    return result
