"""The study report as a FHIR R4 ``DiagnosticReport`` with contained ``Observation`` and ``Device`` resources.

Why built with ``fhir.resources``: an EHR rejects a resource that is almost right. Every resource here is built
through the library's validated models (its R4B package: FHIR 4.3, wire-compatible with R4 for DiagnosticReport,
Observation and Device) and serialised from them, so a malformed one cannot leave this module.

What is coded, and how — driven by what analyzers attach to their outputs, never by analyzer names here:

* measurements carry their LOINC code (``Measurement.code``) and UCUM unit (``Measurement.unit_ucum``); a
  measurement without a code keeps its name as text; the value is a ``Quantity`` with ``system`` UCUM;
* findings carry SNOMED CT codes where one exists (``Finding.codes``) beside the analyzer's own label code; the value
  is the calibrated probability (UCUM ``1``), the interpretation POS/NEG as the clinician left it (v3
  ObservationInterpretation), and the model's threshold in the note;
* each analyzer's model is a contained ``Device`` (name, version, "demonstration" where so) referenced by its
  Observations;
* statuses follow the report: ``preliminary`` until signed, ``final`` when signed, ``amended`` when a signed report
  replaces another (:attr:`~vitalens.reports.StudyReport.status`), for the DiagnosticReport and its Observations.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from vitalens.reports._model import ReportAnalysis, ReportFinding, StudyReport
from vitalens.terminology import UCUM, local_system

__all__ = ["build_diagnostic_report", "validate_fhir"]

logger = logging.getLogger(__name__)

_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_FLAG_TO_V3 = {"high": ("H", "High"), "low": ("L", "Low"), "normal": ("N", "Normal")}
_DEVICE_NAME_TYPE = "model-name"


def _coding(c: Any) -> dict[str, Any]:
    out = {"system": c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


def _title(analysis: ReportAnalysis) -> str:
    """The analyzer's human title (its contract's), e.g. "Eyes → heart"."""
    if analysis.title:
        return analysis.title
    from vitalens.reports.sections import section_heading

    return section_heading(analysis.analyzer).title


def _device(index: int, analysis: ReportAnalysis) -> dict[str, Any]:
    names = [{"name": "vitalens", "type": "manufacturer-name"}]
    names.append({"name": analysis.model_name or analysis.analyzer, "type": _DEVICE_NAME_TYPE})
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": f"device-{index}",
        "manufacturer": "vitalens",
        "deviceName": names,
        "type": {"text": f"vitalens analyzer {_title(analysis)} ({analysis.analyzer}; decision-support software)"},
        "note": [
            {
                "text": f"Trained on {analysis.trained_on or 'unknown data'}"
                + ("; DEMONSTRATION MODEL, not for clinical use." if analysis.demonstration else ".")
            }
        ],
    }
    if analysis.model_version:
        device["version"] = [{"value": analysis.model_version}]
    return device


def _finding_observation(
    obs_id: str, analysis: ReportAnalysis, finding: ReportFinding, status: str, device: str, report: StudyReport
) -> dict[str, Any]:
    from vitalens.reports.sections import finding_value

    codings = [_coding(c) for c in finding.codes]
    codings.append({"system": local_system(analysis.analyzer), "code": finding.code, "display": finding.name})
    positive = finding.final_positive
    code, display = ("POS", "Positive") if positive else ("NEG", "Negative")
    notes = []
    if finding.threshold is not None:
        notes.append(f"model threshold {finding.threshold:.3f}")
    if finding.review:
        notes.append(f"{finding.review} by the clinician" + (f": {finding.review_note}" if finding.review_note else ""))
    if finding.input_name:
        notes.append(f"input {finding.input_name}")
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": [{"text": _title(analysis)}],
        "code": {"coding": codings, "text": finding.name},
        "valueQuantity": {
            "value": round(finding.probability, 6),
            "unit": finding_value(analysis.analyzer, finding.code).lower(),  # "anomaly score" is not a probability
            "system": UCUM,
            "code": "1",
        },
        "interpretation": [{"coding": [{"system": _INTERPRETATION, "code": code, "display": display}]}],
        "device": {"reference": f"#{device}"},
        "subject": {"display": report.pseudonym},
    }
    if notes:
        obs["note"] = [{"text": "; ".join(notes)}]
    return obs


def _measurement_observation(
    obs_id: str, m: Any, status: str, device: str, report: StudyReport, title: str
) -> dict[str, Any] | None:
    if m.value is None:
        return None
    quantity: dict[str, Any] = {"value": m.value, "unit": m.unit}
    if m.unit_ucum:
        quantity |= {"system": UCUM, "code": m.unit_ucum}
    code: dict[str, Any] = {"text": m.name}
    if m.code is not None:
        code["coding"] = [_coding(m.code)]
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": [{"text": title}],
        "code": code,
        "valueQuantity": quantity,
        "device": {"reference": f"#{device}"},
        "subject": {"display": report.pseudonym},
    }
    if m.method:
        obs["method"] = {"text": m.method}
    if m.flag in _FLAG_TO_V3:
        v3, display = _FLAG_TO_V3[m.flag]
        obs["interpretation"] = [{"coding": [{"system": _INTERPRETATION, "code": v3, "display": display}]}]
    if m.reference_low is not None or m.reference_high is not None:
        rng: dict[str, Any] = {}
        for key, value in (("low", m.reference_low), ("high", m.reference_high)):
            if value is not None:
                rng[key] = {"value": value, "unit": m.unit} | (
                    {"system": UCUM, "code": m.unit_ucum} if m.unit_ucum else {}
                )
        obs["referenceRange"] = [rng]
    return obs


def build_diagnostic_report(report: StudyReport, *, pdf: bytes | None = None) -> dict[str, Any]:
    """Build and validate a FHIR R4 DiagnosticReport for ``report``.

    Args:
        report: the study report values.
        pdf: the rendered PDF to attach as ``presentedForm`` (optional).

    Returns:
        The JSON-ready resource (validated by ``fhir.resources``), with contained Devices and Observations.
    """
    status = report.status
    contained: list[dict[str, Any]] = []
    results: list[dict[str, str]] = []
    for a_index, analysis in enumerate(report.analyses):
        device = _device(a_index, analysis)
        contained.append(device)
        seen: set[str] = set()
        for finding in analysis.findings:
            obs_id = f"obs-{a_index}-{_id_part(finding.code)}"
            if finding.input_name or obs_id in seen:  # per-input findings share codes (one grade per eye)
                obs_id = f"obs-{a_index}-{_id_part(finding.code)}-{_id_part(finding.input_name or str(len(seen)))}"
            seen.add(obs_id)
            obs = _finding_observation(obs_id, analysis, finding, status, device["id"], report)
            contained.append(obs)
            results.append({"reference": f"#{obs['id']}"})
        for m_index, m in enumerate(analysis.measurements):
            measured = _measurement_observation(
                f"obs-{a_index}-m{m_index}", m, status, device["id"], report, _title(analysis)
            )
            if measured is not None:
                contained.append(measured)
                results.append({"reference": f"#{measured['id']}"})
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report.study_id,
        "status": status,
        "code": {"text": "vitalens multimodal screening (decision support)"},
        "subject": {"display": report.pseudonym},
        "issued": report.generated_at.isoformat(),
        "contained": contained,
        "result": results,
        "conclusion": report.notice,
    }
    if report.study_date is not None:
        resource["effectiveDateTime"] = report.study_date.isoformat()
    if report.signoff:
        resource["resultsInterpreter"] = [{"display": report.signoff.clinician}]
        if report.signoff.note:
            resource["conclusion"] = f"{report.signoff.note}\n\n{report.notice}"
    if pdf is not None:
        resource["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "data": base64.b64encode(pdf).decode("ascii"),
                "title": f"vitalens report {report.study_id}",
            }
        ]
    return validate_fhir(resource)


def _id_part(text: str) -> str:
    """``text`` as a FHIR id fragment (letters, digits, ``-`` and ``.``)."""
    import re

    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:24] or "x"


#: Required value sets the model classes do not enforce (``fhir.resources`` checks structure and types, not codes).
_STATUS_VALUES: dict[str, frozenset[str]] = {
    "DiagnosticReport": frozenset(
        "registered partial preliminary final amended corrected appended cancelled entered-in-error unknown".split()
    ),
    "Observation": frozenset(
        "registered preliminary final amended corrected cancelled entered-in-error unknown".split()
    ),
}


def validate_fhir(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate ``resource`` (and its contained resources) and return its canonical JSON form.

    Structure, cardinality and types are checked by the ``fhir.resources`` models; the required ``status`` value
    sets of DiagnosticReport and Observation, which those models leave open, are checked here.

    Raises:
        ValueError: the resource breaks the FHIR model (the message names the element).
    """
    from fhir.resources.R4B import get_fhir_model_class

    for res in [resource, *resource.get("contained", [])]:
        allowed = _STATUS_VALUES.get(str(res.get("resourceType")))
        if allowed is not None and res.get("status") not in allowed:
            raise ValueError(f"{res['resourceType']}.status {res.get('status')!r} is not one of {sorted(allowed)}")
    cls = get_fhir_model_class(str(resource["resourceType"]))
    model = cls.model_validate(resource)
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)
