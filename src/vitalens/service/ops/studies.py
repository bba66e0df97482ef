"""Studies of a patient: create (with their inputs, atomically), list, read, update, add inputs, soft-delete; audited.

Why atomic: a study is stored before it is analysed, and a half-stored study (rows without blobs or blobs
without rows) would either crash the analysis or leak files. :func:`vitalens.store.atomic` commits both or neither.

Why a submission key: a study saved without the age could not be analysed, and fixing the age and submitting the
form again created a second study. The form sends one key per form; a submission whose key the site has seen
*completes* the study that key created (the new age, date, description and any new or changed files) instead of
adding another, and answers with that study.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import Conflict, Page, page_window, require
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
    "submit_study",
    "update_study",
    "add_inputs",
    "get_study",
    "list_studies",
    "delete_study",
    "visible_study",
]

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 10_000
#: A submission key: 8–64 letters, digits, ``-`` or ``_`` (a UUID fits).
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


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
    submission_key: str | None = None,
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
    _check_age(age_years)
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
            submission_key=submission_key,
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


def _check_age(age_years: float | None) -> float | None:
    if age_years is not None and not 0 <= age_years <= 120:
        raise InputError(f"age {age_years} years is outside 0-120", field="age_years")
    return age_years


def submit_study(
    *,
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    patient_id: str,
    study_date: date,
    submission_key: str | None,
    description: str = "",
    age_years: float | None = None,
    uploads: Sequence[Upload] = (),
    registry: Any | None = None,
    notes: str = "",
) -> tuple[Study, bool]:
    """Create a study, or complete the one this ``submission_key`` created before; returns ``(study, created)``.

    A resubmission sets the age, date and description it gives and stores each upload whose bytes differ from the
    slot's current input (an unchanged file is not stored again); it is audited as ``study.update``.

    Raises:
        InputError: a malformed key, or any of :func:`create_study`'s input errors.
        Conflict: the key belongs to a study of another patient, or the study is signed off.
    """

    def create(key: str | None = None) -> Study:  # the new study, with or without its key
        return create_study(
            session=session,
            blobs=blobs,
            settings=settings,
            user=user,
            patient_id=patient_id,
            study_date=study_date,
            description=description,
            age_years=age_years,
            uploads=uploads,
            registry=registry,
            notes=notes,
            submission_key=key,
        )

    if submission_key is None:
        return create(), True
    if not _KEY_RE.match(submission_key):
        raise InputError("submission_key must be 8-64 letters, digits, '-' or '_'", field="submission_key")
    require(user, "study.create")
    by_key = select(Study).where(Study.site_id == user.site_id, Study.submission_key == submission_key)
    existing = session.scalar(by_key)
    if existing is None:
        from sqlalchemy.exc import IntegrityError

        try:
            return create(submission_key), True
        except IntegrityError:  # a concurrent submission with this key won the race: complete its study
            session.rollback()
            existing = session.scalar(by_key)
            if existing is None:
                raise
    study = visible_study(session=session, user=user, study_id=existing.id)
    if study.patient_id != patient_id:
        raise Conflict(
            f"submission_key was already used for a study of another patient ({study.id}); use a new key",
        )
    current = {i.slot: i.content_sha256 for i in study.inputs if i.deleted_at is None}
    import hashlib

    changed = [u for u in uploads if current.get(u.slot) != hashlib.sha256(u.data).hexdigest()]
    ensure_editable(session, study)
    for upload in changed:  # refuse a bad file before anything of the resubmission is written
        validate_upload(upload, settings=settings, registry=registry)
    update_study(
        session=session,
        user=user,
        study_id=study.id,
        study_date=study_date,
        description=description,
        age_years=age_years if age_years is not None else _UNSET,  # an empty age box keeps the stored age
        resubmitted=True,
    )
    if notes.strip() and notes.replace("\r\n", "\n").strip() != (study.notes or ""):
        from vitalens.service.ops.notes import update_notes

        update_notes(session=session, user=user, study_id=study.id, notes=notes)
    if changed:
        add_inputs(
            session=session,
            blobs=blobs,
            settings=settings,
            user=user,
            study_id=study.id,
            uploads=changed,
            registry=registry,
        )
    session.refresh(study)
    return study, False


_UNSET: object = object()


def update_study(
    *,
    session: Session,
    user: User,
    study_id: str,
    study_date: date | None = None,
    description: str | None = None,
    age_years: float | None | object = _UNSET,
    resubmitted: bool = False,
) -> Study:
    """Complete or correct a saved study's own fields (then re-run its analysis); audited ``study.update``.

    Only what is given changes (``age_years=None`` clears the age). Inputs are added with :func:`add_inputs`.

    Raises:
        NotFound: no such study in the user's site.
        Conflict: the study is signed off (open an amendment first).
        InputError: a date in the future or before 1900, an age outside 0–120, an over-long description.
    """
    require(user, "study.create")
    study = visible_study(session=session, user=user, study_id=study_id)
    ensure_editable(session, study)
    changes: dict[str, object] = {}
    if study_date is not None and study_date != study.study_date:
        study.study_date = _check_date(study_date)
        changes["study_date"] = study_date.isoformat()
    if description is not None and description != study.description:
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InputError(
                f"description has {len(description)} characters; at most {MAX_DESCRIPTION_CHARS}", field="description"
            )
        study.description = description
        changes["description"] = True
    if age_years is not _UNSET and age_years != study.age_years:
        study.age_years = _check_age(age_years)  # type: ignore[arg-type]
        changes["age_years"] = age_years
    if changes or resubmitted:
        record_event(
            session=session,
            actor=user,
            action="study.update",
            record_type="study",
            record_id=study.id,
            patient_id=study.patient_id,
            detail={"changed": sorted(changes), "resubmitted": resubmitted},
        )
    session.commit()
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
