"""Check one upload against the quality gates of every analyzer that reads its slot — before a study is stored.

Why an operation of its own: the web form asks at upload time, before the clinician submits the study, whether a
photograph will be analysed, flagged or refused; the answer must come from the same gates, with the same limits,
that run before the analyzers later (``Analyzer.quality``). Nothing is stored; the upload is validated (size,
type, content) exactly as a study upload is.
"""

from __future__ import annotations

import logging
from typing import Any

from vitalens.config import Settings
from vitalens.domain import QualityResult, QualityVerdict
from vitalens.service.ops.inputs import Upload, validate_upload

__all__ = ["gates_for_slot", "check_upload_quality"]

logger = logging.getLogger(__name__)


def gates_for_slot(slot: str) -> list[tuple[str, str]]:
    """``(gate, analyzer)`` pairs the contracts name for ``slot``, each gate once (its first analyzer)."""
    from vitalens.analyzers import get_contract, list_analyzers

    seen: dict[str, str] = {}
    for name in list_analyzers():
        for gate in get_contract(name).quality_gates.get(slot, ()):
            seen.setdefault(gate, name)
    return list(seen.items())


def check_upload_quality(*, upload: Upload, settings: Settings, registry: Any) -> dict[str, Any]:
    """Validate ``upload`` and run every gate that guards its slot.

    Returns:
        ``{"slot", "verdict" (the worst: refuse > flag > pass, or "unchecked" when no gate guards the slot),
        "results": [QualityResult…], "analyzers": {gate: analyzer}}``.

    Raises:
        TooLarge / UnsupportedMediaError / InputError: the upload itself is invalid (as for a study upload).
    """
    from vitalens.quality import run_gate

    value = validate_upload(upload, settings=settings, registry=registry).value  # the slot decodes it
    results: list[QualityResult] = []
    owners: dict[str, str] = {}
    for gate, analyzer_name in gates_for_slot(upload.slot):
        analyzer = registry.get(analyzer_name) if registry is not None else None
        results.append(run_gate(gate, value, slot=upload.slot, analyzer=analyzer))
        owners[gate] = analyzer_name
    verdicts = {r.verdict for r in results}
    worst = next(
        (v.value for v in (QualityVerdict.REFUSE, QualityVerdict.FLAG, QualityVerdict.PASS) if v in verdicts),
        "unchecked",
    )
    logger.info("upload quality check %s: %s", upload.slot, worst)
    return {"slot": upload.slot, "verdict": worst, "results": results, "analyzers": owners}
