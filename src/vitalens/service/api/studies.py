"""Study routes: create with multipart inputs (atomic), list, read, add inputs, download an input, soft-delete.

Uploads are multipart ``file`` parts named by slot (every registered file slot: ``fundus_left``, ``ecg``, a
plug-in's...), with the slot's hints as text fields ``<slot>.<hint>`` (``ecg.fs_hz`` for a CSV without a time
column); size, type and content are checked by :func:`vitalens.service.ops.inputs.validate_upload` (413 / 415 /
422) against the slot and the analyzers that read it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from vitalens.errors import InputError
from vitalens.service.api._access import permission
from vitalens.service.api._forms import file_slots, hint_fields, hints_of, read_form, read_part, slot_schema
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep, SettingsDep
from vitalens.service.ops import MAX_OFFSET
from vitalens.service.ops import inputs as input_ops
from vitalens.service.ops import studies as ops

__all__ = ["router", "InputPublic", "StudyPublic", "StudyPage", "StudyUpdate", "AnalysisPlan"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])


class InputPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    slot: str
    modality: str
    eye: str | None
    filename: str
    media_type: str
    size_bytes: int
    content_sha256: str
    width: int | None
    height: int | None
    meta: dict[str, Any]
    created_at: datetime


class StudyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    patient_id: str
    site_id: str
    study_date: date
    description: str
    age_years: float | None
    notes: str = ""
    created_at: datetime
    inputs: list[InputPublic] = Field(default_factory=list)


class StudyUpdate(BaseModel):
    """Fields of a saved study a clinician may complete or correct (only those sent change; ``null`` clears the
    age)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"age_years": 63}]})

    study_date: date | None = None
    description: str | None = Field(default=None, max_length=10_000)
    age_years: float | None = Field(default=None, ge=0, le=120)


class AnalysisPlan(BaseModel):
    """Which analyzers run with the inputs given, and what each of the others lacks."""

    slots: list[str]
    will_run: list[dict[str, Any]]
    cannot_run: list[dict[str, Any]]


class StudyPage(BaseModel):
    items: list[StudyPublic]
    total: int
    limit: int
    offset: int


def study_public(study: Any) -> StudyPublic:
    """A study with its live inputs only."""
    out = StudyPublic.model_validate(study)
    out.inputs = [InputPublic.model_validate(i) for i in study.inputs if i.deleted_at is None]
    return out


#: The text fields of the study form (every other field is a file named by its slot).
_STUDY_FIELDS = ("patient_id", "study_date", "description", "age_years", "notes", "submission_key")


def _check_kinds(form: Any, slots: list[str]) -> None:
    """Files only in slot fields, text only in the others: a file sent as ``patient_id`` or a text value sent as
    ``fundus_left`` is an error naming that field (it would otherwise be stringified or silently dropped)."""
    for key, value in form.multi_items():
        if key in slots and not isinstance(value, UploadFile):
            raise InputError("must be a file upload (multipart file part), got a text value", field=key)
        if key not in slots and isinstance(value, UploadFile):
            raise InputError("must be a text field, not a file", field=key)


async def _slot_form(request: Request, settings: Any, *, fields: Collection[str] = ()) -> tuple[Any, list[Any]]:
    """The multipart form of a study upload, read within the limits and checked: a file per slot (with its
    ``<slot>.<hint>`` fields) and the text ``fields``; anything else is refused naming it. Returns (the form, the
    uploads with their hints)."""
    slots = file_slots()
    form = await read_form(request, settings, n_files=len(slots), takes=slots)
    hints = hint_fields(slots)
    unknown = [k for k in form if k not in slots and k not in fields and k not in hints]
    if unknown:
        raise InputError(f"unknown form fields {unknown}; files go in fields named {slots}", field="form")
    _check_kinds(form, slots)
    uploads = [
        await read_part(k, v, settings, hints_of(form, k)) for k, v in form.multi_items() if isinstance(v, UploadFile)
    ]
    return form, uploads


def _multipart_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """OpenAPI request body for a route that parses its multipart form itself (to enforce form limits)."""
    slots = file_slots()
    files = {slot: slot_schema(slot) for slot in slots}
    from vitalens.service.api._forms import hint_schema

    hints = {name: hint_schema(slot, hint) for name, (slot, hint) in hint_fields(slots).items()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {**fields, **files, **hints}, "required": required}
                }
            },
        }
    }


_STUDY_FORM = _multipart_body(
    {
        "patient_id": {"type": "string", "example": "3f2a…"},
        "study_date": {"type": "string", "format": "date", "example": "2026-11-23"},
        "description": {"type": "string", "maxLength": 500},
        "age_years": {"type": "number", "minimum": 0, "maximum": 120, "example": 63},
        "notes": {"type": "string", "maxLength": 20000, "description": "The clinician's free-text note."},
        "submission_key": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{8,64}$",
            "description": "One key per form: resubmitting with it completes the study it created (200) instead of "
            "creating another (201).",
        },
    },
    ["patient_id", "study_date"],
)


@router.post("", response_model=StudyPublic, status_code=201, openapi_extra=permission("study.create", **_STUDY_FORM))
async def create_study(
    request: Request, session: SessionDep, blobs: BlobsDep, settings: SettingsDep, user: CurrentUser
) -> Any:
    """Create a study from a multipart form: ``patient_id``, ``study_date`` (YYYY-MM-DD), optional
    ``description``, ``age_years``, ``notes`` (the clinician's free text) and ``submission_key``, and up to one file
    per slot (fields named by slot).

    With a ``submission_key`` the site has seen, the study it created is completed and returned with 200."""
    from starlette.concurrency import run_in_threadpool

    form, uploads = await _slot_form(request, settings, fields=_STUDY_FIELDS)
    for required in ("patient_id", "study_date"):
        value = form.get(required)
        if value is None or not str(value).strip():
            raise InputError("field required", field=required)
    try:
        study_date = date.fromisoformat(str(form.get("study_date", "")))
    except ValueError:
        raise InputError(
            f"{str(form.get('study_date'))[:40]!r} is not a date; use YYYY-MM-DD", field="study_date"
        ) from None
    age_raw = form.get("age_years")
    try:
        age = float(str(age_raw)) if age_raw not in (None, "") else None
    except ValueError:
        raise InputError(f"age {age_raw!r} is not a number of years", field="age_years") from None
    key = form.get("submission_key")
    study, created = await run_in_threadpool(
        ops.submit_study,
        session=session,
        blobs=blobs,
        settings=settings,
        user=user,
        patient_id=str(form.get("patient_id", "")),
        study_date=study_date,
        description=str(form.get("description", "")),
        age_years=age,
        notes=str(form.get("notes", "")),
        uploads=uploads,
        registry=getattr(request.app.state, "registry", None),
        submission_key=str(key).strip() or None if key is not None else None,
    )
    # built in the threadpool: it loads the study's inputs, and a query on the event loop stalls every request
    # while the pool is busy (bench/load.py --clients 50: 30 s stalls and QueuePool timeouts, 500s)
    public = await run_in_threadpool(study_public, study)
    if not created:
        return JSONResponse(public.model_dump(mode="json"), status_code=200)
    return public


@router.get("", response_model=StudyPage, openapi_extra=permission("study.read"))
def list_studies(
    session: SessionDep,
    user: CurrentUser,
    patient_id: str | None = Query(None, max_length=64),
    date_from: date | None = None,
    date_to: date | None = None,
    q: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Any:
    page = ops.list_studies(
        session=session,
        user=user,
        patient_id=patient_id,
        date_from=date_from,
        date_to=date_to,
        q=q,
        limit=limit,
        offset=offset,
    )
    return StudyPage(
        items=[study_public(s) for s in page.items], total=page.total, limit=page.limit, offset=page.offset
    )


@router.get("/{study_id}", response_model=StudyPublic, openapi_extra=permission("study.read"))
def get_study(study_id: str, session: SessionDep, user: CurrentUser) -> Any:
    return study_public(ops.get_study(session=session, user=user, study_id=study_id))


@router.patch("/{study_id}", response_model=StudyPublic, openapi_extra=permission("study.create"))
def update_study(study_id: str, body: StudyUpdate, session: SessionDep, user: CurrentUser) -> Any:
    """Complete or correct a saved study (age, date, description); add files with ``POST .../inputs``, then run
    the analysis again. A signed study answers 409 (open an amendment first)."""
    sent = body.model_fields_set
    kwargs: dict[str, Any] = {k: getattr(body, k) for k in ("study_date", "description") if k in sent}
    if "age_years" in sent:
        kwargs["age_years"] = body.age_years
    return study_public(ops.update_study(session=session, user=user, study_id=study_id, **kwargs))


@router.get("/{study_id}/analysis-plan", response_model=AnalysisPlan, openapi_extra=permission("study.read"))
def study_analysis_plan(study_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """Which analyzers will run on this saved study, and what each of the others lacks."""
    from vitalens.service.ops import analyses as analysis_ops

    study = ops.get_study(session=session, user=user, study_id=study_id)
    return analysis_ops.analysis_plan(analysis_ops.study_slots(session, study))


@router.delete("/{study_id}", status_code=204, openapi_extra=permission("study.delete"))
def delete_study(study_id: str, session: SessionDep, user: CurrentUser) -> Response:
    ops.delete_study(session=session, user=user, study_id=study_id)
    return Response(status_code=204)


@router.post(
    "/{study_id}/inputs",
    response_model=list[InputPublic],
    status_code=201,
    openapi_extra=permission("input.upload", **_multipart_body({}, [])),
)
async def add_inputs(
    study_id: str, request: Request, session: SessionDep, blobs: BlobsDep, settings: SettingsDep, user: CurrentUser
) -> Any:
    """Add (or replace) inputs: multipart file fields named by slot."""
    from starlette.concurrency import run_in_threadpool

    _, uploads = await _slot_form(request, settings)
    rows = await run_in_threadpool(
        ops.add_inputs,
        session=session,
        blobs=blobs,
        settings=settings,
        user=user,
        study_id=study_id,
        uploads=uploads,
        registry=getattr(request.app.state, "registry", None),
    )
    return await run_in_threadpool(lambda: [InputPublic.model_validate(r) for r in rows])  # no query on the loop


@router.get("/{study_id}/inputs/{input_id}/content", openapi_extra=permission("input.read"))
def download_input(study_id: str, input_id: str, session: SessionDep, blobs: BlobsDep, user: CurrentUser) -> Response:
    """The original bytes, as an attachment (never rendered inline)."""
    from vitalens.service.ops import NotFound

    ops.visible_study(session=session, user=user, study_id=study_id)
    row, data = input_ops.read_input_bytes(session=session, blobs=blobs, user=user, input_id=input_id)
    if row.study_id != study_id:
        raise NotFound("input not found")
    safe_type = row.media_type if row.media_type.startswith("image/") else "application/octet-stream"
    return Response(
        content=data,
        media_type=safe_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}"},
    )
