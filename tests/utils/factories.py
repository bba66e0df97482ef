"""Factories for service and store tests: sites, users (with known passwords), patients, studies, image bytes.

Each returns committed ORM rows with random, unique names so tests on a shared session-scoped database never clash.
"""

from __future__ import annotations

import io
import uuid
from datetime import date

import numpy as np
from sqlalchemy.orm import Session

from vitalens.service.security import hash_password
from vitalens.store.models import Patient, Site, Study, User

__all__ = [
    "PASSWORD",
    "create_site",
    "create_user",
    "create_patient",
    "create_study",
    "png_bytes",
    "random_suffix",
]

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - test password
_HASH = hash_password(PASSWORD)


def random_suffix() -> str:
    return uuid.uuid4().hex[:10]


def create_site(db: Session, name: str | None = None) -> Site:
    site = Site(name=name or f"site-{random_suffix()}")
    db.add(site)
    db.commit()
    return site


def create_user(db: Session, *, site: Site, role: str = "clinician", email: str | None = None) -> User:
    """A user whose password is :data:`PASSWORD` (hash computed once per test session)."""
    user = User(site_id=site.id, email=email or f"{role}-{random_suffix()}@example.org", role=role, password_hash=_HASH)
    db.add(user)
    db.commit()
    return user


def create_patient(db: Session, *, site: Site, pseudonym: str | None = None, **kw: object) -> Patient:
    patient = Patient(site_id=site.id, pseudonym=pseudonym or f"P-{random_suffix()}", **kw)
    db.add(patient)
    db.commit()
    return patient


def create_study(db: Session, *, patient: Patient, study_date: date | None = None, description: str = "") -> Study:
    study = Study(
        patient_id=patient.id,
        site_id=patient.site_id,
        study_date=study_date or date(2024, 5, 1),
        description=description,
    )
    db.add(study)
    db.commit()
    return study


def png_bytes(width: int = 160, height: int = 136, *, mode: str = "RGB", seed: int = 0) -> bytes:
    """A small valid PNG of random pixels (``mode`` ``RGB`` or ``L``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
