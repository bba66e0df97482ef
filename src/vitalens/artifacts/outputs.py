"""From a net's raw outputs to the card's label probabilities, for every output kind (pure NumPy, no torch).

Why here, next to calibration: the analyzers, ``vitalens evaluate``, the benches and the training engine must turn
the same raw outputs into the same probabilities the card's thresholds were chosen on. The card's
:class:`~vitalens.artifacts.OutputSpec` says which link applies (sigmoid per label, softmax, CORN, or a regression
score with cumulative-logit cut-points) and its :class:`~vitalens.artifacts.CalibrationSpec` the temperature.

References: Guo et al. 2017 (temperature scaling); Shi, Cao & Raschka 2021, "Deep Neural Networks for Rank-Consistent
Ordinal Regression Based On Conditional Probabilities" (CORN); McCullagh 1980 (cumulative-logit model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vitalens.artifacts._card import CalibrationSpec, ModelCard, OutputSpec
from vitalens.artifacts.calibration import apply_calibration, sigmoid

__all__ = [
    "softmax",
    "corn_probabilities",
    "cumulative_logit_probabilities",
    "output_probabilities",
    "predict_probabilities",
    "derived_probability",
    "expected_grade",
    "n_outputs_for",
    "softmax_groups",
]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits (SciPy's, numerically stable), float64."""
    from scipy.special import softmax as _softmax

    out: np.ndarray = _softmax(np.asarray(z, dtype=np.float64), axis=1)
    return out


def _from_exceedance(exceed: np.ndarray) -> np.ndarray:
    """Class probabilities from ``P(y > k)``, ``(N, K − 1)``, made non-increasing in k: differences of 1, P, 0."""
    p = np.minimum.accumulate(np.clip(exceed, 0.0, 1.0), axis=1)
    n = p.shape[0]
    full = np.concatenate([np.ones((n, 1)), p, np.zeros((n, 1))], axis=1)
    out: np.ndarray = full[:, :-1] - full[:, 1:]
    return out


def corn_probabilities(logits: np.ndarray) -> np.ndarray:
    """CORN: ``P(y > k) = Π_{j ≤ k} σ(z_j)`` from ``(N, K − 1)`` conditional logits → ``(N, K)`` class probabilities."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    return _from_exceedance(np.cumprod(sigmoid(z), axis=1))


def cumulative_logit_probabilities(score: np.ndarray, scale: float, cutpoints: Sequence[float]) -> np.ndarray:
    """Cumulative logit: ``P(y > k) = σ(scale · s − θ_k)`` for ordered cut-points θ → ``(N, K)`` probabilities.

    Args:
        score: ``(N,)`` or ``(N, 1)`` regression outputs.
        scale: a > 0.
        cutpoints: K − 1 increasing values.
    """
    s = np.asarray(score, dtype=np.float64).reshape(-1, 1)
    theta = np.asarray(cutpoints, dtype=np.float64).reshape(1, -1)
    if theta.size and np.any(np.diff(theta) < 0):
        raise ValueError(f"cut-points must be increasing, got {theta.ravel().tolist()}")
    return _from_exceedance(sigmoid(scale * s - theta))


def output_probabilities(output: OutputSpec, calibration: CalibrationSpec, raw: np.ndarray) -> np.ndarray:
    """Probabilities ``(N, K)`` in label order from raw net outputs ``(N, n_outputs)``.

    Raises:
        ValueError: outputs of the wrong width for the head, or a regression head without fitted cut-points.
    """
    z = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    if output.head == "sigmoid":
        return apply_calibration(calibration, z)
    t = float(calibration.params.get("temperature", 1.0)) if calibration.method == "temperature" else 1.0
    if t <= 0:
        raise ValueError(f"temperature must be positive, got {t}")
    if output.head == "softmax":
        groups = softmax_groups(output)
        if not groups:
            return softmax(z / t)
        return _grouped_softmax(z, groups, calibration, t)
    if output.head == "corn":
        return corn_probabilities(z / t)
    params = output.params
    if "cutpoints" not in params or "scale" not in params:
        raise ValueError("regression head needs 'scale' and 'cutpoints' (fitted on validation) in the card's output")
    if z.shape[1] != 1:
        raise ValueError(f"regression head expects one output per sample, got {z.shape[1]}")
    return cumulative_logit_probabilities(z[:, 0], float(params["scale"]), params["cutpoints"])


def softmax_groups(output: OutputSpec) -> dict[str, list[int]]:
    """Name → output columns of each independent softmax of a grouped head (``output.params["groups"]``: name →
    number of classes, in column order), ``{}`` for an ordinary single softmax.

    Why groups: one net can predict two exclusive label sets at once (``retina.fusion``'s multiclass head: the DR grade
    of the fundus photograph and the OCT class of the scan). Each group's probabilities sum to 1 on its own; a joint
    softmax over all columns would make the two sets compete for one unit of probability.
    """
    raw = output.params.get("groups") or {}
    out: dict[str, list[int]] = {}
    start = 0
    for name, size in dict(raw).items():
        out[str(name)] = list(range(start, start + int(size)))
        start += int(size)
    return out


def _grouped_softmax(
    z: np.ndarray, groups: dict[str, list[int]], calibration: CalibrationSpec, default_t: float
) -> np.ndarray:
    width = sum(len(c) for c in groups.values())
    if z.shape[1] != width:
        raise ValueError(f"grouped softmax head expects {width} outputs ({dict(groups)}), got {z.shape[1]}")
    temps = (calibration.params.get("group_temperatures") or {}) if calibration.method == "temperature" else {}
    out = np.empty_like(z)
    for name, cols in groups.items():
        t = float(temps.get(name, default_t))
        if t <= 0:
            raise ValueError(f"temperature of group {name} must be positive, got {t}")
        out[:, cols] = softmax(z[:, cols] / t)
    return out


def predict_probabilities(card: ModelCard, raw: np.ndarray) -> np.ndarray:
    """:func:`output_probabilities` with the card's own output and calibration (what every analyzer calls)."""
    return output_probabilities(card.output, card.calibration, raw)


def derived_probability(probs: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """``(N,)`` probability of a derived finding: the sum of its ``classes``' probabilities (e.g. grades 2–4)."""
    idx = [list(labels).index(c) for c in classes]
    out: np.ndarray = np.clip(np.asarray(probs, dtype=np.float64)[:, idx].sum(axis=1), 0.0, 1.0)
    return out


def expected_grade(probs: np.ndarray) -> np.ndarray:
    """``(N,)`` expected grade Σ_k k·p_k of ordinal class probabilities ``(N, K)`` (grade k = column k)."""
    p = np.asarray(probs, dtype=np.float64)
    out: np.ndarray = p @ np.arange(p.shape[1], dtype=np.float64)
    return out


def n_outputs_for(head: str, n_classes: int) -> int:
    """Width of the net's output layer for a head: K (sigmoid, softmax), K − 1 (CORN), 1 (regression)."""
    return {"sigmoid": n_classes, "softmax": n_classes, "corn": n_classes - 1, "regression": 1}[head]
