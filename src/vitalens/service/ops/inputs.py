"""Uploaded inputs of a study: validation by slot (same gate as the analyzers), safe names, blob storage.

Why validate at upload: a study is stored before it is analysed; refusing a corrupt image, a decompression bomb,
an ECG in a fundus slot or an oversize file here means every stored input is one the analyzers can read, and the
clinician learns at once, not when a job fails. The original bytes are stored under their content address; the
client's file name is kept (sanitised) for display only.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.service.ops import TooLarge, require
from vitalens.service.ops.audit import record_event
from vitalens.store.blobs import BlobStore, StagedBlobs
from vitalens.store.models import Input, InputSlot, Study, User

__all__ = [
    "Upload",
    "ValidatedUpload",
    "SLOT_MODALITY",
    "sanitize_filename",
    "validate_upload",
    "stage_inputs",
    "get_input",
    "read_input_bytes",
    "visible_input",
]

logger = logging.getLogger(__name__)

#: slot → (modality, eye, colour policy for images or None for ECG)
SLOT_MODALITY: dict[str, tuple[str, str | None, str | None]] = {
    InputSlot.FUNDUS_LEFT.value: ("fundus", "left", "rgb"),
    InputSlot.FUNDUS_RIGHT.value: ("fundus", "right", "rgb"),
    InputSlot.OCT.value: ("oct", None, "gray"),
    InputSlot.CXR.value: ("cxr", None, "gray"),
    InputSlot.ECG.value: ("ecg", None, None),
}

MAX_FILENAME_CHARS = 120


@dataclass(frozen=True)
class Upload:
    """One file as received: the slot it was sent for, its bytes, and what the client claimed about it."""

    slot: str
    data: bytes
    filename: str = ""
    content_type: str | None = None


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


def _slot(slot: str) -> str:
    if slot not in SLOT_MODALITY:
        valid = ", ".join(SLOT_MODALITY)
        raise InputError(f"unknown input slot {slot!r}; expected one of: {valid}", field="slot")
    return slot


def validate_upload(upload: Upload, *, settings: Settings) -> ValidatedUpload:
    """Check size, type and content of one upload for its slot.

    Raises:
        TooLarge: above ``settings.max_upload_bytes`` (HTTP 413).
        UnsupportedMediaError: not a file type the slot accepts, e.g. an ECG in a fundus slot (HTTP 415).
        InputError: corrupt/truncated, decompression bomb, 16-bit, grayscale fundus, too small, unreadable ECG
            (HTTP 422).
    """
    slot = _slot(upload.slot)
    modality, eye, colour = SLOT_MODALITY[slot]
    size = len(upload.data)
    if size > settings.max_upload_bytes:
        raise TooLarge(
            f"{slot}: file is {size / 1e6:.1f} MB, above the {settings.max_upload_bytes / 1e6:.1f} MB upload limit"
        )
    filename = sanitize_filename(upload.filename)
    if colour is not None:
        from vitalens.io.dicom import is_dicom, read_dicom_image
        from vitalens.io.images import decode_image, sniff_image_type

        image_meta: dict[str, Any] = {}
        if is_dicom(upload.data):
            # The tags travel with the input (eye, age on the day, UIDs), never the patient's name or birth date.
            dicom = read_dicom_image(
                upload.data,
                field=slot,
                colour=colour,  # type: ignore[arg-type]
                kind=modality,  # type: ignore[arg-type]
                eye=eye,
                max_pixels=settings.max_image_pixels,
            )
            array, media_type, image_meta = dicom.array, "application/dicom", {"dicom": dicom.meta.as_dict()}
        else:
            array = decode_image(upload.data, field=slot, max_pixels=settings.max_image_pixels, colour=colour)  # type: ignore[arg-type]
            media_type = sniff_image_type(upload.data) or "application/octet-stream"
        return ValidatedUpload(
            slot=slot,
            modality=modality,
            eye=eye,
            media_type=media_type,
            filename=filename,
            data=upload.data,
            width=int(array.shape[1]),
            height=int(array.shape[0]),
            meta=image_meta,
        )
    from vitalens.io.images import sniff_image_type

    if sniff_image_type(upload.data) is not None:
        raise UnsupportedMediaError("an image was uploaded as an ECG; upload it to an image slot", field=slot)
    from vitalens.io.ecg import read_ecg_bytes

    try:
        record = read_ecg_bytes(upload.data, filename=filename, max_bytes=settings.max_upload_bytes)
    except InputError:
        raise
    except Exception as exc:  # a reader's own error type: the file is not a readable ECG
        raise InputError(f"unreadable ECG file: {exc}", field=slot) from exc
    meta = {
        "fs_hz": float(record.fs_hz),
        "leads": list(record.leads),
        "n_samples": int(record.signal.shape[1]),
        "source_format": getattr(record, "source_format", None),
    }
    claimed = upload.content_type or ""
    media_type = claimed if "/" in claimed else "application/octet-stream"
    return ValidatedUpload(
        slot=slot,
        modality=modality,
        eye=None,
        media_type=media_type[:100],
        filename=filename,
        data=upload.data,
        meta=meta,
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
