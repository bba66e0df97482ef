"""What each route needs, declared on the route itself as the OpenAPI extension ``x-permission``.

Why declared: the ops layer enforces every permission (``ops.require``), but a reader of the API document, and the
access-matrix bench that checks every route × role × site × deleted state, must know what a route *should* allow
without reading its code. ``public`` routes answer anyone; ``authenticated`` ones any signed-in user; every other
value is a key of :data:`vitalens.service.ops.PERMISSIONS`. A test requires every operation to declare one, so a
route added later cannot be left out of the matrix.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLIC", "AUTHENTICATED", "permission", "PERMISSION_KEY"]

PERMISSION_KEY = "x-permission"
PUBLIC = "public"
AUTHENTICATED = "authenticated"


def permission(name: str, **extra: Any) -> dict[str, Any]:
    """``openapi_extra`` declaring that the route needs ``name`` (merged with any ``extra`` keys)."""
    from vitalens.service.ops import PERMISSIONS

    if name not in PERMISSIONS and name not in (PUBLIC, AUTHENTICATED):
        raise ValueError(f"unknown permission {name!r}: one of public, authenticated, {', '.join(PERMISSIONS)}")
    return {**extra, PERMISSION_KEY: name}
