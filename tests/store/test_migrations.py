"""The packaged migration matches the models, ``vitalens db upgrade`` works, and the store imports no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from vitalens.store import upgrade
from vitalens.store.migrate import alembic_config
from vitalens.store.models import Base


def test_upgrade_creates_every_table_and_matches_models(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    from vitalens.store import make_engine

    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    command.check(alembic_config(url))  # raises when models and migrations differ


def test_cli_db_upgrade_and_admin_create(tmp_path: Path) -> None:
    env = {"VITALENS_DATA_DIR": str(tmp_path), "VITALENS_ADMIN_PASSWORD": "a-long-admin-password", "PATH": ""}
    exe = [sys.executable, "-m", "vitalens.cli"]
    up = subprocess.run([*exe, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "vitalens.db").is_file()
    first = subprocess.run(
        [*exe, "admin", "create", "--email", "Root@Example.org", "--site", "A"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert "created instance administrator root@example.org" in " ".join(first.stderr.split())
    second = subprocess.run(
        [*exe, "admin", "create", "--email", "x@example.org"], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 2 and "an admin exists already" in second.stderr


def test_store_imports_no_torch() -> None:
    code = "import sys, vitalens.store, vitalens.store.migrate; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
