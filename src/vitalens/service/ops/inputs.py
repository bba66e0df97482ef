"""Uploaded inputs of a study: validation by slot (same gate as the analyzers), safe names, blob storage.

Why validate at upload: a study is stored before it is analysed; refusing a corrupt image, a decompression bomb,
an ECG in a fundus slot or an oversize file here means every stored input is one the analyzers can read, and the
clinician learns at once, not when a job fails. The original bytes are stored under their content address; the
client's file name is kept (sanitised) for display only.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import TooLarge, require
from vitalens.service.ops.audit import record_event
from vitalens.store.blobs import BlobStore, StagedBlobs
from vitalens.store.models import Input, Study, User

if TYPE_CHECKING:
    from vitalens.slots import SlotSpec

__all__ = [
    "Upload",
    "ValidatedUpload",
    "upload_slots",
    "sanitize_filename",
    "validate_upload",
    "check_readable",
    "readers_of",
    "decode_input",
    "stage_inputs",
    "get_input",
    "read_input_bytes",
    "visible_input",
]

logger = logging.getLogger(__name__)

MAX_FILENAME_CHARS = 120


@dataclass(frozen=True)
class Upload:
    """One file as received: the slot it was sent for, its bytes, and what the client claimed about it."""

    slot: str
    data: bytes
    filename: str = ""
    content_type: str | None = None
    #: decoder hints as sent (``{"fs_hz": "500"}`` from the form field ``ecg.fs_hz``), checked by the slot
    hints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidatedUpload:
    """An upload that passed the gate, with what was learnt from decoding it."""

    slot: str
    modality: str
    eye: str | None
    media_type: str
    filename: str
    data: bytes
    width: int | None = None
    height: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the decoded value (not stored: it lets the caller read DICOM tags or run gates without decoding twice)
    value: Any = field(default=None, repr=False, compare=False)


def sanitize_filename(name: str | None) -> str:
    """A display-safe file name: last path component, NFC-normalised, no control characters, ≤120 characters.

    Path-like names (``../../etc/passwd``, ``C:\\x\\y.png``) keep only their final part; the result is never used
    as a path (blobs are stored by content hash).
    """
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").split("/")[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(text) > MAX_FILENAME_CHARS:
        stem, dot, suffix = text.rpartition(".")
        keep = MAX_FILENAME_CHARS - len(suffix) - 1
        text = f"{stem[:keep]}.{suffix}" if dot and 0 < len(suffix) <= 10 and keep > 0 else text[:MAX_FILENAME_CHARS]
    return text or "upload"


def upload_slots() -> list[str]:
    """Registered slots a study keeps as an uploaded input (``source == "upload"``): files and plug-ins' text."""
    from vitalens.slots import get_slot, list_slots

    return [name for name in list_slots() if get_slot(name).source == "upload"]


def _slot(slot: str) -> SlotSpec:
    from vitalens.slots import get_slot, is_slot

    if not is_slot(slot) or get_slot(slot).source != "upload":
        valid = ", ".join(upload_slots())
        raise InputError(f"unknown input slot {slot!r}; expected one of: {valid}", field="slot")
    return get_slot(slot)


def readers_of(slot: str) -> list[str]:
    """Names of the registered analyzers that read ``slot``."""
    from vitalens.analyzers import get_contract, list_analyzers

    return [name for name in list_analyzers() if slot in get_contract(name).slots]


def check_readable(slot: str, value: Any, *, registry: Any | None = None) -> list[str]:
    """Check a decoded value against the slot's limits, then against each analyzer that reads the slot.

    An analyzer checks through :meth:`~vitalens.analyzers.Analyzer.validate_input` (its card's limits and its own
    checks) when ``registry`` gives instances, else through its contract's limits. The value is accepted when at
    least one reader accepts it (or no analyzer reads the slot yet), so a photograph only ``fundus.odir`` can read
    is still stored for it.

    Returns:
        The analyzers that can read it.

    Raises:
        InputError: the slot's own limits fail, or every reader refuses (the first reader's reason).
    """
    from vitalens.analyzers import get_contract
    from vitalens.errors import ArtifactError

    spec = _slot(slot)
    spec.check(value)
    readers = readers_of(slot)
    accepted: list[str] = []
    first: InputError | None = None
    for name in readers:
        try:
            analyzer = registry.get(name) if registry is not None else None
            if analyzer is not None:
                analyzer.validate_input(slot, value)
            else:
                get_contract(name).limits_for(slot).check(value, field=slot)
        except ArtifactError as exc:  # a broken bundled model: judge by the contract, the job reports the model
            logger.warning("upload check of %s for %s used the contract's limits: %s", slot, name, exc)
            try:
                get_contract(name).limits_for(slot).check(value, field=slot)
            except InputError as inner:
                first = first or inner
                continue
        except InputError as exc:
            first = first or exc
            continue
        accepted.append(name)
    if readers and not accepted and first is not None:
        raise first
    return accepted


def validate_upload(upload: Upload, *, settings: Settings, registry: Any | None = None) -> ValidatedUpload:
    """Check size, type and content of one upload for its slot, by the slot's declaration alone.

    The slot decodes it (:meth:`vitalens.slots.SlotSpec.decode`, with the hints sent), then the value must meet the
    slot's limits and those of at least one analyzer that reads the slot (:func:`check_readable`).

    Raises:
        TooLarge: above ``settings.max_upload_bytes`` (HTTP 413).
        UnsupportedMediaError: not a file type the slot accepts, e.g. an ECG in a fundus slot (HTTP 415).
        InputError: corrupt/truncated, decompression bomb, 16-bit, grayscale fundus, too small, unreadable ECG, a
            CSV ECG without its sampling rate, a value no analyzer can read (HTTP 422).
    """
    spec = _slot(upload.slot)
    slot = spec.name
    size = len(upload.data)
    if size > settings.max_upload_bytes:
        raise TooLarge(
            f"{slot}: file is {size / 1e6:.1f} MB, above the {settings.max_upload_bytes / 1e6:.1f} MB upload limit"
        )
    filename = sanitize_filename(upload.filename)
    decoded = spec.decode(
        upload.data,
        filename=filename,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        hints=spec.parse_hints(upload.hints),
    )
    check_readable(slot, decoded.value, registry=registry)
    media_type = decoded.media_type
    if media_type == "application/octet-stream" and "/" in (upload.content_type or ""):
        media_type = str(upload.content_type)  # what the client said, for a format with no sniffable type
    return ValidatedUpload(
        slot=slot,
        modality=spec.modality or str(spec.kind),
        eye=spec.laterality,
        media_type=media_type[:100],
        filename=filename,
        data=upload.data,
        width=decoded.width,
        height=decoded.height,
        meta=decoded.meta,
        value=decoded.value,
    )


def decode_input(row: Any, data: bytes, *, settings: Settings | None = None) -> Any:
    """Decode a stored input's bytes with its slot's decoder and the hints it was uploaded with (jobs, exports)."""
    from vitalens.slots import get_slot

    meta = row.meta or {}
    return (
        get_slot(row.slot)
        .decode(
            data,
            filename=row.filename or row.slot,
            max_pixels=settings.max_image_pixels if settings is not None else 40_000_000,
            hints=meta.get("hints") or None,
        )
        .value
    )


def stage_inputs(
    *,
    session: Session,
    staged: StagedBlobs,
    user: User,
    study: Study,
    uploads: Sequence[ValidatedUpload],
) -> list[Input]:
    """Write validated uploads as blobs and ``Input`` rows of ``study`` (inside :func:`vitalens.store.atomic`)."""
    import hashlib

    rows = []
    for up in uploads:
        data = up.data
        if up.media_type == "application/dicom":
            from vitalens.io.dicom import deidentify_bytes

            # Stored without the name, birth date, MRN or physicians the PACS sent: the patient is the pseudonym.
            data = deidentify_bytes(up.data, pseudonym=study.patient.pseudonym)
        key = staged.put(data)
        row = Input(
            study_id=study.id,
            slot=up.slot,
            modality=up.modality,
            eye=up.eye,
            filename=up.filename,
            content_sha256=hashlib.sha256(data).hexdigest(),
            media_type=up.media_type,
            size_bytes=len(data),
            blob_key=key,
            width=up.width,
            height=up.height,
            meta=up.meta,
            created_by_id=user.id,
        )
        session.add(row)
        session.flush()
        record_event(
            session=session,
            actor=user,
            action="input.upload",
            record_type="input",
            record_id=row.id,
            patient_id=study.patient_id,
            detail={"study_id": study.id, "slot": up.slot, "size_bytes": len(data)},
        )
        rows.append(row)
    return rows


def visible_input(*, session: Session, user: User, input_id: str) -> Input:
    """The input if it belongs to a live study of the user's site; else :class:`NotFound` (no audit)."""
    from vitalens.service.ops.scope import visible

    return visible(session, user, Input, input_id)


def get_input(*, session: Session, user: User, input_id: str) -> Input:
    """Metadata of one input (audited ``input.read``)."""
    require(user, "input.read")
    row = visible_input(session=session, user=user, input_id=input_id)
    record_event(
        session=session,
        actor=user,
        action="input.read",
        record_type="input",
        record_id=row.id,
        patient_id=row.study.patient_id,
    )
    session.commit()
    return row


def read_input_bytes(*, session: Session, blobs: BlobStore, user: User, input_id: str) -> tuple[Input, bytes]:
    """An input's original bytes (audited ``input.download``)."""
    require(user, "input.read")
    row = visible_input(session=session, user=user, input_id=input_id)
    data = blobs.get(row.blob_key)
    record_event(
        session=session,
        actor=user,
        action="input.download",
        record_type="input",
        record_id=row.id,
        patient_id=row.study.patient_id,
    )
    session.commit()
    return row, data


def list_inputs(*, session: Session, study_id: str) -> list[Input]:
    """Live inputs of a study already checked visible (no audit: the study read is audited)."""
    return list(
        session.scalars(
            select(Input).where(Input.study_id == study_id, Input.deleted_at.is_(None)).order_by(Input.created_at)
        )
    )
