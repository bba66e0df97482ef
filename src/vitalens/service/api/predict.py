"""``POST /api/v1/predict/{analyzer}``: one registered analyzer on uploaded inputs, nothing stored.

Why one route per analyzer, generated from the contracts: the OpenAPI document then shows each analyzer's own form
(a file field per image/ECG slot, a field per number/category/text slot, the slots' hints such as ``ecg.fs_hz``),
and a plug-in analyzer gets its route with no edit here. The answer is the contract's JSON document
(:mod:`vitalens.analyzers._document`). ``POST /api/v1/predict/fundus`` (and ``/ecg``, :mod:`.predict_ecg`) are the
old paths, kept as thin aliases that map their form fields onto slots.

Access: a signed-in user by default; ``VITALENS_PUBLIC_PREDICT=true`` opens the routes for a local demo. Each call
counts against ``VITALENS_PREDICT_RATE_LIMIT`` per client (429 + ``Retry-After``; shared by replicas through Redis
like every limit), and runs inside the process's predict gate (:class:`~vitalens.service.ops.predict.PredictGate`:
503 + ``Retry-After`` when saturated) so that predictions never queue in front of clinical jobs on a shared model.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile

from vitalens.service.api._access import AUTHENTICATED, permission

__all__ = ["router", "install", "read_upload", "predict_access", "run_predict"]

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/predict"
router = APIRouter(prefix=PREFIX, tags=["predict"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in (unless VITALENS_PUBLIC_PREDICT is set)"},
    413: {"description": "upload too large"},
    415: {"description": "a file of a type the slot does not take"},
    422: {"description": "invalid input: the field named in `field`, with the limit it breaks"},
    429: {"description": "rate limit exceeded (Retry-After)"},
    503: {"description": "busy (Retry-After), or no bundled model (how to make one)"},
}


def read_upload(upload: UploadFile, *, field: str, max_bytes: int) -> bytes:
    """Read an upload with a hard size cap (reads at most ``max_bytes + 1`` bytes)."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(
            status_code=413, detail=f"{field}: upload is larger than the {max_bytes / 1e6:.1f} MB limit"
        )
    return data


# -- access, rate limit, gate ------------------------------------------------------------------------------------
def predict_access(request: Request) -> None:
    """A signed-in user (Bearer token, or the session cookie with CSRF), unless the settings open predictions; then
    the per-client rate limit."""
    settings = request.app.state.settings
    if not settings.public_predict:
        from vitalens.service.deps import get_auth

        factory = getattr(request.app.state, "session_factory", None)
        if factory is None:
            raise HTTPException(status_code=503, detail="the user database is not open")
        with factory() as session:
            get_auth(request, session, settings)
    _rate_limit(request, settings.predict_rate_limit)


def _rate_limit(request: Request, limit: str) -> None:
    import time

    from limits import parse

    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    item = parse(limit)
    client = request.client.host if request.client else "unknown"
    if not limiter.hit(item, "predict", client):
        reset = limiter.get_window_stats(item, "predict", client).reset_time
        retry = max(1, int(reset - time.time()))
        raise HTTPException(
            status_code=429,
            detail=f"rate limit exceeded ({limit} for predictions); retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def _gate(request: Request) -> Any:
    from vitalens.service.ops.predict import PredictGate

    state = request.app.state
    gate = getattr(state, "predict_gate", None)
    if gate is None:
        settings = state.settings
        gate = PredictGate(settings.predict_concurrency, retry_after_s=settings.predict_retry_after_s)
        state.predict_gate = gate
    return gate


def run_predict(
    request: Request, name: str, raw: dict[str, Any], *, explain: bool, images: bool | None = None
) -> tuple[Any, dict[str, Any]]:
    """Decode ``raw`` (slot → :class:`~vitalens.service.ops.predict.RawInput`), run ``name`` inside the gate and
    return (result, the contract's JSON document; with the overlays as PNG when ``images``, default ``explain``)."""
    from vitalens.analyzers import get_contract
    from vitalens.service.ops.predict import PredictBusy, decode_inputs, predict, result_document

    settings = request.app.state.settings
    contract = get_contract(name)
    inputs = decode_inputs(contract, raw, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    try:
        result = predict(request.app.state.registry.get, name, inputs, explain=explain, gate=_gate(request))
    except PredictBusy as exc:
        raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    return result, result_document(name, result, images=explain if images is None else images)


# -- the generated routes ----------------------------------------------------------------------------------------
def _request_body(contract: Any) -> dict[str, Any]:
    """The multipart form of one analyzer: its slots, their hints, ``explain``."""
    from vitalens.service.api._forms import hint_fields, hint_schema, slot_schema

    properties: dict[str, Any] = {slot: slot_schema(slot) for slot in contract.slots}
    properties.update({f: hint_schema(s, h) for f, (s, h) in hint_fields(contract.slots).items()})
    properties["explain"] = {
        "type": "boolean",
        "default": False,
        "description": "Include each map as a base64 PNG overlay (`overlay_png_base64`).",
    }
    groups = "; ".join(f"at least one of {', '.join(g)}" for g in contract.any_of.values())
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(contract.inputs)}
    if groups:
        schema["description"] = f"Needs {contract.requirement_text()} ({groups})."
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def _describe(contract: Any) -> str:
    lines = [contract.description or contract.title, "", f"Needs: {contract.requirement_text()}."]
    if contract.train_command:
        lines.append(f"Without a bundled model it answers 503; make one with `{contract.train_command}`.")
    lines.append("Decision support only, not a diagnosis.")
    return "\n".join(lines)


def _endpoint(name: str) -> Any:
    async def endpoint(request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool
        from starlette.datastructures import UploadFile as StarletteUpload

        from vitalens.analyzers import get_contract
        from vitalens.errors import InputError
        from vitalens.service.api._forms import hint_fields, hints_of, read_form, read_part
        from vitalens.service.ops.predict import RawInput
        from vitalens.slots import get_slot

        contract = get_contract(name)
        settings = request.app.state.settings
        files = [s for s in contract.slots if get_slot(s).is_file]
        hints = hint_fields(contract.slots)
        form = await read_form(request, settings, n_files=len(files), takes=list(contract.slots))
        unknown = [k for k in form if k not in contract.slots and k not in hints and k != "explain"]
        if unknown:
            raise InputError(
                f"{name} takes {', '.join([*contract.slots, *hints, 'explain'])}; unknown field(s) {unknown}",
                field=unknown[0],
            )
        raw: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key not in contract.slots:
                continue
            if key in raw:
                raise InputError("sent twice; send each slot once", field=key)
            is_file = isinstance(value, StarletteUpload)
            if is_file != get_slot(key).is_file:
                kind = "a file upload (multipart file part)" if get_slot(key).is_file else "a text field, not a file"
                raise InputError(f"must be {kind}", field=key)
            if is_file:
                up = await read_part(key, value, settings, hints_of(form, key))
                raw[key] = RawInput(up.data, up.filename, up.hints)
            else:
                raw[key] = RawInput(str(value))
        explain_raw = str(form.get("explain", "false")).strip().lower()
        if explain_raw not in ("true", "false", "1", "0", "yes", "no", "on", "off", ""):
            raise InputError(f"must be true or false, got {explain_raw[:20]!r}", field="explain")
        explain = explain_raw in ("true", "1", "yes", "on")
        _, body = await run_in_threadpool(run_predict, request, name, raw, explain=explain)
        return body

    endpoint.__name__ = f"predict_{name.replace('.', '_')}"
    return endpoint


def analyzer_router() -> APIRouter:
    """One ``POST /api/v1/predict/<name>`` per registered analyzer, then a catch-all naming the valid ones."""
    from vitalens.analyzers import get_contract, list_analyzers

    generated = APIRouter(prefix=PREFIX, tags=["predict"], dependencies=[Depends(predict_access)])
    for name in list_analyzers():
        contract = get_contract(name)
        generated.add_api_route(
            f"/{name}",
            _endpoint(name),
            methods=["POST"],
            summary=f"{contract.title} ({name})",
            description=_describe(contract),
            operation_id=f"predict_{name.replace('.', '_')}",
            responses=_ERRORS,
            openapi_extra=permission(AUTHENTICATED, requestBody=_request_body(contract)),
        )

    @generated.post("/{analyzer}", include_in_schema=False)
    def unknown_analyzer(analyzer: str) -> None:
        from vitalens.analyzers import ANALYZERS
        from vitalens.errors import UnknownNameError

        try:
            ANALYZERS.get(analyzer)
        except UnknownNameError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        raise HTTPException(status_code=404, detail=f"analyzer {analyzer} was registered after the app was built")

    return generated


def install(app: FastAPI) -> None:
    """Add the generated routes for the analyzers registered now (each app built sees the current registry)."""
    app.include_router(analyzer_router())


# -- the old path: both fundus photographs + age → fundus.odir ----------------------------------------------------
@router.post(
    "/fundus",
    summary="Both fundus photographs + age → 8 ODIR conditions → cardiovascular risk band (alias of /fundus.odir)",
    responses=_ERRORS,
    openapi_extra=permission(AUTHENTICATED),
    dependencies=[Depends(predict_access)],
)
def predict_fundus(
    request: Request,
    left: Annotated[UploadFile, File(description="Left-eye fundus photograph (JPEG/PNG)")],
    right: Annotated[UploadFile, File(description="Right-eye fundus photograph (JPEG/PNG)")],
    age: Annotated[str, Form(description="Age in years, 0–120")],
    explain: Annotated[bool, Form(description="Include base64 Grad-CAM overlays of positive findings")] = False,
) -> dict[str, Any]:
    """The form of the first API version (``left``, ``right``, ``age``) onto the slots of ``fundus.odir``."""
    from vitalens.service.ops.predict import RawInput

    max_bytes = request.app.state.settings.max_upload_bytes
    raw = {
        "fundus_left": RawInput(read_upload(left, field="fundus_left", max_bytes=max_bytes), left.filename or ""),
        "fundus_right": RawInput(read_upload(right, field="fundus_right", max_bytes=max_bytes), right.filename or ""),
        "age": RawInput(age),
    }
    _, body = run_predict(request, "fundus.odir", raw, explain=explain)
    return body
