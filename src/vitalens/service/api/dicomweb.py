"""DICOMweb routes: STOW-RS `POST /dicomweb/studies[/{uid}]`, QIDO-style `GET /dicomweb/studies[/{uid}/instances]`.

A PACS or Orthanc's DICOMweb client pushes ``multipart/related; type="application/dicom"`` with a bearer token of a
vitalens user of the receiving site (Orthanc: the DicomWeb plug-in's ``HttpHeaders``). Responses are DICOM JSON.
"""

from __future__ import annotations

import logging
import re
from email import message_from_bytes
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vitalens.errors import InputError
from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep, SettingsDep
from vitalens.service.ops import MAX_OFFSET, require
from vitalens.service.ops import dicomweb as ops

__all__ = ["router", "split_multipart_related"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

DICOM_JSON = "application/dicom+json"
#: A STOW request may carry a whole study; each instance still meets the per-upload limit.
STOW_FACTOR = 20


def split_multipart_related(content_type: str, body: bytes) -> list[bytes]:
    """The DICOM parts of a ``multipart/related; type="application/dicom"`` body (parsed by the stdlib).

    Raises:
        HTTPException: 415 for another content type or part type, 400 for a body that is not multipart.
    """
    lowered = content_type.lower()
    if not lowered.startswith("multipart/related"):
        raise HTTPException(
            415, f'Content-Type must be multipart/related; type="application/dicom", got {content_type!r}'
        )
    if "boundary=" not in lowered:
        raise HTTPException(400, "multipart/related body without a boundary parameter")
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=HTTP)
    if not message.is_multipart():
        raise HTTPException(400, "the body is not a multipart/related message")
    parts = []
    for part in message.iter_parts():
        part_type = part.get_content_type()
        if part_type != "application/dicom":
            raise HTTPException(415, f"part of type {part_type!r}; only application/dicom instances are accepted")
        payload = part.get_payload(decode=True)
        parts.append(bytes(payload) if payload else b"")
    if not parts:
        raise HTTPException(400, "the multipart/related body holds no part")
    return parts


#: A DICOM UID: digits in dot-separated components, at most 64 characters (PS3.5 9.1).
_UID = re.compile(r"(?=.{1,64}$)[0-9]+(?:\.[0-9]+)*")


async def _stow(request: Request, session: Any, user: Any, blobs: Any, settings: Any, study_uid: str | None) -> Any:
    require(user, "study.create")  # before the body is read: a role that may not store learns nothing about it
    if study_uid is not None and not _UID.fullmatch(study_uid):
        raise InputError(
            f"{study_uid[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)", field="study_uid"
        )
    limit = settings.max_upload_bytes * STOW_FACTOR
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request is {int(declared) / 1e6:.1f} MB, above the {limit / 1e6:.0f} MB limit")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"request is {len(body) / 1e6:.1f} MB, above the {limit / 1e6:.0f} MB limit")
    parts = split_multipart_related(request.headers.get("content-type", ""), body)
    too_big = [i + 1 for i, p in enumerate(parts) if len(p) > settings.max_upload_bytes]
    if too_big:
        raise HTTPException(413, f"part(s) {too_big} above the {settings.max_upload_bytes / 1e6:.1f} MB upload limit")
    result = await run_in_threadpool(
        ops.store_instances,
        session=session,
        blobs=blobs,
        settings=settings,
        user=user,
        parts=parts,
        study_uid=study_uid,
    )
    base = str(request.base_url).rstrip("/") + "/dicomweb"
    return JSONResponse(status_code=result.status_code, content=result.dicom_json(base), media_type=DICOM_JSON)


@router.post(
    "/studies",
    summary="STOW-RS: store the instances of one or more studies",
    response_class=JSONResponse,
    openapi_extra=permission("study.create"),
)
async def stow(request: Request, session: SessionDep, user: CurrentUser, blobs: BlobsDep, settings: SettingsDep) -> Any:
    return await _stow(request, session, user, blobs, settings, None)


@router.post(
    "/studies/{study_uid}",
    summary="STOW-RS: store instances of the given study",
    response_class=JSONResponse,
    openapi_extra=permission("study.create"),
)
async def stow_study(
    study_uid: str, request: Request, session: SessionDep, user: CurrentUser, blobs: BlobsDep, settings: SettingsDep
) -> Any:
    return await _stow(request, session, user, blobs, settings, study_uid)


@router.get(
    "/studies",
    summary="QIDO-RS style: the studies received over DICOMweb",
    response_class=JSONResponse,
    openapi_extra=permission("study.read"),
)
def qido_studies(
    session: SessionDep,
    user: CurrentUser,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> JSONResponse:
    body = ops.list_received_studies(session=session, user=user, limit=limit, offset=offset)
    return JSONResponse(content=body, media_type=DICOM_JSON)


@router.get(
    "/studies/{study_uid}/instances",
    summary="QIDO-RS style: the instances received for a study",
    openapi_extra=permission("study.read"),
)
def qido_instances(study_uid: str, session: SessionDep, user: CurrentUser) -> JSONResponse:
    body = ops.list_received_instances(session=session, user=user, study_uid=study_uid)
    return JSONResponse(content=body, media_type=DICOM_JSON)
