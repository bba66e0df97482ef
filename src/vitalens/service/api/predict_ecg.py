"""``POST /api/v1/predict/ecg``: the stateless 12-lead ECG analysis (nothing stored).

Why a thin handler: reading the upload (``io.ecg``), the two analyzers (``ecg.ptbxl``, ``ecg.intervals``) and the
JSON shape (``_cli.ecg.ecg_json``) are shared with the CLI; this module only parses the form and maps errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from vitalens.service.api._access import permission
from vitalens.service.api.predict import read_upload

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])

_ECG_EXAMPLE: dict[str, Any] = {
    "classes": ["NORM", "MI", "STTC", "CD", "HYP"],
    "probabilities": {"NORM": 0.08, "MI": 0.81, "STTC": 0.34, "CD": 0.12, "HYP": 0.05},
    "positive": ["MI", "STTC"],
    "tier": "High",
    "intervals": [{"name": "QTc", "value": 452.0, "unit": "ms"}],
    "attribution": {"MI": {"method": "saliency", "top_leads": ["III", "aVF", "II"], "peak_time_s": 3.4}},
    "decision_support_notice": "Decision support only, not a diagnosis: ...",
}


@router.post(
    "/ecg",
    summary="A 12-lead ECG → PTB-XL superclasses (calibrated), risk tier, intervals, attribution summary",
    responses={
        200: {"content": {"application/json": {"example": _ECG_EXAMPLE}}},
        413: {"description": "upload too large"},
        415: {"description": "not an ECG format"},
        422: {"description": "invalid ECG (missing leads, unknown rate, implausible amplitude, bad format)"},
    },
    openapi_extra=permission("public"),
)
def predict_ecg(
    request: Request,
    file: Annotated[UploadFile, File(description="ECG: WFDB as .zip (.hea + .dat), DICOM, aECG/MUSE XML, CSV")],
    format: Annotated[str | None, Form(description="wfdb | dicom | aecg | muse | csv (default: detect)")] = None,
    fs_hz: Annotated[float | None, Form(description="Sampling rate, Hz (CSV without one)", gt=0)] = None,
    explain: Annotated[bool, Form(description="Include per-lead attribution arrays")] = False,
) -> dict[str, Any]:
    from vitalens.io.ecg import read_ecg_bytes
    from vitalens.service.ops.predict import ecg_json, run_ecg

    settings = request.app.state.settings
    data = read_upload(file, field="ecg", max_bytes=settings.max_upload_bytes)
    record = read_ecg_bytes(
        data,
        filename=file.filename or "upload",
        format=format or None,
        fs_hz=fs_hz,
        max_bytes=settings.max_upload_bytes,
    )
    result, intervals = run_ecg(record, registry_get=request.app.state.registry.get)
    body = ecg_json(result, intervals)
    if explain:
        body["attribution_arrays"] = result.extras.get("attribution", {})
    return body
