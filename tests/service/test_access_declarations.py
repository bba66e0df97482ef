"""Every operation of the API document declares what it needs (``x-permission``), so the access-matrix bench and a
reader know what each route should allow, and a route added later cannot be left out."""

from __future__ import annotations

import tempfile

from vitalens.config import Settings
from vitalens.service.api._access import AUTHENTICATED, PERMISSION_KEY, PUBLIC, permission
from vitalens.service.app import create_app
from vitalens.service.ops import PERMISSIONS


def test_every_operation_declares_a_known_permission() -> None:
    app = create_app(Settings(environment="test", data_dir=tempfile.mkdtemp()))
    declared = {
        f"{method.upper()} {path}": op.get(PERMISSION_KEY)
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    }
    undeclared = sorted(route for route, value in declared.items() if value is None)
    assert undeclared == [], "declare openapi_extra=permission(...) on these routes"
    assert {v for v in declared.values()} <= set(PERMISSIONS) | {PUBLIC, AUTHENTICATED}
    # spot checks of what the document says
    assert declared["GET /api/v1/patients/{patient_id}"] == "patient.read"
    assert declared["POST /api/v1/sites"] == "site.manage"
    assert declared["POST /api/v1/auth/login"] == PUBLIC


def test_an_unknown_permission_is_refused_at_import_time() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown permission 'patient.reed'"):
        permission("patient.reed")
