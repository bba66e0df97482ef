"""Patient routes: create, list (paginated, filtered, searched), read, update, soft-delete. Thin over ops.

Every route is scoped to the caller's site by the ops layer; another site's patient answers 404.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vitalens.service.api._access import permission
from vitalens.service.deps import CurrentUser, SessionDep
from vitalens.service.ops import MAX_OFFSET
from vitalens.service.ops import patients as ops

__all__ = ["router", "PatientCreate", "PatientUpdate", "PatientPublic", "PatientPage"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/patients", tags=["patients"])

SexName = Literal["female", "male", "other", "unknown"]


class PatientBase(BaseModel):
    year_of_birth: int | None = Field(default=None, ge=1900, le=2100)
    sex: SexName = "unknown"
    notes: str = Field(default="", max_length=ops.MAX_NOTES_CHARS)


class PatientCreate(PatientBase):
    pseudonym: str = Field(min_length=1, max_length=64)


class PatientUpdate(BaseModel):
    year_of_birth: int | None = Field(default=None, ge=1900, le=2100)
    sex: SexName | None = None
    notes: str | None = Field(default=None, max_length=ops.MAX_NOTES_CHARS)


class PatientPublic(PatientBase):
    model_config = ConfigDict(from_attributes=True)

    id: str
    site_id: str
    pseudonym: str
    created_at: datetime
    updated_at: datetime


class PatientPage(BaseModel):
    items: list[PatientPublic]
    total: int
    limit: int
    offset: int


@router.post("", response_model=PatientPublic, status_code=201, openapi_extra=permission("patient.create"))
def create_patient(body: PatientCreate, session: SessionDep, user: CurrentUser) -> Any:
    """Create a pseudonymous patient at your site."""
    return ops.create_patient(session=session, user=user, **body.model_dump())


@router.get("", response_model=PatientPage, openapi_extra=permission("patient.read"))
def list_patients(
    session: SessionDep,
    user: CurrentUser,
    q: str | None = Query(None, max_length=64, description="Substring of the pseudonym."),
    sex: SexName | None = None,
    born_from: int | None = Query(None, ge=1900, le=2100),
    born_to: int | None = Query(None, ge=1900, le=2100),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Any:
    """Patients of your site, newest first."""
    page = ops.list_patients(
        session=session, user=user, q=q, sex=sex, born_from=born_from, born_to=born_to, limit=limit, offset=offset
    )
    return PatientPage(
        items=[PatientPublic.model_validate(p) for p in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{patient_id}", response_model=PatientPublic, openapi_extra=permission("patient.read"))
def get_patient(patient_id: str, session: SessionDep, user: CurrentUser) -> Any:
    return ops.get_patient(session=session, user=user, patient_id=patient_id)


@router.patch("/{patient_id}", response_model=PatientPublic, openapi_extra=permission("patient.update"))
def update_patient(patient_id: str, body: PatientUpdate, session: SessionDep, user: CurrentUser) -> Any:
    return ops.update_patient(session=session, user=user, patient_id=patient_id, **body.model_dump())


@router.delete("/{patient_id}", status_code=204, openapi_extra=permission("patient.delete"))
def delete_patient(patient_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Soft-delete: hidden from every route, kept for the audit trail."""
    ops.delete_patient(session=session, user=user, patient_id=patient_id)
    return Response(status_code=204)
