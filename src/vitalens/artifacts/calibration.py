"""Applying a card's probability calibration at inference (pure NumPy, no torch).

Why here: the analyzer, the evaluation CLI and the benches must turn logits into the *same* calibrated
probabilities the card's thresholds were chosen on; one function read from the card guarantees it.

Parameter formats (``CalibrationSpec.params``):
    temperature: ``{"temperature": T}`` (scalar) or ``{"temperature": [T_1, ..., T_K]}`` (per label); p = σ(z / T).
    platt: ``{"a": [...], "b": [...]}`` per label; p = σ(a·z + b) with every slope ``a > 0`` (a positive slope keeps
        each label's ranking, so its AUROC, exactly; a logit of ±inf maps to 1 or 0).
    isotonic: ``{"x": [[...], ...], "y": [[...], ...]}`` per label: breakpoints of the fitted step function on
        the uncalibrated probability σ(z); applied by linear interpolation, clipped at the ends.
"""

from __future__ import annotations

import numpy as np

from vitalens.artifacts._card import CalibrationSpec

__all__ = ["sigmoid", "apply_calibration"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (SciPy's ``expit``), as float64."""
    from scipy.special import expit

    out: np.ndarray = expit(np.asarray(z, dtype=np.float64))
    return out


def _per_label(value: float | list[float], k: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.size == 1:
        return np.full(k, float(arr[0]))
    if arr.size != k:
        raise ValueError(f"calibration has {arr.size} per-label values for {k} labels")
    return arr


def apply_calibration(spec: CalibrationSpec, logits: np.ndarray) -> np.ndarray:
    """Calibrated probabilities ``(N, K)`` from raw logits ``(N, K)`` according to ``spec``."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    k = z.shape[1]
    if spec.method == "none":
        return sigmoid(z)
    if spec.method == "temperature":
        t = _per_label(spec.params["temperature"], k)
        if np.any(t <= 0):
            raise ValueError(f"temperature must be positive, got {t}")
        return sigmoid(z / t)
    if spec.method == "platt":
        a = _per_label(spec.params["a"], k)
        b = _per_label(spec.params["b"], k)
        # A slope ≤ 0 would flatten or invert a label's ranking; such a card is refused, never applied.
        if not (np.all(np.isfinite(a)) and np.all(a > 0) and np.all(np.isfinite(b))):
            raise ValueError(f"Platt slopes must be positive and finite and intercepts finite, got a={a}, b={b}")
        with np.errstate(over="ignore"):  # a·z beyond the float range is ±inf, which σ maps to 1 or 0
            return sigmoid(a * z + b)
    if spec.method == "isotonic":
        p = sigmoid(z)
        xs, ys = spec.params["x"], spec.params["y"]
        if len(xs) != k or len(ys) != k:
            raise ValueError(f"isotonic calibration has {len(xs)} curves for {k} labels")
        out = np.empty_like(p)
        for j in range(k):
            out[:, j] = np.interp(p[:, j], np.asarray(xs[j], float), np.asarray(ys[j], float))
        clipped: np.ndarray = np.clip(out, 0.0, 1.0)
        return clipped
    raise ValueError(f"unknown calibration method {spec.method}")
