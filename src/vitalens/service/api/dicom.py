"""DICOM routes: results out (Encapsulated PDF of the signed report, Structured Report of the findings)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response

from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep
from vitalens.service.ops import dicom_out as ops

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["dicom"])

_DICOM: dict[int | str, dict[str, Any]] = {200: {"content": {"application/dicom": {}}}}


def _dicom(data: bytes, name: str) -> Response:
    return Response(
        content=data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


@router.get(
    "/studies/{study_id}/report.dcm",
    response_class=Response,
    responses={**_DICOM, 409: {"description": "not signed off"}},
    summary="The signed report as DICOM Encapsulated PDF",
    openapi_extra=permission("report.read"),
)
def report_epdf(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    return _dicom(ops.study_dicom_pdf(session=session, blobs=blobs, user=user, study_id=study_id), "report.dcm")


@router.get(
    "/studies/{study_id}/report.sr.dcm",
    response_class=Response,
    responses=_DICOM,
    summary="The findings as a DICOM Structured Report (TID 1500; algorithm, version, findings, measurements)",
    openapi_extra=permission("report.read"),
)
def report_sr(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    return _dicom(ops.study_dicom_sr(session=session, blobs=blobs, user=user, study_id=study_id), "report.sr.dcm")
