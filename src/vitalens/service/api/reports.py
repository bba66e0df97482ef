"""Report routes: the study PDF, its FHIR DiagnosticReport, and sign-off."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep
from vitalens.service.ops import reports as ops

__all__ = ["router", "SignOff", "ReportPublic"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["reports"])


class SignOff(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "Refer to ophthalmology within 4 weeks."}]})

    note: str | None = Field(default=None, max_length=2000)


class ReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    study_id: str
    analysis_id: str
    status: str
    content_sha256: str | None
    size_bytes: int | None
    signed_by_id: str | None
    signed_at: datetime | None
    notice: str = DECISION_SUPPORT_NOTICE


@router.get(
    "/studies/{study_id}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="The study report (PDF)",
    openapi_extra=permission("report.read"),
)
def report_pdf(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    pdf = ops.study_report_pdf(session=session, blobs=blobs, user=user, study_id=study_id)
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vitalens-{study_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/studies/{study_id}/report.fhir.json",
    summary="The study as a FHIR R4 DiagnosticReport",
    openapi_extra=permission("report.read"),
)
def report_fhir(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> dict[str, Any]:
    return ops.study_report_fhir(session=session, blobs=blobs, user=user, study_id=study_id)


@router.post(
    "/studies/{study_id}/signoff",
    status_code=201,
    response_model=ReportPublic,
    summary="Sign the study off (pins the signed PDF)",
    openapi_extra=permission("report.sign"),
)
def sign_off(study_id: str, body: SignOff, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> ReportPublic:
    return ReportPublic.model_validate(
        ops.sign_off(session=session, blobs=blobs, user=user, study_id=study_id, note=body.note)
    )
