"""Run the Alembic migrations that ship inside the package (``vitalens db upgrade``, app start on SQLite).

Why in the package: a pip-installed vitalens has no ``alembic.ini`` next to it; the migration scripts travel as
package data and this module builds the Alembic config in code, with the URL taken from ``Settings``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["alembic_config", "upgrade", "MIGRATIONS_DIR"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, *, connection: Any | None = None) -> Any:
    """An ``alembic.config.Config`` pointing at the packaged migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head", *, connection: Any | None = None) -> None:
    """Bring the database at ``url`` (or an open ``connection``) up to ``revision``.

    Args:
        url: SQLAlchemy URL; SQLite folders are created.
        revision: Alembic target (``head`` by default).
        connection: an open SQLAlchemy connection to migrate instead (tests pass one bound to a schema).
    """
    from alembic import command

    if connection is None:
        from vitalens.store.db import is_sqlite, make_engine

        if is_sqlite(url):
            make_engine(url).dispose()  # creates the folder
    command.upgrade(alembic_config(url, connection=connection), revision)
    logger.info("database upgraded to %s", revision)
