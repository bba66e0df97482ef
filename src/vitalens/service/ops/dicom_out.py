"""A study's results as DICOM for the PACS: the signed report as Encapsulated PDF, the findings as an SR.

Why in ops: the routes (and a future DICOM push to a PACS) need the same scoped, audited reads; the builders in
``vitalens.reports.dicom`` only format what :func:`~vitalens.service.ops.reports.build_report_data` gathered.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from sqlalchemy.orm import Session

from vitalens.service.ops import Conflict, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.reports import build_report_data, report_signoff, signed_report
from vitalens.service.ops.scope import visible
from vitalens.store.blobs import BlobStore
from vitalens.store.models import Site, Study, User

__all__ = ["study_dicom_sr", "study_dicom_pdf", "dicom_evidence"]

logger = logging.getLogger(__name__)


def dicom_evidence(session: Session, blobs: BlobStore, study: Study) -> list[Any]:
    """The study's DICOM inputs (their stored, de-identified copies) without pixel data, oldest first."""
    import pydicom

    out = []
    for inp in sorted(study.inputs, key=lambda i: i.created_at):
        if inp.deleted_at is not None or inp.media_type != "application/dicom":
            continue
        try:
            out.append(pydicom.dcmread(io.BytesIO(blobs.get(inp.blob_key)), stop_before_pixels=True))
        except Exception:  # noqa: BLE001 - an unreadable input is skipped as evidence, and logged
            logger.warning("input %s of study %s is not readable DICOM; not referenced as evidence", inp.id, study.id)
    return out


def _to_bytes(ds: Any) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _audit(session: Session, user: User, study: Study, fmt: str) -> None:
    record_event(
        session=session,
        actor=user,
        action="report.read",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"format": fmt},
    )
    session.commit()


def study_dicom_sr(*, session: Session, blobs: BlobStore, user: User, study_id: str) -> bytes:
    """The study's results as a TID 1500 Comprehensive SR (PARTIAL/UNVERIFIED until signed); audited read."""
    from vitalens.reports.dicom import build_structured_report

    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    report = build_report_data(session, blobs, study, signoff=report_signoff(session, study))
    site_row = session.get(Site, study.site_id)
    sr = build_structured_report(
        report, evidence=dicom_evidence(session, blobs, study), site=site_row.name if site_row else None
    )
    _audit(session, user, study, "dicom-sr")
    return _to_bytes(sr)


def study_dicom_pdf(*, session: Session, blobs: BlobStore, user: User, study_id: str) -> bytes:
    """The signed PDF, byte for byte, as Encapsulated PDF; audited read.

    Raises:
        Conflict: the study is not signed off (a draft is never sent to a PACS as the report).
    """
    from vitalens.reports.dicom import build_encapsulated_pdf

    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    signed = signed_report(session, study)
    if signed is None or not signed.blob_key:
        raise Conflict(f"study {study.id} is not signed off; only a signed report is exported as DICOM")
    report = build_report_data(session, blobs, study, signoff=report_signoff(session, study))
    evidence = dicom_evidence(session, blobs, study)
    ds = build_encapsulated_pdf(report, blobs.get(signed.blob_key), source=evidence[0] if evidence else None)
    _audit(session, user, study, "dicom-pdf")
    return _to_bytes(ds)
