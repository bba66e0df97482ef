"""Studies of a patient: create (with their inputs, atomically), list, read, add inputs, soft-delete; audited.

Why atomic: a study is stored before it is analysed, and a half-stored study (rows without blobs or blobs
without rows) would either crash the analysis or leak files. :func:`vitalens.store.atomic` commits both or neither.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import Page, page_window, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.inputs import Upload, ValidatedUpload, stage_inputs, validate_upload
from vitalens.service.ops.notes import note_limit
from vitalens.service.ops.patients import visible_patient
from vitalens.service.ops.scope import live_studies, visible
from vitalens.service.ops.signing import ensure_editable
from vitalens.store.blobs import BlobStore, atomic
from vitalens.store.models import Input, Study, User

__all__ = [
    "study_field_values",
    "create_study",
    "add_inputs",
    "get_study",
    "list_studies",
    "delete_study",
    "visible_study",
]

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 10_000


def visible_study(*, session: Session, user: User, study_id: str) -> Study:
    """The live study if its live patient belongs to the user's site; else :class:`NotFound` (no audit).

    The rule is :func:`vitalens.service.ops.scope.visible`, shared by every record hanging from a patient.
    """
    return visible(session, user, Study, study_id)


def study_field_values(study: Study) -> dict[str, object]:
    """slot name → value of every slot a study keeps in its own fields (``source="study"``: the age, the note), when
    set. Why generic: the analyses and the job read slots through the registry, so a slot's home is declared once."""
    from vitalens.slots import SLOTS

    out: dict[str, object] = {}
    for name, spec in SLOTS.items():
        if spec.source != "study":
            continue
        value = getattr(study, spec.attribute, None)
        if value is not None and value != "":
            out[name] = value
    return out


def _check_date(study_date: date) -> date:
    if study_date > datetime.now(UTC).date():
        raise InputError(f"study date {study_date.isoformat()} is in the future", field="study_date")
    if study_date.year < 1900:
        raise InputError(f"study date {study_date.isoformat()} is before 1900", field="study_date")
    return study_date


def _age_from_dicom(validated: Sequence[ValidatedUpload]) -> float | None:
    """The patient's age on the day as the uploaded DICOM images state it (the first that does), else None."""
    for up in validated:
        age = (up.meta.get("dicom") or {}).get("age_years")
        if age is not None and 0 <= float(age) <= 120:
            return float(age)
    return None


def create_study(
    *,
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    patient_id: str,
    study_date: date,
    description: str = "",
    age_years: float | None = None,
    uploads: Sequence[Upload] = (),
    registry: Any | None = None,
    notes: str = "",
) -> Study:
    """Create a study with its inputs; every upload is validated first, then blobs and rows commit together.

    Raises:
        NotFound: no such patient at the user's site.
        Forbidden: reviewers may not create studies.
        TooLarge / UnsupportedMediaError / InputError: an upload fails validation (nothing is stored); with
            ``registry`` (the app's analyzers) each upload is checked by the analyzers that read its slot.
    """
    require(user, "study.create")
    patient = visible_patient(session=session, user=user, patient_id=patient_id)
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InputError(
            f"description has {len(description)} characters; at most {MAX_DESCRIPTION_CHARS}", field="description"
        )
    if age_years is not None and not 0 <= age_years <= 120:
        raise InputError(f"age {age_years} years is outside 0-120", field="age_years")
    notes = notes.replace("\r\n", "\n").strip()
    if len(notes) > note_limit():
        raise InputError(f"the note has {len(notes):,} characters; at most {note_limit():,}", field="notes")
    slots = [u.slot for u in uploads]
    if len(set(slots)) != len(slots):
        raise InputError(f"each slot may be uploaded once per request, got {slots}", field="slot")
    validated = [validate_upload(u, settings=settings, registry=registry) for u in uploads]
    if age_years is None:
        age_years = _age_from_dicom(validated)
    with atomic(session, blobs) as staged:
        study = Study(
            patient_id=patient.id,
            site_id=patient.site_id,
            study_date=_check_date(study_date),
            description=description,
            age_years=age_years,
            notes=notes,
            created_by_id=user.id,
        )
        session.add(study)
        session.flush()
        record_event(
            session=session,
            actor=user,
            action="study.create",
            record_type="study",
            record_id=study.id,
            patient_id=patient.id,
            detail={"slots": slots},
        )
        stage_inputs(session=session, staged=staged, user=user, study=study, uploads=validated)
    return study


def add_inputs(
    *,
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    study_id: str,
    uploads: Sequence[Upload],
    replace: bool = True,
    registry: Any | None = None,
) -> list[Input]:
    """Add inputs to an existing study; with ``replace`` an upload to a filled slot supersedes the old input."""
    require(user, "input.upload")
    study = visible_study(session=session, user=user, study_id=study_id)
    ensure_editable(session, study)
    if not uploads:
        raise InputError("no file uploaded", field="file")
    validated = [validate_upload(u, settings=settings, registry=registry) for u in uploads]
    with atomic(session, blobs) as staged:
        if replace:
            slots = {v.slot for v in validated}
            for old in study.inputs:
                if old.slot in slots and old.deleted_at is None:
                    old.deleted_at = datetime.now(UTC)
        rows = stage_inputs(session=session, staged=staged, user=user, study=study, uploads=validated)
    return rows


def get_study(*, session: Session, user: User, study_id: str) -> Study:
    """One study with its inputs (audited ``study.read``)."""
    require(user, "study.read")
    study = visible_study(session=session, user=user, study_id=study_id)
    record_event(
        session=session,
        actor=user,
        action="study.read",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
    )
    session.commit()
    return study


def list_studies(
    *,
    session: Session,
    user: User,
    patient_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Study]:
    """Studies of the user's site (optionally of one patient), newest study date first; each listed study is
    audited (``study.list``).

    Args:
        patient_id: only this patient's studies (:class:`NotFound` if not visible).
        date_from, date_to: inclusive study-date range.
        q: case-insensitive substring of the description.
    """
    require(user, "study.read")
    limit, offset = page_window(limit, offset)
    query = live_studies(user)
    if patient_id is not None:
        visible_patient(session=session, user=user, patient_id=patient_id)
        query = query.where(Study.patient_id == patient_id)
    if date_from is not None:
        query = query.where(Study.study_date >= date_from)
    if date_to is not None:
        query = query.where(Study.study_date <= date_to)
    if q:
        escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Study.description).like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Study.study_date.desc(), Study.created_at.desc()).limit(limit).offset(offset)
    ).all()
    for study in items:
        record_event(
            session=session,
            actor=user,
            action="study.list",
            record_type="study",
            record_id=study.id,
            patient_id=study.patient_id,
        )
    session.commit()
    return Page(items=items, total=int(total), limit=limit, offset=offset)


def delete_study(*, session: Session, user: User, study_id: str) -> Study:
    """Soft-delete a study (audited ``study.delete``); its blobs stay for the audit trail."""
    require(user, "study.delete")
    study = visible_study(session=session, user=user, study_id=study_id)
    study.deleted_at = datetime.now(UTC)
    study.deleted_by_id = user.id
    record_event(
        session=session,
        actor=user,
        action="study.delete",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
    )
    session.commit()
    return study
