"""``POST /api/v1/predict/ecg``: the old path of the 12-lead ECG analysis, a thin alias of the generated routes.

Why kept: integrators call it with the first version's form (``file``, ``format``, ``fs_hz``). It maps those onto
the ``ecg`` slot and its hints, runs ``ecg.ptbxl`` (classes, tier, attribution) and ``ecg.intervals`` (the
measurements; a failure there is a warning) through the same code as ``/api/v1/predict/{analyzer}``, and answers
the ``ecg.ptbxl`` document with the interval measurements added as ``intervals``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from vitalens.service.api._access import AUTHENTICATED, permission
from vitalens.service.api.predict import _ERRORS, predict_access, read_upload, run_predict

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])


@router.post(
    "/ecg",
    summary="A 12-lead ECG → PTB-XL superclasses, risk tier, intervals, attribution (alias of /ecg.ptbxl)",
    responses=_ERRORS,
    openapi_extra=permission(AUTHENTICATED),
    dependencies=[Depends(predict_access)],
)
def predict_ecg(
    request: Request,
    file: Annotated[UploadFile, File(description="ECG: WFDB as .zip (.hea + .dat), DICOM, aECG/MUSE XML, CSV")],
    format: Annotated[str | None, Form(description="wfdb | dicom | aecg | muse | csv (default: detect)")] = None,
    fs_hz: Annotated[float | None, Form(description="Sampling rate, Hz (CSV without one)", gt=0)] = None,
    explain: Annotated[bool, Form(description="Include per-lead attribution arrays")] = False,
) -> dict[str, Any]:
    from vitalens.errors import VitalensError
    from vitalens.service.ops.predict import RawInput, with_companions

    data = read_upload(file, field="ecg", max_bytes=request.app.state.settings.max_upload_bytes)
    if format:
        _check_format(format)
    hints = {k: str(v) for k, v in (("format", format), ("fs_hz", fs_hz)) if v not in (None, "")}
    raw = {"ecg": RawInput(data, file.filename or "upload", hints)}
    # the first version always computed the attribution summary; the arrays only with ``explain``
    result, body = run_predict(request, "ecg.ptbxl", raw, explain=True, images=False)
    companions: dict[str, Any] = {}
    try:
        companions["ecg.intervals"] = run_predict(request, "ecg.intervals", raw, explain=False)[1]
    except VitalensError as exc:
        companions["ecg.intervals"] = exc
    body = with_companions(body, companions, measurements_key="intervals")
    if explain:
        body["attribution_arrays"] = result.extras.get("attribution", {})
    return body


def _check_format(name: str) -> None:
    """The first version's answer to an unknown ``format``: 422 naming the field ``format`` and the valid ones."""
    from vitalens._naming import unknown_name_error
    from vitalens.slots import get_slot

    choices = get_slot("ecg").hint("format").limits.choices  # type: ignore[union-attr]
    if name not in choices:
        error = unknown_name_error("ECG format", name, choices)
        error.field = "format"  # type: ignore[attr-defined]
        raise error
