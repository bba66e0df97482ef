"""``POST /api/v1/predict/{analyzer}``: one registered analyzer on uploaded inputs, nothing stored.

Why one route per analyzer, generated from the contracts: the OpenAPI document then shows each analyzer's own form
(a file field per image/ECG slot, a field per number/category/text slot, the slots' hints such as ``ecg.fs_hz``),
and a plug-in analyzer gets its route with no edit here. The answer is the contract's JSON document
(:mod:`vitalens.analyzers._document`). An analyzer's short names (its contract's ``aliases``) get a route too,
``POST /api/v1/predict/<alias>``, with the form the alias declares mapped onto the slots and the contract's
companions answered alongside: the first version's ``/predict/fundus`` and ``/predict/ecg`` are such aliases, so
no route here names an analyzer.

Access: a signed-in user by default; ``VITALENS_PUBLIC_PREDICT=true`` opens the routes for a local demo. Each call
counts against ``VITALENS_PREDICT_RATE_LIMIT`` per client (429 + ``Retry-After``; shared by replicas through Redis
like every limit), and runs inside the process's predict gate (:class:`~vitalens.service.ops.predict.PredictGate`:
503 + ``Retry-After`` when saturated) so that predictions never queue in front of clinical jobs on a shared model.
"""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile

from vitalens.service.api._access import AUTHENTICATED, permission

__all__ = ["router", "install", "read_upload", "predict_access", "run_predict"]

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/predict"
#: No fixed route: every predict route is generated from the registry (:func:`install`).
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


# -- the short names --------------------------------------------------------------------------------------------
def _alias_parameters(contract: Any, alias: Any) -> list[inspect.Parameter]:
    """The alias's form as FastAPI parameters (``Annotated[UploadFile, File(alias=...)]``...), so that FastAPI
    validates it, names a missing field (``right: field required``) and documents each field, as the first
    version's hand-written routes did."""
    from vitalens.slots import NumberLimits, get_slot

    required = set(contract.inputs)
    params = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
    for i, f in enumerate(alias.fields_for(contract.uses)):
        spec = get_slot(f.slot)
        kind: Any
        if f.hint is not None:
            hint = spec.hint(f.hint)
            number = isinstance(hint.limits, NumberLimits)
            kind = Annotated[
                float | None if number else str | None,
                Form(alias=f.name, description=f.description or hint.description, gt=f.gt),
            ]
            default: Any = None
        else:
            description = f.description or spec.description or spec.title
            marker = (
                File(alias=f.name, description=description)
                if spec.is_file
                else Form(alias=f.name, description=description)
            )
            base: Any = UploadFile if spec.is_file else str
            if f.slot in required:
                kind, default = Annotated[base, marker], inspect.Parameter.empty
            else:
                kind, default = Annotated[base | None, marker], None
        params.append(inspect.Parameter(f"field_{i}", inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default))
    if alias.always_explain:
        what = f"Also return {', '.join(alias.explain_extras) or 'the explanations'}."
    else:
        what = "Include each map as a base64 PNG overlay (`overlay_png_base64`)."
    params.append(
        inspect.Parameter(
            "explain", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[bool, Form(description=what)], default=False
        )
    )
    return params


def _alias_endpoint(contract: Any, alias: Any) -> Any:
    """``POST /api/v1/predict/<alias>``: the alias's fields onto slots and hints, the analyzer, its companions."""
    from vitalens.service.ops.predict import RawInput

    fields = alias.fields_for(contract.uses)
    params = _alias_parameters(contract, alias)

    def endpoint(request: Request, **sent: Any) -> dict[str, Any]:
        from vitalens.service.ops.predict import alias_answer, alias_inputs, run_companions
        from vitalens.slots import get_slot

        explain = bool(sent.pop("explain", False))
        by_name = {f.name: sent.get(f"field_{i}") for i, f in enumerate(fields)}
        max_bytes = request.app.state.settings.max_upload_bytes
        for f in fields:  # the uploads first (413 before anything else), in the form's order
            value = by_name[f.name]
            if f.hint is None and value is not None and get_slot(f.slot).is_file:
                by_name[f.name] = (read_upload(value, field=f.slot, max_bytes=max_bytes), value.filename or "upload")
        values, hints = alias_inputs(fields, by_name, check_choices=True)
        raw: dict[str, RawInput] = {}
        for slot, value in values.items():
            if isinstance(value, tuple):
                raw[slot] = RawInput(value[0], value[1], hints.get(slot, {}))
            else:
                raw[slot] = RawInput(str(value), "", hints.get(slot, {}))
        run_explain = alias.always_explain or explain
        images = explain and not alias.always_explain
        result, body = run_predict(request, contract.name, raw, explain=run_explain, images=images)

        def companion(other: Any) -> dict[str, Any]:
            mine = {slot: value for slot, value in raw.items() if slot in other.slots}
            return run_predict(request, other.name, mine, explain=False)[1]

        return alias_answer(alias, body, result, run_companions(contract, companion), explain=explain)

    endpoint.__name__ = f"predict_{alias.name.replace('-', '_')}"
    endpoint.__signature__ = inspect.Signature(params, return_annotation=dict[str, Any])  # type: ignore[attr-defined]
    return endpoint


def _alias_summary(contract: Any, alias: Any) -> str:
    also = f", with {', '.join(contract.companions)}" if contract.companions else ""
    return f"{contract.description or contract.title} (alias of /{contract.name}{also})"


def analyzer_router() -> APIRouter:
    """One ``POST /api/v1/predict/<name>`` per registered analyzer and per alias, then a catch-all naming the
    valid ones."""
    from vitalens.analyzers import get_contract, list_aliases, list_analyzers

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
    aliases = list_aliases()
    for short, contract in aliases.items():
        alias = contract.alias(short)
        generated.add_api_route(
            f"/{short}",
            _alias_endpoint(contract, alias),
            methods=["POST"],
            summary=_alias_summary(contract, alias),
            description=_describe(contract),
            responses=_ERRORS,
            openapi_extra=permission(AUTHENTICATED),
        )

    @generated.post("/{analyzer}", include_in_schema=False)
    def unknown_analyzer(analyzer: str) -> None:
        from vitalens._naming import unknown_name_error
        from vitalens.analyzers import is_analyzer

        if not is_analyzer(analyzer):
            raise HTTPException(
                status_code=404, detail=str(unknown_name_error("analyzer", analyzer, [*list_analyzers(), *aliases]))
            )
        raise HTTPException(status_code=404, detail=f"analyzer {analyzer} was registered after the app was built")

    return generated


def install(app: FastAPI) -> None:
    """Add the generated routes for the analyzers registered now (each app built sees the current registry)."""
    app.include_router(analyzer_router())
