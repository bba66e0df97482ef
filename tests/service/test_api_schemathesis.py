"""Schemathesis over the authenticated OpenAPI spec: no generated input may make the server answer 5xx.

Bounded (a few examples per operation) so it stays in the default run; ``bench/schemathesis_run.py`` runs longer.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from vitalens.config import Settings
from vitalens.service.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fake_analyzers")]  # test.* for requests

_SPEC_APP = create_app(Settings(environment="test", secret_key="x" * 40))
#: Every route of the API, authenticated as a clinician of site A (a few examples each in the default run).
schema = schemathesis.openapi.from_dict(_SPEC_APP.openapi())


@pytest.fixture(scope="module")
def db_engine(tmp_path_factory):
    """The bounded run uses SQLite only (``bench/schemathesis_run.py`` fuzzes PostgreSQL too)."""
    from tests.utils.databases import migrated_engine

    with migrated_engine("sqlite", tmp_path_factory.mktemp("db-fuzz")) as engine:
        yield engine


def _check(case, client, world) -> None:
    headers = {**(case.headers or {}), **world.a.headers["clinician"]}
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    kwargs.pop("verify", None)
    kwargs.pop("cert", None)
    if kwargs.get("files"):  # generated multipart fields may be numbers: send them as text, as a browser would
        kwargs["files"] = [(name, _as_part(value)) for name, value in _items(kwargs["files"])]
    response = client.request(
        **{
            k: v
            for k, v in kwargs.items()
            if k in ("method", "url", "headers", "params", "json", "data", "content", "files")
        }
    )
    if case.formatted_path == "/ready" and response.status_code == 503:
        return  # "not ready" (e.g. no bundled model) is the documented answer, not a crash
    if response.status_code == 503 and "no bundled model for" in response.text:
        return  # a predict route of an analyzer without its model: the documented "how to make one" answer
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"


def _items(files):
    return files.items() if isinstance(files, dict) else files


def _as_part(value):
    if isinstance(value, tuple):
        return value if isinstance(value[1], bytes | str) or hasattr(value[1], "read") else (value[0], str(value[1]))
    if isinstance(value, bytes | str) or hasattr(value, "read"):
        return value
    return (None, str(value))


_SETTINGS = settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@_SETTINGS
def test_no_server_error(case, client, world) -> None:
    _check(case, client, world)
