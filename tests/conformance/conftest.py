"""The service fixtures (an app on a migrated database, a client, two sites with users) for the conformance tests."""

from __future__ import annotations

from tests.service.conftest import app, client, world  # noqa: F401 - fixtures re-exported for this package
