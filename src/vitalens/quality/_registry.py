"""The quality-gate hook: gates registered by name, run by an analyzer on its inputs before it analyses.

Why a hook and not code in each analyzer: the same gate (a gradable colour fundus? an OCT sent as a fundus?) guards
several analyzers, and the API, the web form (at upload time) and the PDF all show its verdict. An analyzer names
its gates per slot in its contract (``quality_gates={"fundus_left": ("fundus.gradable",)}``); the base
:class:`~vitalens.analyzers.Analyzer` runs them in order before ``analyze``:

* ``pass`` — nothing to say; the verdict is kept in ``result.quality``;
* ``flag`` — analysed, the reasons are shown beside the findings (``result.quality`` and ``result.warnings``);
* ``refuse`` — not analysed: :class:`~vitalens.errors.QualityRefusal` (an ``InputError``, HTTP 422) with the reason.

A gate is any callable ``gate(value, *, slot, analyzer) -> QualityResult``; ``analyzer`` is the calling analyzer
(its card holds calibrated thresholds) or ``None`` when a gate is run at upload time without one.

Example:
    >>> @register_gate("demo.not_black")
    ... def not_black(value, *, slot, analyzer=None):
    ...     mean = float(value.mean())
    ...     if mean < 5:
    ...         return refused(slot, "demo.not_black", f"image is black (mean {mean:.1f})", mean=mean)
    ...     return passed(slot, "demo.not_black", mean=mean)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from vitalens._registry import ENTRY_POINT_GROUPS, Registry
from vitalens.domain import QualityResult, QualityVerdict

__all__ = [
    "GATES",
    "QualityGate",
    "register_gate",
    "get_gate",
    "list_gates",
    "run_gate",
    "passed",
    "flagged",
    "refused",
]

logger = logging.getLogger(__name__)


class QualityGate(Protocol):
    """``gate(value, *, slot, analyzer) -> QualityResult``."""

    def __call__(self, value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult: ...


#: Every registered gate; discovered from the public modules of ``vitalens.quality`` and the entry-point group.
GATES: Registry[QualityGate] = Registry(
    "quality gate", packages=("vitalens.quality",), group=ENTRY_POINT_GROUPS["quality gate"]
)


def register_gate(name: str) -> Callable[[QualityGate], QualityGate]:
    """Decorator registering a quality gate under a dotted ``name`` (``fundus.gradable``)."""
    return GATES.decorator(name)


def get_gate(name: str) -> QualityGate:
    return GATES.get(name)


def list_gates(pattern: str = "*") -> list[str]:
    return GATES.names(pattern)


def run_gate(name: str, value: Any, *, slot: str, analyzer: Any | None = None) -> QualityResult:
    """Run gate ``name``; a gate that returns something else than a ``QualityResult`` is a programming error."""
    result = get_gate(name)(value, slot=slot, analyzer=analyzer)
    if not isinstance(result, QualityResult):
        raise TypeError(f"quality gate {name} returned {type(result).__name__}, not QualityResult")
    return result


def _result(
    verdict: QualityVerdict, slot: str, gate: str, reasons: list[str], metrics: dict[str, Any]
) -> QualityResult:
    return QualityResult(slot=slot, gate=gate, verdict=verdict, reasons=reasons, metrics=metrics)


def passed(slot: str, gate: str, **metrics: Any) -> QualityResult:
    """A ``pass`` verdict with the measured ``metrics``."""
    return _result(QualityVerdict.PASS, slot, gate, [], metrics)


def flagged(slot: str, gate: str, *reasons: str, **metrics: Any) -> QualityResult:
    """A ``flag`` verdict: analysed, but shown with these reasons."""
    return _result(QualityVerdict.FLAG, slot, gate, list(reasons), metrics)


def refused(slot: str, gate: str, *reasons: str, **metrics: Any) -> QualityResult:
    """A ``refuse`` verdict: the analyzer will not run on this input."""
    return _result(QualityVerdict.REFUSE, slot, gate, list(reasons), metrics)
