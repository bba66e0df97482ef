"""``vitalens ready``: the probe containers and orchestrators use (exit 0 only when every dependency answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.utils.s3 import free_port
from vitalens.cli import app
from vitalens.config import get_settings


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VITALENS_DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    monkeypatch.setenv("VITALENS_BLOB_DIR", str(tmp_path / "blobs"))
    monkeypatch.delenv("VITALENS_BROKER_URL", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["ready", *args])
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


def test_ready_on_sqlite_and_local_blobs(env: pytest.MonkeyPatch) -> None:
    code, body = _run()
    assert code == 0 and body["ready"] is True
    assert body["checks"]["database"] == {"ok": True, "backend": "sqlite"} and body["checks"]["blobs"]["ok"]


def test_unreachable_broker_is_not_ready(env: pytest.MonkeyPatch) -> None:
    env.setenv("VITALENS_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    code, body = _run("--timeout", "1")
    assert code == 1 and body["ready"] is False
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["database"]["ok"] is True


def test_worker_probe_needs_a_broker(env: pytest.MonkeyPatch) -> None:
    code, body = _run("--worker")
    assert code == 1 and body["checks"]["worker"] == {"ok": False, "detail": "VITALENS_BROKER_URL is not set"}


def test_unreachable_database_is_not_ready(env: pytest.MonkeyPatch) -> None:
    env.setenv("VITALENS_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    get_settings.cache_clear()
    code, body = _run("--timeout", "1")
    assert code == 1 and body["checks"]["database"]["ok"] is False
