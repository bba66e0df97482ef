"""Multi-class and ordinal problems in the engine: the head (softmax, CORN, regression), its loss and its fitting.

Why a module of its own: the engine was built for multi-label sigmoid outputs; a DR grade (ordered, 5 classes) and
an OCT class (4 or 8 exclusive classes) need other heads, losses, per-epoch metrics and post-hoc fitting. Every
problem keeps the engine's one target format — one-hot ``(N, K)`` rows — so patient-level splits, weighted sampling
and the reports are shared; only what is listed here differs.

Heads (recipe ``loss.name``): ``ce`` → softmax with cross-entropy (label smoothing, class weights); ``corn`` → CORN
(Shi, Cao & Raschka 2021, ``coral_pytorch.losses.corn_loss``): K − 1 conditional binary tasks, rank-consistent;
``regression`` → one score trained with the smooth-L1 loss on the grade, whose class probabilities come from a
cumulative-logit model (scale and ordered cut-points) fitted on the validation split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vitalens.artifacts import CalibrationSpec, OutputSpec
from vitalens.artifacts.outputs import n_outputs_for, output_probabilities
from vitalens.errors import InputError

if TYPE_CHECKING:
    from vitalens.training.recipe import LossSection

__all__ = [
    "Problem",
    "make_problem",
    "HEAD_OF_LOSS",
    "class_weights",
    "fit_output",
    "torch_class_probabilities",
]

logger = logging.getLogger(__name__)

ProblemKind = Literal["multilabel", "multiclass", "ordinal"]

#: The head each loss trains.
HEAD_OF_LOSS: dict[str, str] = {
    "bce": "sigmoid",
    "focal": "sigmoid",
    "ce": "softmax",
    "corn": "corn",
    "regression": "regression",
}
_ALLOWED: dict[str, set[str]] = {
    "multilabel": {"bce", "focal"},
    "multiclass": {"ce"},
    "ordinal": {"ce", "corn", "regression"},
}


def class_weights(train_targets: np.ndarray, max_weight: float = 20.0) -> np.ndarray:
    """Inverse-frequency class weights ``N / (K · n_k)``, clipped to ``[1 / max_weight, max_weight]``.

    An absent class gets weight 1 (it never appears in a batch). ``train_targets`` is one-hot ``(N, K)``.
    """
    y = np.asarray(train_targets, dtype=float)
    n, k = y.shape
    counts = y.sum(axis=0)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, n / (k * np.maximum(counts, 1e-12)), 1.0)
    return np.clip(w, 1.0 / max_weight, max_weight)


@dataclass(frozen=True)
class Problem:
    """One problem kind with its head: what the net outputs and how it is trained.

    Attributes:
        kind: ``multilabel``, ``multiclass`` or ``ordinal``.
        head: ``sigmoid``, ``softmax``, ``corn`` or ``regression``.
        n_classes: K, the card's labels.
    """

    kind: ProblemKind
    head: str
    n_classes: int

    @property
    def n_outputs(self) -> int:
        return n_outputs_for(self.head, self.n_classes)

    @property
    def exclusive(self) -> bool:
        """True for multi-class and ordinal problems (one class per sample)."""
        return self.kind != "multilabel"

    def output_spec(self, params: dict[str, Any] | None = None) -> OutputSpec:
        return OutputSpec(problem=self.kind, head=self.head, params=params or {})  # type: ignore[arg-type]

    def build_loss(self, section: LossSection, train_targets: np.ndarray) -> nn.Module:
        """The loss of this head, on raw outputs and one-hot float targets ``(B, K)``."""
        if self.head == "sigmoid":
            from vitalens.training.losses import build_loss

            return build_loss(section, train_targets)
        weight = None
        if section.class_weight == "auto":
            weight = class_weights(train_targets, section.pos_weight_max)
            logger.info("class weights (auto, inverse frequency): %s", [round(float(v), 2) for v in weight])
        elif isinstance(section.class_weight, list):
            if len(section.class_weight) != self.n_classes:
                raise InputError(
                    f"loss.class_weight has {len(section.class_weight)} values for {self.n_classes} classes",
                    field="loss.class_weight",
                )
            weight = np.asarray(section.class_weight, dtype=float)
        if self.head == "softmax":
            return SoftmaxCrossEntropy(weight, section.label_smoothing)
        if self.head == "corn":
            if weight is not None:
                logger.warning("class weights are ignored by the CORN loss (use weighted sampling instead)")
            return CornLoss(self.n_classes)
        return GradeRegressionLoss()


#: The loss a recipe gets when it names none.
DEFAULT_LOSS: dict[str, str] = {"multilabel": "bce", "multiclass": "ce", "ordinal": "ce"}


def make_problem(kind: str, loss_name: str | None, n_classes: int) -> Problem:
    """The problem a task kind and a recipe loss make (None: the kind's default); a misfit loss is an error."""
    if kind not in _ALLOWED:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("problem", kind, _ALLOWED)
    loss_name = loss_name or DEFAULT_LOSS[kind]
    if loss_name not in _ALLOWED[kind]:
        raise InputError(
            f"loss '{loss_name}' does not fit a {kind} task; use one of {sorted(_ALLOWED[kind])}", field="loss.name"
        )
    if n_classes < 2:
        raise InputError(f"a {kind} problem needs ≥ 2 labels, got {n_classes}", field="labels")
    return Problem(kind=kind, head=HEAD_OF_LOSS[loss_name], n_classes=n_classes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- losses
class SoftmaxCrossEntropy(nn.Module):
    """Cross-entropy on softmax logits with label smoothing ε and optional class weights; one-hot targets."""

    def __init__(self, weight: np.ndarray | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target.argmax(dim=1), weight=self.weight, label_smoothing=self.label_smoothing)


class CornLoss(nn.Module):
    """The CORN loss of ``coral_pytorch`` on ``(B, K − 1)`` logits; one-hot targets."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = int(n_classes)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from coral_pytorch.losses import corn_loss

        return corn_loss(logits, target.argmax(dim=1), self.n_classes)


class GradeRegressionLoss(nn.Module):
    """Smooth-L1 between one score per sample and the grade index (robust to the grading noise between neighbours)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        grade = target.argmax(dim=1).to(logits.dtype)
        return F.smooth_l1_loss(logits[:, 0], grade)


def torch_class_probabilities(problem: Problem, raw: torch.Tensor) -> torch.Tensor:
    """Uncalibrated class probabilities ``(B, K)`` for per-epoch metrics (regression: a unit-scale cumulative logit
    with cut-points at k + 0.5, i.e. rounding the score)."""
    if problem.head == "sigmoid":
        return torch.sigmoid(raw)
    if problem.head == "softmax":
        return torch.softmax(raw, dim=1)
    if problem.head == "corn":
        exceed = torch.cumprod(torch.sigmoid(raw), dim=1)
    else:
        cut = torch.arange(problem.n_classes - 1, dtype=raw.dtype, device=raw.device) + 0.5
        exceed = torch.sigmoid(4.0 * (raw[:, :1] - cut[None, :]))
    ones = torch.ones_like(exceed[:, :1])
    full = torch.cat([ones, exceed, torch.zeros_like(ones)], dim=1)
    return (full[:, :-1] - full[:, 1:]).clamp_min(0.0)


# ------------------------------------------------------------------------------------------ fitting on validation
def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(y.size), y], 1e-12, 1.0))))


def fit_output(
    problem: Problem, method: str, raw_val: np.ndarray, y_val: np.ndarray
) -> tuple[CalibrationSpec, OutputSpec]:
    """Fit what turns raw outputs into calibrated probabilities, on the validation split only.

    softmax / CORN: one temperature T minimising the validation negative log-likelihood (``method`` ``temperature``;
    ``none`` keeps T = 1). regression: the cumulative-logit scale and ordered cut-points by maximum likelihood
    (whatever ``method`` says: without them the score has no probabilities).

    Args:
        problem: the problem (not multi-label).
        method: the recipe's calibration method (``none``, ``temperature``; ``isotonic`` falls back to temperature).
        raw_val: ``(N, n_outputs)`` raw validation outputs.
        y_val: ``(N, K)`` one-hot validation targets.
    """
    from scipy.optimize import minimize, minimize_scalar

    y = np.asarray(y_val).argmax(axis=1)
    z = np.asarray(raw_val, dtype=np.float64)
    if problem.head == "regression":
        k = problem.n_classes
        s = z[:, 0]

        def unpack(v: np.ndarray) -> tuple[float, np.ndarray]:
            return float(np.exp(v[0])), v[1] + np.concatenate([[0.0], np.cumsum(np.exp(v[2:]))])

        def loss(v: np.ndarray) -> float:
            scale, cuts = unpack(v)
            spec = OutputSpec(
                problem=problem.kind, head="regression", params={"scale": scale, "cutpoints": cuts.tolist()}
            )
            return _nll(output_probabilities(spec, CalibrationSpec(), s[:, None]), y)

        # Start from the rounding model: scale 4, cut-points at k + 0.5.
        start = np.concatenate([[np.log(4.0), 4.0 * 0.5], np.full(k - 2, np.log(4.0))])
        res = minimize(loss, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9})
        scale, cuts = unpack(res.x)
        logger.info("regression head: cumulative-logit scale %.3f, cut-points %s (fitted on val)", scale, cuts.round(3))
        return CalibrationSpec(method="none", fitted_on=None), problem.output_spec(
            {"scale": scale, "cutpoints": [float(c) for c in cuts], "fitted_on": "val"}
        )
    if method == "none" or np.unique(y).size < 2:
        if method != "none":
            logger.warning("validation holds a single class; temperature left at 1")
        return CalibrationSpec(method="none", fitted_on=None), problem.output_spec()
    if method not in ("temperature", "isotonic", "platt"):
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("calibration method", method, ["none", "temperature"])
    if method != "temperature":
        logger.warning("calibration %s is multi-label only; a %s head uses temperature scaling", method, problem.head)
    spec0 = problem.output_spec()

    def nll_at(log_t: float) -> float:
        cal = CalibrationSpec(method="temperature", params={"temperature": float(np.exp(log_t))})
        return _nll(output_probabilities(spec0, cal, z), y)

    res = minimize_scalar(nll_at, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    t = float(np.exp(res.x))
    logger.info("%s head: temperature %.3f fitted on val (NLL %.4f → %.4f)", problem.head, t, nll_at(0.0), res.fun)
    return CalibrationSpec(method="temperature", params={"temperature": t}, fitted_on="val"), spec0
