"""The stateless predictions' JSON and the ECG pair of analyses, shared by the CLI and the predict API.

Why in ``service/ops``: ``vitalens analyze ... --json`` and ``POST /api/v1/predict/...`` must return the same
document; both entry points call these functions (no FastAPI or Typer here).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["fundus_json", "ecg_json", "run_ecg", "attribution_summary"]

logger = logging.getLogger(__name__)


def fundus_json(result: object) -> dict[str, object]:
    """The documented JSON of a fundus analysis (CLI ``--json`` and ``POST /api/v1/predict/fundus``)."""
    from vitalens.domain import AnalysisResult

    if not isinstance(result, AnalysisResult):
        raise TypeError(f"fundus_json needs an AnalysisResult, got {type(result).__name__}")
    return {
        "probabilities": result.probabilities,
        "positive": result.positive,
        "thresholds": {f.code: f.threshold for f in result.findings},
        "proxies": result.proxies,
        "band": result.band.value if result.band else None,
        "explanation": result.explanation,
        "model": result.model.model_dump(mode="json"),
        "trained_on": result.trained_on,
        "demonstration": result.demonstration,
        "warnings": result.warnings,
        "decision_support_notice": result.decision_support_notice,
        "explanations": [
            {"target": e.target, "input": e.input_name, "method": e.method, "note": e.note} for e in result.explanations
        ],
    }


def attribution_summary(result: Any, top_k: int = 3) -> dict[str, Any]:
    """Per explained class: the leads with the most attribution and the time (s) of the pooled peak."""
    out: dict[str, Any] = {}
    leads = result.extras.get("leads", [])
    for code, a in result.extras.get("attribution", {}).items():
        import numpy as np

        per_lead = np.asarray(a["per_lead"], dtype=float)
        pooled = np.asarray(a["pooled"], dtype=float)
        order = np.argsort(-per_lead.sum(axis=1))[:top_k]
        out[code] = {
            "method": a["method"],
            "top_leads": [leads[i] for i in order] if leads else [int(i) for i in order],
            "peak_time_s": round(float(pooled.argmax()) * float(a["bin_s"]), 2),
        }
    return out


def ecg_json(result: Any, intervals: Any | None = None) -> dict[str, Any]:
    """The documented JSON of an ECG analysis (CLI ``--json`` and ``POST /api/v1/predict/ecg``)."""
    body: dict[str, Any] = {
        "classes": [f.code for f in result.findings],
        "probabilities": result.probabilities,
        "calibrated": all(f.calibrated for f in result.findings),
        "thresholds": {f.code: f.threshold for f in result.findings},
        "positive": result.positive,
        "tiers": {f.code: f.tier.value for f in result.findings if f.tier is not None},
        "tier": result.tier.value if result.tier else None,
        "tier_edges": result.extras.get("tier_edges"),
        "intervals": [m.model_dump(mode="json") for m in intervals.measurements] if intervals is not None else [],
        "attribution": attribution_summary(result),
        "explanation_method": result.extras.get("explanation_method"),
        "explanation": result.explanation,
        "model": result.model.model_dump(mode="json"),
        "trained_on": result.trained_on,
        "demonstration": result.demonstration,
        "warnings": list(result.warnings) + (list(intervals.warnings) if intervals is not None else []),
        "decision_support_notice": result.decision_support_notice,
    }
    return body


def run_ecg(record: Any, *, registry_get: Any, explain: bool = True) -> tuple[Any, Any | None]:
    """Run ``ecg.ptbxl`` and ``ecg.intervals`` on one record; an interval failure becomes a warning."""
    from vitalens.domain import StudyInputs
    from vitalens.errors import VitalensError

    inputs = StudyInputs(ecg=record)
    result = registry_get("ecg.ptbxl")(inputs, explain=explain)
    intervals = None
    try:
        intervals = registry_get("ecg.intervals")(inputs)
    except VitalensError as exc:
        logger.warning("ECG intervals not measured: %s", exc)
        result.warnings.append(f"intervals not measured: {exc}")
    return result, intervals
