"""Service fixtures: a migrated database per backend (SQLite always, PostgreSQL when reachable), an app wired to
it, a ``TestClient``, and two sites with one user per role so cross-site rules can be tested everywhere.

Every test using ``db_engine`` (directly or through ``client``/``world``) runs once per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.utils import factories as f
from vitalens.config import Settings
from vitalens.service.security import create_access_token
from vitalens.store.models import Patient, Site, Study, User

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105


@pytest.fixture
def fake_analyzers() -> Iterator[None]:
    """The ``test.*`` analyzers, registered for this test only."""
    from tests.service._analysis_fakes import registered_fakes

    with registered_fakes():
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, max_upload_mb=0.5, max_image_pixels=4_000_000
    )


@pytest.fixture
def app(settings: Settings, db_engine: Engine, tmp_path: Path) -> FastAPI:
    from vitalens.service.app import create_app
    from vitalens.store import LocalBlobStore, make_session_factory

    application = create_app(settings)
    application.state.engine = db_engine
    application.state.session_factory = make_session_factory(db_engine)
    application.state.blobs = LocalBlobStore(tmp_path / "blobs")
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def bearer(user: User, settings: Settings) -> dict[str, str]:
    """Authorization headers for ``user`` (token minted directly: no login round trip, no rate limit)."""
    token, _ = create_access_token(user_id=user.id, secret_key=settings.secret_key, minutes=5)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SiteWorld:
    site: Site
    users: dict[str, User]
    headers: dict[str, dict[str, str]]
    patient: Patient
    study: Study
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class World:
    a: SiteWorld
    b: SiteWorld


def _site_world(db: Session, settings: Settings) -> SiteWorld:
    site = f.create_site(db)
    users = {role: f.create_user(db, site=site, role=role) for role in ("clinician", "reviewer", "admin")}
    patient = f.create_patient(db, site=site, year_of_birth=1960, sex="female")
    study = f.create_study(db, patient=patient)
    return SiteWorld(
        site=site,
        users=users,
        headers={role: bearer(u, settings) for role, u in users.items()},
        patient=patient,
        study=study,
    )


@pytest.fixture
def world(db: Session, settings: Settings) -> World:
    """Two sites, each with a clinician, reviewer and admin, one patient and one study."""
    return World(a=_site_world(db, settings), b=_site_world(db, settings))


@pytest.fixture
def clinician_headers(world: World) -> dict[str, str]:
    return world.a.headers["clinician"]


@pytest.fixture
def reviewer_headers(world: World) -> dict[str, str]:
    return world.a.headers["reviewer"]


@pytest.fixture
def admin_headers(world: World) -> dict[str, str]:
    return world.a.headers["admin"]
