"""Input quality and out-of-distribution gates, run before an analyzer (see :mod:`vitalens.quality._registry`).

Gate modules live beside this file (each registers its gates with ``@register_gate``) and are found without a
module list; plug-ins add gates through the ``vitalens.quality_gates`` entry-point group.
"""

from __future__ import annotations

from vitalens.domain import QualityResult, QualityVerdict
from vitalens.quality._registry import (
    GATES,
    QualityGate,
    flagged,
    get_gate,
    list_gates,
    passed,
    refused,
    register_gate,
    run_gate,
)

__all__ = [
    "GATES",
    "QualityGate",
    "QualityResult",
    "QualityVerdict",
    "flagged",
    "get_gate",
    "list_gates",
    "passed",
    "refused",
    "register_gate",
    "run_gate",
]
