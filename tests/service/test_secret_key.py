"""The token signing key: never the built-in placeholder, generated into the data directory on first start.

Before: with no ``VITALENS_SECRET_KEY`` the server signed with the public placeholder and accepted a token forged
with it as the admin, logging nothing.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.utils import factories as f
from vitalens.config import DEFAULT_SECRET, SECRET_FILE, Settings, ensure_secret_key
from vitalens.service.security import create_access_token


@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
def test_builtin_placeholder_is_refused_in_every_environment(environment: str) -> None:
    with pytest.raises(ValidationError, match="built-in placeholder, which is public"):
        Settings(environment=environment, secret_key=DEFAULT_SECRET)  # type: ignore[arg-type]


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(secret_key="x" * 31)


def test_generated_on_first_start_kept_private_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vitalens.config"):
        first = ensure_secret_key(Settings(environment="dev", data_dir=tmp_path))
    path = tmp_path / SECRET_FILE
    assert first.secret_key is not None and len(first.secret_key) >= 48
    assert first.secret_key != DEFAULT_SECRET
    assert path.read_text().strip() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any(str(path.resolve()) in r.getMessage() and "generated" in r.getMessage() for r in caplog.records)
    assert first.secret_key not in caplog.text  # the log says where, never the key itself
    again = ensure_secret_key(Settings(environment="dev", data_dir=tmp_path))
    assert again.secret_key == first.secret_key  # a restart keeps every session valid
    own = ensure_secret_key(Settings(environment="dev", data_dir=tmp_path, secret_key="y" * 40))
    assert own.secret_key == "y" * 40  # a configured key wins over the file


def test_placeholder_in_the_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text(DEFAULT_SECRET)
    with pytest.raises(ValueError, match="unusable signing key"):
        ensure_secret_key(Settings(data_dir=tmp_path))


def test_token_forged_with_the_placeholder_is_refused(tmp_path: Path, db_engine: Engine, db: Session) -> None:
    from vitalens.service.app import create_app
    from vitalens.store import LocalBlobStore, make_session_factory

    app = create_app(Settings(environment="dev", data_dir=tmp_path))  # no VITALENS_SECRET_KEY, as the README runs it
    app.state.engine = db_engine
    app.state.session_factory = make_session_factory(db_engine)
    app.state.blobs = LocalBlobStore(tmp_path / "blobs")
    admin = f.create_user(db, site=f.create_site(db), role="admin")
    forged, _ = create_access_token(user_id=admin.id, secret_key=DEFAULT_SECRET, minutes=5)
    real, _ = create_access_token(user_id=admin.id, secret_key=app.state.settings.secret_key, minutes=5)
    with TestClient(app) as client:
        refused = client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
        assert (refused.status_code, refused.json()["detail"]) == (401, "access token signature invalid")
        assert client.get("/api/v1/users", headers={"Authorization": f"Bearer {real}"}).status_code == 200
