"""Test databases: a migrated SQLite file always, and a private schema on the local PostgreSQL when reachable.

Why a private schema: several test runs may share the machine's PostgreSQL (database ``test``, trust auth); each
run migrates its own ``vt_<random>`` schema and drops it afterwards, so runs never see each other's rows.
Under ``CI=true`` an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

__all__ = ["BACKENDS", "PG_URL", "postgres_reachable", "migrated_engine"]

logger = logging.getLogger(__name__)

BACKENDS = ("sqlite", "postgresql")
PG_URL = os.environ.get("VITALENS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", with its reason
        return f"PostgreSQL at {PG_URL} unreachable: {exc}".splitlines()[0]
    return None


@contextmanager
def migrated_engine(backend: str, tmp_dir: Path) -> Iterator[Engine]:
    """An engine on a freshly migrated database of ``backend`` (``sqlite`` or ``postgresql``)."""
    from vitalens.store import make_engine, upgrade

    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / 'test.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    reason = postgres_reachable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true requires PostgreSQL)")
        pytest.skip(reason)
    schema = f"vt_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:
            upgrade(PG_URL, connection=conn)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
