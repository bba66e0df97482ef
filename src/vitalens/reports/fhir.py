"""The study report as a FHIR R4 ``DiagnosticReport`` with contained ``Observation`` resources (JSON).

Why FHIR: integrators pull results into an EHR; a DiagnosticReport with one Observation per finding and
measurement is the resource they expect. Built as plain dicts (no FHIR library needed); the decision-support
notice travels in ``conclusion`` and the demonstration flag in each Observation's note.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from vitalens.reports._model import StudyReport

__all__ = ["build_diagnostic_report"]

logger = logging.getLogger(__name__)

_VITALENS_SYSTEM = "https://vitalens.invalid/fhir/finding"


def build_diagnostic_report(report: StudyReport, *, pdf: bytes | None = None) -> dict[str, Any]:
    """Build a FHIR R4 DiagnosticReport for ``report``.

    Args:
        report: the study report values.
        pdf: the rendered PDF to attach as ``presentedForm`` (optional).

    Returns:
        A JSON-ready dict (``resourceType == "DiagnosticReport"``) whose contained Observations carry each
        finding's probability (``valueQuantity`` in [0, 1]) and each measurement with its unit.
    """
    contained: list[dict[str, Any]] = []
    for a_index, analysis in enumerate(report.analyses):
        model_note = f"{analysis.model_name or analysis.analyzer} {analysis.model_version or ''}".strip() + (
            " (demonstration model, not for clinical use)" if analysis.demonstration else ""
        )
        for f in analysis.findings:
            positive = f.corrected_positive if f.review == "corrected" else f.positive
            contained.append(
                {
                    "resourceType": "Observation",
                    "id": f"obs-{a_index}-{f.code}",
                    "status": "final" if f.review else "preliminary",
                    "code": {
                        "coding": [
                            {"system": f"{_VITALENS_SYSTEM}/{analysis.analyzer}", "code": f.code, "display": f.name}
                        ],
                        "text": f.name,
                    },
                    "valueQuantity": {"value": round(f.probability, 6), "unit": "probability"},
                    "interpretation": [{"text": "positive" if positive else "negative"}],
                    "note": [{"text": model_note}],
                }
            )
        for m_index, m in enumerate(analysis.measurements):
            if m.value is None:
                continue
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"obs-{a_index}-m{m_index}",
                "status": "preliminary",
                "code": {"text": m.name},
                "valueQuantity": {"value": m.value, "unit": m.unit},
                "note": [{"text": model_note}],
            }
            if m.reference_low is not None or m.reference_high is not None:
                rng: dict[str, Any] = {}
                if m.reference_low is not None:
                    rng["low"] = {"value": m.reference_low, "unit": m.unit}
                if m.reference_high is not None:
                    rng["high"] = {"value": m.reference_high, "unit": m.unit}
                obs["referenceRange"] = [rng]
            contained.append(obs)
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report.study_id,
        "status": "final" if report.signoff else "preliminary",
        "code": {"text": "vitalens multimodal screening"},
        "subject": {"display": report.pseudonym},
        "issued": report.generated_at.isoformat(),
        "contained": contained,
        "result": [{"reference": f"#{obs['id']}"} for obs in contained],
        "conclusion": report.notice,
    }
    if report.signoff:
        resource["resultsInterpreter"] = [{"display": report.signoff.clinician}]
    if pdf is not None:
        resource["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "data": base64.b64encode(pdf).decode("ascii"),
                "title": f"vitalens report {report.study_id}",
            }
        ]
    return resource
