"""Root fixtures: offline hub, test settings, and the location of ../shared/data (skip when absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.utils.databases import BACKENDS, migrated_engine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VITALENS_ENVIRONMENT", "test")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VITALENS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared/data absent: {path} not found (real-data test)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real public data; tests using it skip with a reason on a fresh clone without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared/data absent: {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Two cores on CI: keep torch from oversubscribing them."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session", params=BACKENDS)
def db_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A migrated database shared by the session, one per backend (store and service tests use the same one).

    SQLite always; PostgreSQL when reachable (skipped with the reason otherwise, failing under ``CI=true``).
    """
    with migrated_engine(request.param, tmp_path_factory.mktemp(f"db-{request.param}")) as engine:
        yield engine


@pytest.fixture
def db(db_engine: Any) -> Iterator[Any]:
    """A session on ``db_engine``, closed after the test."""
    from vitalens.store import make_session_factory

    session = make_session_factory(db_engine)()
    try:
        yield session
    finally:
        session.close()
