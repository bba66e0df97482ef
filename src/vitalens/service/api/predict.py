"""``POST /api/v1/predict/fundus``: the stateless eyes → heart analysis (nothing stored).

Why stateless: integrators and the demo call it without accounts; the clinical flow stores studies instead.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, cast

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from vitalens.errors import InputError
from vitalens.service.api._access import permission

__all__ = ["router", "read_upload"]

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])

_FUNDUS_EXAMPLE: dict[str, Any] = {
    "probabilities": {"N": 0.12, "D": 0.71, "G": 0.05, "C": 0.04, "A": 0.09, "H": 0.38, "M": 0.02, "O": 0.2},
    "positive": ["D", "H"],
    "proxies": {"hypertension": 0.4, "diabetes": 0.644, "atherosclerotic": 0.272, "overall": 0.453},
    "band": "Medium",
    "explanation": "Medium cardiovascular risk band ...",
    "model": {
        "name": "fundus-odir",
        "analyzer": "fundus.odir",
        "version": "0.1.0",
        "demonstration": True,
        "trained_on": "ODIR-5K (real, 304 patients)",
    },
    "trained_on": "ODIR-5K (real, 304 patients)",
    "demonstration": True,
    "decision_support_notice": "Decision support only, not a diagnosis: ...",
}


def read_upload(upload: UploadFile, *, field: str, max_bytes: int) -> bytes:
    """Read an upload with a hard size cap (reads at most ``max_bytes + 1`` bytes)."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(
            status_code=413, detail=f"{field}: upload is larger than the {max_bytes / 1e6:.1f} MB limit"
        )
    return data


def _parse_age(age: str) -> float:
    try:
        value = float(age)
    except ValueError:
        raise InputError(f"age must be a number of years in 0–120, got '{age[:40]}'", field="age") from None
    if math.isnan(value) or not 0 <= value <= 120:
        raise InputError(f"age must be a number of years in 0–120, got {age[:40]}", field="age")
    return value


@router.post(
    "/fundus",
    summary="Both fundus photographs + age → 8 ODIR conditions → cardiovascular risk band",
    responses={
        200: {"content": {"application/json": {"example": _FUNDUS_EXAMPLE}}},
        413: {"description": "upload too large"},
        415: {"description": "not an image"},
        422: {"description": "invalid input (corrupt, grayscale, 16-bit, too small, bad age, missing eye)"},
    },
    openapi_extra=permission("public"),
)
def predict_fundus(
    request: Request,
    left: Annotated[UploadFile, File(description="Left-eye fundus photograph (JPEG/PNG)")],
    right: Annotated[UploadFile, File(description="Right-eye fundus photograph (JPEG/PNG)")],
    age: Annotated[str, Form(description="Age in years, 0–120")],
    explain: Annotated[bool, Form(description="Include base64 Grad-CAM overlays of positive findings")] = False,
) -> dict[str, Any]:
    import base64

    from vitalens.domain import StudyInputs
    from vitalens.io.images import decode_image
    from vitalens.service.ops.predict import fundus_json

    settings = request.app.state.settings
    age_years = _parse_age(age)
    images = {}
    for field, upload in (("fundus_left", left), ("fundus_right", right)):
        data = read_upload(upload, field=field, max_bytes=settings.max_upload_bytes)
        images[field] = decode_image(data, field=field, max_pixels=settings.max_image_pixels)
    inputs = StudyInputs(fundus_left=images["fundus_left"], fundus_right=images["fundus_right"], age_years=age_years)
    result = request.app.state.registry.get("fundus.odir")(inputs, explain=explain)
    body = fundus_json(result)
    if explain:
        entries = cast(list[dict[str, Any]], body["explanations"])
        for entry, e in zip(entries, result.explanations, strict=True):
            entry["overlay_png_base64"] = base64.b64encode(e.overlay_png or b"").decode()
    return body
