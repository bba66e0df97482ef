"""Patients of the user's site: create, list (paginated, filtered, searched), read, update, soft-delete; all audited.

Why pseudonymous: vitalens stores no names; a site gives each patient a pseudonym (its own record number or a
code) and only year of birth and sex, which the risk models need. Free text (``notes``) is stored verbatim; the
API returns it as JSON and the web templates autoescape it, so markup in it stays inert.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import Conflict, Page, page_window, require
from vitalens.service.ops.audit import record_event
from vitalens.store.models import Patient, User

__all__ = [
    "create_patient",
    "get_patient",
    "list_patients",
    "update_patient",
    "delete_patient",
    "visible_patient",
    "MAX_NOTES_CHARS",
]

logger = logging.getLogger(__name__)

MAX_NOTES_CHARS = 10_000
SEXES = ("female", "male", "other", "unknown")


def _pseudonym(value: str) -> str:
    text = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(text) <= 64:
        raise InputError(f"pseudonym must have 1-64 characters, got {len(text)}", field="pseudonym")
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise InputError("pseudonym contains control characters", field="pseudonym")
    return text


def _year(value: int | None) -> int | None:
    if value is None:
        return None
    this_year = datetime.now(UTC).year
    if not 1900 <= value <= this_year:
        raise InputError(f"year of birth {value} is outside 1900-{this_year}", field="year_of_birth")
    return value


def _sex(value: str | None) -> str:
    value = (value or "unknown").lower()
    if value not in SEXES:
        raise InputError(f"sex {value!r} is not one of {', '.join(SEXES)}", field="sex")
    return value


def _notes(value: str | None) -> str:
    text = value or ""
    if len(text) > MAX_NOTES_CHARS:
        raise InputError(f"notes have {len(text)} characters; at most {MAX_NOTES_CHARS} allowed", field="notes")
    return text


def visible_patient(*, session: Session, user: User, patient_id: str) -> Patient:
    """The live patient if it belongs to the user's site; otherwise :class:`NotFound` (no audit).

    The rule is :func:`vitalens.service.ops.scope.visible`, shared by every record hanging from a patient.
    """
    from vitalens.service.ops.scope import visible

    return visible(session, user, Patient, patient_id)


def create_patient(
    *,
    session: Session,
    user: User,
    pseudonym: str,
    year_of_birth: int | None = None,
    sex: str | None = "unknown",
    notes: str | None = "",
) -> Patient:
    """Create a patient at the user's site (audited ``patient.create``).

    Raises:
        Forbidden: reviewers may not create patients.
        Conflict: the pseudonym is taken at this site.
        InputError: bad pseudonym, year of birth, sex or notes.
    """
    require(user, "patient.create")
    pseudo = _pseudonym(pseudonym)
    exists = session.scalar(select(Patient.id).where(Patient.site_id == user.site_id, Patient.pseudonym == pseudo))
    if exists:
        raise Conflict("a patient with this pseudonym exists at your site")
    patient = Patient(
        site_id=user.site_id,
        pseudonym=pseudo,
        year_of_birth=_year(year_of_birth),
        sex=_sex(sex),
        notes=_notes(notes),
        created_by_id=user.id,
    )
    session.add(patient)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="patient.create",
        record_type="patient",
        record_id=patient.id,
        patient_id=patient.id,
    )
    session.commit()
    return patient


def get_patient(*, session: Session, user: User, patient_id: str) -> Patient:
    """One patient of the user's site (audited ``patient.read``)."""
    require(user, "patient.read")
    patient = visible_patient(session=session, user=user, patient_id=patient_id)
    record_event(
        session=session,
        actor=user,
        action="patient.read",
        record_type="patient",
        record_id=patient.id,
        patient_id=patient.id,
    )
    session.commit()
    return patient


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_patients(
    *,
    session: Session,
    user: User,
    q: str | None = None,
    sex: str | None = None,
    born_from: int | None = None,
    born_to: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Patient]:
    """Patients of the user's site, newest first; each listed patient gets a ``patient.list`` audit event.

    Args:
        q: case-insensitive substring of the pseudonym (``%`` and ``_`` match literally).
        sex: exact sex filter.
        born_from, born_to: inclusive year-of-birth range.
        limit: page size, clamped to 1..200.
        offset: rows to skip.
    """
    require(user, "patient.read")
    limit, offset = page_window(limit, offset)
    query = select(Patient).where(Patient.site_id == user.site_id, Patient.deleted_at.is_(None))
    if q:
        pattern = f"%{_escape_like(q.strip().lower())}%"
        query = query.where(or_(func.lower(Patient.pseudonym).like(pattern, escape="\\")))
    if sex:
        query = query.where(Patient.sex == _sex(sex))
    if born_from is not None:
        query = query.where(Patient.year_of_birth >= born_from)
    if born_to is not None:
        query = query.where(Patient.year_of_birth <= born_to)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(Patient.created_at.desc(), Patient.id).limit(limit).offset(offset)).all()
    for patient in items:
        record_event(
            session=session,
            actor=user,
            action="patient.list",
            record_type="patient",
            record_id=patient.id,
            patient_id=patient.id,
        )
    session.commit()
    return Page(items=items, total=int(total), limit=limit, offset=offset)


def update_patient(
    *,
    session: Session,
    user: User,
    patient_id: str,
    year_of_birth: int | None = None,
    sex: str | None = None,
    notes: str | None = None,
) -> Patient:
    """Change the given fields (``None`` keeps a field); audited ``patient.update`` with the changed names."""
    require(user, "patient.update")
    patient = visible_patient(session=session, user=user, patient_id=patient_id)
    changed = []
    if year_of_birth is not None:
        patient.year_of_birth = _year(year_of_birth)
        changed.append("year_of_birth")
    if sex is not None:
        patient.sex = _sex(sex)
        changed.append("sex")
    if notes is not None:
        patient.notes = _notes(notes)
        changed.append("notes")
    record_event(
        session=session,
        actor=user,
        action="patient.update",
        record_type="patient",
        record_id=patient.id,
        patient_id=patient.id,
        detail={"fields": changed},
    )
    session.commit()
    return patient


def delete_patient(*, session: Session, user: User, patient_id: str) -> Patient:
    """Soft-delete a patient (kept for the audit trail, hidden everywhere); audited ``patient.delete``."""
    require(user, "patient.delete")
    patient = visible_patient(session=session, user=user, patient_id=patient_id)
    patient.deleted_at = datetime.now(UTC)
    patient.deleted_by_id = user.id
    record_event(
        session=session,
        actor=user,
        action="patient.delete",
        record_type="patient",
        record_id=patient.id,
        patient_id=patient.id,
    )
    session.commit()
    return patient
