"""Store fixtures: the migrated database per backend (see ``tests/utils/databases.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.utils.databases import BACKENDS, migrated_engine


@pytest.fixture(scope="session", params=BACKENDS)
def store_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp(f"store-{request.param}")) as engine:
        yield engine


@pytest.fixture
def db(store_engine: Engine) -> Iterator[Session]:
    from vitalens.store import make_session_factory

    session = make_session_factory(store_engine)()
    try:
        yield session
    finally:
        session.close()
