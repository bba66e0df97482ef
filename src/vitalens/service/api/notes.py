"""Note routes: replace a study's note, and dictate a draft of it (a recording in, a transcript out).

``POST /api/v1/studies/{id}/dictation`` takes one multipart part ``audio`` (WAV, WebM/Opus, Ogg, MP4/M4A, MP3 or FLAC,
at most ``VITALENS_MAX_AUDIO_MB`` and ``VITALENS_MAX_AUDIO_SECONDS``) and answers the transcript for the clinician to
edit; nothing of the recording is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.service.api._access import permission
from vitalens.service.deps import CurrentUser, SessionDep, SettingsDep
from vitalens.service.ops import TooLarge
from vitalens.service.ops import notes as ops
from vitalens.service.ops.scope import visible

__all__ = ["router", "NotesUpdate", "NotesPublic", "TranscriptPublic"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/studies", tags=["notes"])

_MULTIPART_SLACK = 64 * 1024


class NotesUpdate(BaseModel):
    notes: str = Field(max_length=200_000, description="The whole note (at most 20,000 characters once trimmed).")


class NotesPublic(BaseModel):
    study_id: str
    notes: str
    max_chars: int


class TranscriptPublic(BaseModel):
    text: str
    duration_s: float
    language: str
    model: str
    draft: bool = True
    decision_support_notice: str = DECISION_SUPPORT_NOTICE


@router.put("/{study_id}/notes", response_model=NotesPublic, openapi_extra=permission("notes.update"))
def put_notes(study_id: str, body: NotesUpdate, session: SessionDep, user: CurrentUser) -> Any:
    """Replace the clinician's note of the study (re-analyse to update what ``notes.symptoms`` extracted)."""
    study = ops.update_notes(session=session, user=user, study_id=study_id, notes=body.notes)
    return NotesPublic(study_id=study.id, notes=study.notes, max_chars=ops.note_limit())


_DICTATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"audio": {"type": "string", "format": "binary"}},
                    "required": ["audio"],
                }
            }
        },
    }
}


@router.post(
    "/{study_id}/dictation",
    response_model=TranscriptPublic,
    openapi_extra=permission("notes.update", **_DICTATION_BODY),
)
async def dictation(
    study_id: str, request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Any:
    """Transcribe a recording (multipart part ``audio``) into a draft of the note."""
    from starlette.concurrency import run_in_threadpool

    from vitalens.notes.transcribe import TranscriptionUnavailable
    from vitalens.service.ops import require
    from vitalens.store.models import Study

    require(user, "notes.update")
    await run_in_threadpool(visible, session, user, Study, study_id)  # scoped before the body is read
    max_bytes = int(settings.max_audio_mb * 1024 * 1024)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type and request.headers.get("content-length", "0") in ("", "0"):
        raise InputError("required: send the recording as multipart/form-data in a part named 'audio'", field="audio")
    if content_type != "multipart/form-data":
        raise UnsupportedMediaError(
            f"dictation takes multipart/form-data with the recording in a part named 'audio'; got "
            f"{content_type or 'no body'}",
            field="body",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + _MULTIPART_SLACK:
        raise TooLarge(f"audio: the request is {int(length) / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB")
    try:
        form = await request.form(max_files=1, max_fields=2)
    except HTTPException as exc:
        raise InputError(f"malformed form: {exc.detail}", field="body") from None
    part = form.get("audio")
    if not isinstance(part, UploadFile):
        raise InputError("field required: the recording goes in a file part named 'audio'", field="audio")
    data = await part.read(max_bytes + 1)
    try:
        transcript = await run_in_threadpool(
            ops.dictate, session=session, user=user, settings=settings, study_id=study_id, data=data
        )
    except TranscriptionUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    return TranscriptPublic(**transcript.model_dump())
