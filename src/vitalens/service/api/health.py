"""``GET /api/v1/health``: liveness plus the analyzers and their bundled models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from vitalens import DECISION_SUPPORT_NOTICE, __version__
from vitalens.service.api._access import permission

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", summary="Liveness and the available analyzers", openapi_extra=permission("public"))
def health(request: Request) -> dict[str, Any]:
    from vitalens.analyzers import get_spec, list_analyzers
    from vitalens.artifacts import ModelCard

    models_dir = request.app.state.settings.models_dir
    analyzers = []
    for name in list_analyzers():
        spec = get_spec(name)
        entry: dict[str, Any] = {"name": name, "inputs": [str(i) for i in spec.inputs], "model": None}
        if spec.default_artifact:
            try:
                card = ModelCard.read(models_dir / spec.default_artifact)
                entry["model"] = {"name": card.name, "version": card.version, "demonstration": card.demonstration}
            except Exception as exc:  # noqa: BLE001 - health reports, it does not fail
                entry["model_error"] = str(exc)
        analyzers.append(entry)
    warm = getattr(request.app.state, "warmup", None)
    return {
        "status": "ok",
        "version": __version__,
        "analyzers": analyzers,
        # the start-up model warm-up (vitalens.service.jobs.warmup): off, running or done
        "warmup": "off" if warm is None else ("running" if warm.is_alive() else "done"),
        "notice": DECISION_SUPPORT_NOTICE,
    }
