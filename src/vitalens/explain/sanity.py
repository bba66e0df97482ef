"""Model-randomisation sanity check for explanations (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

Why: an explanation that looks the same after the weights are scrambled explains the *image* (edges, the optic
disc), not the *model*; it must not be shown as the model's reason. The check re-initialises the layers from the
top (classifier) down, one group at a time (cascading), recomputes the maps after each step, and measures the
Spearman rank correlation with the original maps: a method that passes drops towards 0.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "rank_correlation",
    "randomization_groups",
    "randomize_groups_",
    "cascading_randomization",
    "SanityStep",
    "model_randomization_check",
    "steps_as_dicts",
]

logger = logging.getLogger(__name__)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (flattened; ties get average ranks).

    Returns:
        ρ in [−1, 1]; NaN when either map is constant (no ranking exists), so callers can count those apart.

    Raises:
        InputError: the maps differ in shape.

    Example:
        >>> rank_correlation(np.array([1, 2, 3]), np.array([10, 20, 40]))
        1.0
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"maps have shapes {a.shape} and {b.shape}; they must match", field="maps")
    a, b = a.ravel(), b.ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def _group_key(name: str) -> str:
    """``encoder.blocks.6.0.conv_pw`` → ``encoder.blocks.6``; ``fusion.3`` → ``fusion.3``; ``encoder.bn2`` stays."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:2])


def randomization_groups(model: nn.Module) -> list[str]:
    """Groups of parameterised layers, top (output side) first: the cascading order.

    A group is a module path cut after its first numeric index (a block of a stage, a layer of a Sequential) or
    after two components; registration order stands in for depth, reversed.
    """
    order: list[str] = []
    for name, module in model.named_modules():
        if name and any(True for _ in module.parameters(recurse=False)):
            key = _group_key(name)
            if key not in order:
                order.append(key)
    return order[::-1]


def randomize_groups_(model: nn.Module, groups: Sequence[str], *, seed: int = 0) -> nn.Module:
    """Re-initialise (in place) every layer under ``groups`` with its own default init, RNG seeded by ``seed``.

    Layers with ``reset_parameters`` use it (BatchNorm also resets its running statistics); any other parameter
    gets N(0, 0.02) (matrices) or zeros (vectors). The global RNG state is left as it was.
    """
    import torch

    prefixes = tuple(groups)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, module in model.named_modules():
            if not name or not any(name == p or name.startswith(p + ".") for p in prefixes):
                continue
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
                continue
            with torch.no_grad():
                for param in own:
                    torch.nn.init.normal_(param, std=0.02) if param.ndim > 1 else param.zero_()
    return model


def cascading_randomization(
    model: nn.Module, *, groups: Sequence[str] | None = None, seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(group, model')`` after re-initialising each group in turn, top first, cumulatively.

    ``model`` is left untouched (one deep copy is randomised progressively); the last step is fully random.
    """
    groups = list(groups) if groups is not None else randomization_groups(model)
    scrambled = copy.deepcopy(model)
    for i, group in enumerate(groups):
        randomize_groups_(scrambled, [group], seed=seed + i)
        yield group, scrambled


@dataclass(frozen=True)
class SanityStep:
    """Rank correlation of original vs randomised maps after randomising up to ``group`` (cascading)."""

    step: int
    group: str
    mean: float
    sd: float
    n: int
    n_constant: int


def model_randomization_check(
    model: nn.Module,
    explain: Callable[[nn.Module], list[np.ndarray]],
    *,
    groups: Sequence[str] | None = None,
    report: Sequence[str] | None = None,
    seed: int = 0,
) -> list[SanityStep]:
    """Run the cascading model-randomisation check.

    Args:
        model: the trained net (unchanged by the check).
        explain: ``explain(net) -> maps`` for a fixed list of inputs and targets (same order every call).
        groups: cascading order (default :func:`randomization_groups`, top first).
        report: the groups after which maps are recomputed (default: every group); the last group is always
            reported, and it is the fully randomised net.
        seed: seeds the re-initialisation.

    Returns:
        One :class:`SanityStep` per reported group: mean ± sd of Spearman ρ over the maps whose two versions are
        not constant, and how many were constant (ρ undefined).
    """
    groups = list(groups) if groups is not None else randomization_groups(model)
    if not groups:
        raise InputError("the model has no parameterised layers to randomise", field="model")
    wanted = set(report) if report is not None else set(groups)
    wanted.add(groups[-1])
    original = explain(model)
    steps: list[SanityStep] = []
    for i, (group, scrambled) in enumerate(cascading_randomization(model, groups=groups, seed=seed)):
        if group not in wanted:
            continue
        maps = explain(scrambled)
        if len(maps) != len(original):
            raise InputError(f"explain returned {len(maps)} maps, first call {len(original)}", field="explain")
        rhos = np.asarray([rank_correlation(a, b) for a, b in zip(original, maps, strict=True)])
        valid = rhos[~np.isnan(rhos)]
        steps.append(
            SanityStep(
                step=i + 1,
                group=group,
                mean=float(valid.mean()) if valid.size else math.nan,
                sd=float(valid.std(ddof=1)) if valid.size > 1 else math.nan,
                n=int(valid.size),
                n_constant=int(rhos.size - valid.size),
            )
        )
        logger.info("randomised to %s: rho %.3f (n=%d)", group, steps[-1].mean, steps[-1].n)
    return steps


def steps_as_dicts(steps: Sequence[SanityStep]) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN → None)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(s).items()} for s in steps]
