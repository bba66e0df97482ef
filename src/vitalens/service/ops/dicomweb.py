"""DICOMweb in: STOW-RS (a PACS or Orthanc pushes a study) and a QIDO-style list of what was received.

Why through the study operations: a pushed instance becomes an input exactly as an upload does — validated by its
slot, stored de-identified, scoped to the user's site and audited — so nothing downstream knows it came over
DICOMweb. What is DICOM-specific is only:

* **which slot**: each instance goes to the registered slot whose modality (and eye) its tags name — a fundus
  photograph of the left eye to ``fundus_left``, an OCT to ``oct``, a DX/CR to ``cxr``, an ECG waveform to ``ecg``;
* **which patient**: the sender's (issuer, patient ID) maps to one pseudonymous patient of the site, ``PACS-`` + a
  keyed hash (HMAC with the deployment's secret) — the same patient on every push, and the MRN itself never stored;
* **which study**: instances of one Study Instance UID join one vitalens study (``studies.dicom_study_uid``); a
  repeated instance (same SOP Instance UID) is acknowledged, not stored twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.inputs import Upload
from vitalens.service.ops.scope import live_studies
from vitalens.store.blobs import BlobStore
from vitalens.store.models import Input, Patient, Study, User

__all__ = [
    "ECG_SOP_CLASSES",
    "FAILURE_PROCESSING",
    "FAILURE_UNSUPPORTED",
    "StowResult",
    "list_received_studies",
    "list_received_instances",
    "pacs_pseudonym",
    "slot_for",
    "store_instances",
]

logger = logging.getLogger(__name__)

#: PS3.4 Table GG.4-1 failure reasons used in the STOW-RS response.
FAILURE_UNSUPPORTED = 0x0122  # SOP class not supported
FAILURE_PROCESSING = 0x0110  # processing failure (unreadable, limits)
FAILURE_MISMATCH = 0xA900  # data set does not match the target study

ECG_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.9.1.1", "1.2.840.10008.5.1.4.1.1.9.1.2"})


@dataclass
class StowResult:
    """Per-instance outcome of one STOW-RS request."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    studies: dict[str, str] = field(default_factory=dict)  # Study Instance UID → vitalens study id

    @property
    def status_code(self) -> int:
        """200 all stored, 202 some failed, 409 none stored (PS3.18 10.5.3)."""
        if not self.failed:
            return 200
        return 202 if self.stored else 409

    def dicom_json(self, base_url: str) -> dict[str, Any]:
        """The STOW-RS response body (DICOM JSON)."""

        def ref(item: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {
                "00081150": {"vr": "UI", "Value": [item["sop_class_uid"]]},
                "00081155": {"vr": "UI", "Value": [item["sop_instance_uid"]]},
            }
            if "reason" in item:
                out["00081197"] = {"vr": "US", "Value": [item["reason"]]}
                out["00000902"] = {"vr": "LO", "Value": [item["message"][:64]]}
            else:
                out["00081190"] = {"vr": "UR", "Value": [f"{base_url}/studies/{item['study_uid']}"]}
            return out

        body: dict[str, Any] = {}
        if self.stored:
            body["00081199"] = {"vr": "SQ", "Value": [ref(i) for i in self.stored]}
        if self.failed:
            body["00081198"] = {"vr": "SQ", "Value": [ref(i) for i in self.failed]}
        return body


def pacs_pseudonym(settings: Settings, *, issuer: str | None, patient_id: str) -> str:
    """The site pseudonym of a sender's patient: ``PACS-`` + 16 hex of HMAC-SHA-256(secret, issuer|id)."""
    from vitalens.config import ensure_secret_key

    key = ensure_secret_key(settings).signing_key.encode()  # the server's key, also from the CLI
    digest = hmac.new(key, f"{issuer or ''}|{patient_id}".encode(), hashlib.sha256).hexdigest()
    return f"PACS-{digest[:16]}"


def slot_for(meta: Any) -> str | None:
    """The registered slot an instance goes to: same modality (and eye, for side-specific slots); ECG by SOP class."""
    from vitalens.slots import SlotKind, get_slot, list_slots

    if meta.sop_class_uid in ECG_SOP_CLASSES:
        return next((s for s in list_slots() if get_slot(s).kind == SlotKind.ECG), None)
    if meta.kind is None:
        return None
    for name in list_slots():
        spec = get_slot(name)
        if spec.kind != SlotKind.IMAGE or spec.modality != meta.kind:
            continue
        if spec.laterality is None or spec.laterality == meta.laterality:
            return name
    return None


def _patient(session: Session, settings: Settings, user: User, dicom_patient: Any) -> Patient:
    from vitalens.service.ops.patients import create_patient

    if not dicom_patient.patient_id:
        raise InputError("the instance has no PatientID; a pushed study must name its patient", field="PatientID")
    pseudonym = pacs_pseudonym(settings, issuer=dicom_patient.issuer, patient_id=dicom_patient.patient_id)
    found = session.scalar(
        select(Patient).where(
            Patient.site_id == user.site_id, Patient.pseudonym == pseudonym, Patient.deleted_at.is_(None)
        )
    )
    if found is not None:
        return found
    birth = dicom_patient.birth_date
    return create_patient(
        session=session,
        user=user,
        pseudonym=pseudonym,
        year_of_birth=birth.year if birth else None,
        sex=dicom_patient.sex or "unknown",
        notes="received over DICOMweb",
    )


def _stored_sop_uids(study: Study) -> set[str]:
    return {
        str((i.meta or {}).get("dicom", {}).get("sop_instance_uid"))
        for i in study.inputs
        if i.deleted_at is None and (i.meta or {}).get("dicom")
    }


def _part10(data: bytes) -> bytes:
    """A pushed part as a DICOM Part 10 file: some senders (pydicom-based clients among them) omit the 128-byte
    preamble and ``DICM`` prefix but send the file meta group; such a part is re-written with them."""
    import io

    import pydicom

    from vitalens.io.dicom import is_dicom

    if is_dicom(data) or not data.startswith(b"\x02\x00"):
        return data
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
            return data
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()
    except Exception:  # noqa: BLE001 - not DICOM after all: the reader below says so
        return data


def store_instances(
    *,
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    parts: Sequence[bytes],
    study_uid: str | None = None,
) -> StowResult:
    """Store pushed DICOM instances as study inputs (STOW-RS); every instance succeeds or fails on its own.

    Args:
        parts: the DICOM Part 10 files of the request.
        study_uid: the target study of ``POST /studies/{uid}``; instances of another study then fail.
    """
    from vitalens.errors import UnsupportedMediaError
    from vitalens.io.dicom import image_meta, patient_of, read_dicom_dataset
    from vitalens.service.ops import OpsError
    from vitalens.service.ops.studies import add_inputs, create_study

    require(user, "study.create")
    result = StowResult()
    groups: dict[str, list[tuple[Any, bytes, str]]] = {}
    for index, raw in enumerate(parts):
        data = _part10(raw)
        try:
            ds = read_dicom_dataset(data, field=f"part {index + 1}", stop_before_pixels=True)
        except InputError as exc:
            result.failed.append(
                {"sop_class_uid": "", "sop_instance_uid": "", "reason": FAILURE_PROCESSING, "message": str(exc)}
            )
            continue
        meta = image_meta(ds)
        item = {"sop_class_uid": meta.sop_class_uid, "sop_instance_uid": meta.sop_instance_uid or ""}
        slot = slot_for(meta)
        if slot is None:
            result.failed.append({**item, "reason": FAILURE_UNSUPPORTED, "message": "no input slot takes this object"})
            continue
        uid = meta.study_instance_uid or ""
        if study_uid is not None and uid != study_uid:
            result.failed.append({**item, "reason": FAILURE_MISMATCH, "message": f"instance of study {uid}"})
            continue
        groups.setdefault(uid, []).append((ds, data, slot))
    for uid, members in groups.items():
        first = members[0][0]
        try:
            patient = _patient(session, settings, user, patient_of(first))
        except (InputError, OpsError) as exc:
            message = str(exc) if isinstance(exc, InputError) else exc.reason
            for ds, _, _ in members:
                result.failed.append(_failure(ds, FAILURE_PROCESSING, message))
            continue
        # the shared scoping rule: a study of a deleted patient is gone, and never receives instances again
        study = session.scalar(live_studies(user).where(Study.dicom_study_uid == uid))
        seen = _stored_sop_uids(study) if study is not None else set()
        for ds, data, slot in members:
            sop_uid = str(ds.get("SOPInstanceUID", ""))
            if sop_uid in seen:
                result.stored.append(_stored(ds, uid))  # already received: acknowledged, not stored twice
                continue
            upload = Upload(
                slot=slot, data=data, filename=f"{sop_uid or 'instance'}.dcm", content_type="application/dicom"
            )
            try:
                if study is None:
                    study = create_study(
                        session=session,
                        blobs=blobs,
                        settings=settings,
                        user=user,
                        patient_id=patient.id,
                        study_date=image_meta(ds).study_date or datetime.now(UTC).date(),
                        description=f"DICOM study {str(ds.get('AccessionNumber', '') or '').strip()}".strip(),
                        uploads=[upload],
                    )
                    study.dicom_study_uid = uid
                    session.commit()
                else:
                    add_inputs(
                        session=session, blobs=blobs, settings=settings, user=user, study_id=study.id,
                        uploads=[upload], replace=True,
                    )  # fmt: skip
            except UnsupportedMediaError as exc:
                session.rollback()
                result.failed.append(_failure(ds, FAILURE_UNSUPPORTED, str(exc)))
                continue
            except (InputError, OpsError) as exc:
                session.rollback()
                message = str(exc) if isinstance(exc, InputError) else exc.reason
                result.failed.append(_failure(ds, FAILURE_PROCESSING, message))
                continue
            seen.add(sop_uid)
            result.stored.append(_stored(ds, uid))
        if study is not None:
            result.studies[uid] = study.id
            record_event(
                session=session,
                actor=user,
                action="dicomweb.store",
                record_type="study",
                record_id=study.id,
                patient_id=study.patient_id,
                detail={"study_instance_uid": uid, "instances": len(members)},
            )
            session.commit()
    logger.info("STOW-RS: %d stored, %d failed", len(result.stored), len(result.failed))
    for item in result.failed:
        logger.warning("STOW-RS refused %s: %s", item["sop_instance_uid"] or "an unreadable part", item["message"])
    return result


def _stored(ds: Any, uid: str) -> dict[str, Any]:
    return {
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "study_uid": uid,
    }


def _failure(ds: Any, reason: int, message: str) -> dict[str, Any]:
    return {
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "reason": reason,
        "message": message,
    }


def _received(session: Session, user: User) -> list[Study]:
    query = live_studies(user).where(Study.dicom_study_uid.is_not(None)).order_by(Study.created_at.desc())
    return list(session.scalars(query))


def list_received_studies(*, session: Session, user: User, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """QIDO-RS style: the site's studies received over DICOMweb as DICOM JSON (each listed study audited)."""
    require(user, "study.read")
    out = []
    for study in _received(session, user)[offset : offset + max(1, min(limit, 500))]:
        inputs = [i for i in study.inputs if i.deleted_at is None and (i.meta or {}).get("dicom")]
        modalities = sorted({str(i.meta["dicom"].get("modality") or "") for i in inputs} - {""})
        out.append(
            {
                "0020000D": {"vr": "UI", "Value": [study.dicom_study_uid]},
                "00080020": {"vr": "DA", "Value": [study.study_date.strftime("%Y%m%d")]},
                "00100020": {"vr": "LO", "Value": [study.patient.pseudonym]},
                "00080061": {"vr": "CS", "Value": modalities},
                "00201208": {"vr": "IS", "Value": [len(inputs)]},
                "7FF10010": {"vr": "LO", "Value": [study.id]},  # the vitalens study id (private)
            }
        )
        record_event(
            session=session, actor=user, action="study.list", record_type="study", record_id=study.id,
            patient_id=study.patient_id, detail={"via": "qido"},
        )  # fmt: skip
    session.commit()
    return out


def list_received_instances(*, session: Session, user: User, study_uid: str) -> list[dict[str, Any]]:
    """The instances received for one Study Instance UID of the site (audited ``study.read``)."""
    from vitalens.service.ops import NotFound

    require(user, "study.read")
    study = next((s for s in _received(session, user) if s.dicom_study_uid == study_uid), None)
    if study is None:
        raise NotFound("study not found")
    rows: list[Input] = [i for i in study.inputs if i.deleted_at is None and (i.meta or {}).get("dicom")]
    record_event(
        session=session, actor=user, action="study.read", record_type="study", record_id=study.id,
        patient_id=study.patient_id, detail={"via": "qido"},
    )  # fmt: skip
    session.commit()
    return [
        {
            "0020000D": {"vr": "UI", "Value": [study_uid]},
            "0020000E": {"vr": "UI", "Value": [i.meta["dicom"].get("series_instance_uid")]},
            "00080016": {"vr": "UI", "Value": [i.meta["dicom"].get("sop_class_uid")]},
            "00080018": {"vr": "UI", "Value": [i.meta["dicom"].get("sop_instance_uid")]},
            "00080060": {"vr": "CS", "Value": [i.meta["dicom"].get("modality") or ""]},
            "7FF10011": {"vr": "LO", "Value": [i.slot]},  # the vitalens input slot (private)
        }
        for i in rows
    ]
