"""Multipart forms named by input slot, read from the slot registry: which fields exist, their OpenAPI schema,
and the parts turned into uploads with their hints.

Why one module: the study routes and the predict routes take the same fields (a file per slot, ``<slot>.<hint>``
text fields such as ``ecg.fs_hz``), and neither may know a slot by name — a plug-in's slot must appear in both, and
in the OpenAPI document, with no edit here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.service.ops import TooLarge
from vitalens.service.ops.inputs import Upload

__all__ = [
    "FORM_TYPES",
    "MULTIPART_SLACK",
    "file_slots",
    "hint_fields",
    "read_part",
    "read_form",
    "slot_schema",
    "hint_schema",
    "hints_of",
]

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
#: multipart overhead allowed on top of the file limits before the body is parsed at all
MULTIPART_SLACK = 1024 * 1024


def file_slots(slots: Iterable[str] | None = None) -> list[str]:
    """The slots (default: every registered one) whose value is an uploaded file kept as a study input."""
    from vitalens.slots import get_slot, list_slots

    names = list(slots) if slots is not None else list_slots()
    return [n for n in names if get_slot(n).is_file and get_slot(n).source == "upload"]


def hint_fields(slots: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Form field ``<slot>.<hint>`` → (slot, hint) for the hints of ``slots``."""
    from vitalens.slots import get_slot

    return {f"{s}.{h.name}": (s, h.name) for s in slots for h in get_slot(s).hints}


def hints_of(form: Any, slot: str) -> dict[str, str]:
    """The hint fields of ``slot`` present in ``form`` (by hint name, as sent)."""
    from vitalens.slots import get_slot

    out = {}
    for h in get_slot(slot).hints:
        value = form.get(f"{slot}.{h.name}")
        if value is not None and not isinstance(value, UploadFile):
            out[h.name] = str(value)
    return out


async def read_part(slot: str, part: UploadFile, settings: Any, hints: dict[str, str] | None = None) -> Upload:
    """The part's bytes, at most the upload limit; ``await`` (never a blocking read inside the event loop: a part
    larger than the spool threshold lives on disk and Starlette reads it in its thread pool)."""
    data = await part.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"{slot}: file is above the {settings.max_upload_bytes / 1e6:.1f} MB upload limit")
    return Upload(slot=slot, data=data, filename=part.filename or "", content_type=part.content_type, hints=hints or {})


def _check_length(request: Request, settings: Any, n_files: int) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes * max(1, n_files) + MULTIPART_SLACK:
        raise TooLarge(
            f"request body is {int(length) / 1e6:.1f} MB, above the {settings.max_upload_bytes / 1e6:.1f} MB "
            "per-file upload limit"
        )


async def read_form(
    request: Request, settings: Any, *, n_files: int, takes: Sequence[str], max_fields: int = 20
) -> Any:
    """The parsed form; a body that is not a form (JSON, text, nothing) is a 415 saying what the route takes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type and request.headers.get("content-length", "0") in ("", "0") and takes:
        # nothing sent at all: the fields are missing (422), not of the wrong media type
        raise InputError(
            f"required: {request.method} {request.url.path} takes multipart/form-data with fields named by slot: "
            f"{', '.join(takes)}; the request has no body",
            field=takes[0],
        )
    if content_type not in FORM_TYPES:
        raise UnsupportedMediaError(
            f"{request.method} {request.url.path} takes multipart/form-data (files in fields named by slot: "
            f"{', '.join(takes)}); got {content_type or 'no body'}",
            field="body",
        )
    _check_length(request, settings, n_files)
    try:
        return await request.form(max_files=max(1, n_files), max_fields=max_fields)
    except HTTPException as exc:  # Starlette's own parse errors (too many fields/files, malformed multipart)
        raise InputError(f"malformed form: {exc.detail}", field="body") from None


def slot_schema(slot: str) -> dict[str, Any]:
    """The OpenAPI property of one slot: a binary file part, or a number/string field with its limits."""
    from vitalens.slots import CategoryLimits, NumberLimits, SlotKind, TextLimits, get_slot

    spec = get_slot(slot)
    description = spec.description or spec.title
    if spec.is_file:
        accept = f" Accepted: {', '.join(s for s in spec.accept if s)}." if spec.accept else ""
        return {"type": "string", "format": "binary", "title": spec.title, "description": description + accept}
    limits = spec.limits
    if spec.kind == SlotKind.NUMBER and isinstance(limits, NumberLimits):
        prop: dict[str, Any] = {"type": "number", "title": spec.title, "description": description}
        if limits.minimum is not None:
            prop["minimum"] = limits.minimum
        if limits.maximum is not None:
            prop["maximum"] = limits.maximum
        return prop
    if spec.kind == SlotKind.CATEGORY and isinstance(limits, CategoryLimits) and limits.choices:
        return {"type": "string", "enum": list(limits.choices), "title": spec.title, "description": description}
    prop = {"type": "string", "title": spec.title, "description": description}
    if isinstance(limits, TextLimits) and limits.max_chars is not None:
        prop["maxLength"] = limits.max_chars
    return prop


def hint_schema(slot: str, hint: str) -> dict[str, Any]:
    """The OpenAPI property of the form field ``<slot>.<hint>``."""
    from vitalens.slots import CategoryLimits, NumberLimits, get_slot

    h = get_slot(slot).hint(hint)
    if isinstance(h.limits, NumberLimits):
        prop: dict[str, Any] = {"type": "number", "description": h.description}
        if h.limits.minimum is not None:
            prop["minimum"] = h.limits.minimum
        if h.limits.maximum is not None:
            prop["maximum"] = h.limits.maximum
        return prop
    if isinstance(h.limits, CategoryLimits) and h.limits.choices:
        return {"type": "string", "enum": list(h.limits.choices), "description": h.description}
    return {"type": "string", "description": h.description}
