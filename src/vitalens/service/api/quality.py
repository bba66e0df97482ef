"""``POST /api/v1/quality/{slot}``: would this file be analysed, flagged or refused? (nothing stored)

The web form calls it when a file is chosen, so the clinician sees a refusal (a chest X-ray in a fundus slot, a
black or blurred photograph) with its reason before submitting the study; the same gates run again before each
analyzer. Thin over :mod:`vitalens.service.ops.quality`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile

from vitalens.service.api._access import permission
from vitalens.service.api.predict import read_upload
from vitalens.service.deps import CurrentUser
from vitalens.service.ops.inputs import Upload

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])


@router.post(
    "/{slot}",
    summary="Run the quality gates that guard an input slot on one file (nothing is stored)",
    responses={
        200: {"description": "verdict (pass / flag / refuse / unchecked) and each gate's result with its reasons"},
        413: {"description": "upload too large"},
        415: {"description": "not a file type the slot accepts"},
        422: {"description": "unknown slot, or the file cannot be decoded"},
    },
    openapi_extra=permission("authenticated"),
)
def check_quality(
    slot: str,
    request: Request,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="The file as it would be uploaded to the slot")],
) -> dict[str, Any]:
    from vitalens.service.ops.quality import check_upload_quality

    settings = request.app.state.settings
    data = read_upload(file, field=slot, max_bytes=settings.max_upload_bytes)
    out = check_upload_quality(
        upload=Upload(slot=slot, data=data, filename=file.filename or "", content_type=file.content_type),
        settings=settings,
        registry=getattr(request.app.state, "registry", None),
    )
    out["results"] = [r.model_dump(mode="json") for r in out["results"]]
    return out
