"""Sign-off state of a study: read-only once signed, changed only through an amendment with a reason.

Why a module of its own: every write that can change what a report says (a review of a finding, an annotation, an
input, a new analysis, the study's age or date) must ask the same question — *is this study signed?* — before it
writes, or the page and the pinned PDF drift apart silently (a finding corrected after sign-off while the signed
PDF still said "unreviewed"). :func:`ensure_editable` is that question; the writers in ``feedback``,
``annotations``, ``studies`` and ``analyses`` call it, so the rule lives in one place.

The life of a study's report (versions follow the DICOM SR / FHIR ``final`` → ``amended`` practice):

    unsigned (editable) → signed v1 (read-only) → amendment v2 opened with a reason (editable) → signed v2 ...

Every signed version keeps its pinned PDF and its content snapshot, so each stays retrievable as it was signed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import Conflict, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.store.models import Report, Study, User

__all__ = [
    "MIN_REASON_CHARS",
    "SignState",
    "sign_state",
    "ensure_editable",
    "open_amendment",
    "report_versions",
    "snapshot_of",
    "snapshot_hash",
]

logger = logging.getLogger(__name__)

#: An amendment's reason must say something ("typo" is 4 characters); blank or one-word noise is refused.
MIN_REASON_CHARS = 4
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class SignState:
    """Where a study stands: ``unsigned``, ``signed`` (read-only) or ``amending`` (an amendment is open)."""

    state: str
    signed: Report | None
    amendment: Report | None

    @property
    def editable(self) -> bool:
        return self.state != "signed"


def _newest(session: Session, study_id: str, status: str) -> Report | None:
    return session.scalar(
        select(Report)
        .where(Report.study_id == study_id, Report.status == status)
        .order_by(Report.version.desc(), Report.created_at.desc())
        .limit(1)
    )


def sign_state(session: Session, study: Study) -> SignState:
    """The study's sign-off state (no access check: callers resolved ``study`` through ``visible``)."""
    signed = _newest(session, study.id, "signed")
    draft = _newest(session, study.id, "draft")
    amendment = draft if draft is not None and signed is not None and draft.version > signed.version else None
    if signed is None:
        return SignState("unsigned", None, None)
    return SignState("amending" if amendment is not None else "signed", signed, amendment)


def ensure_editable(session: Session, study: Study) -> None:
    """Raise :class:`Conflict` when ``study`` is signed and no amendment is open (the study is read-only).

    The reason names the signer and the way out, so a caller (API, page, CLI) can show it as it is.
    """
    st = sign_state(session, study)
    if st.editable:
        return
    signed = st.signed
    if signed is None:  # not editable means a signed version exists (sign_state's invariant)
        raise RuntimeError(f"study {study.id} is read-only but has no signed report")
    signer = session.get(User, signed.signed_by_id) if signed.signed_by_id else None
    who = (signer.full_name or signer.email) if signer else "a clinician"
    when = signed.signed_at.strftime("%Y-%m-%d %H:%M UTC") if signed.signed_at else "earlier"
    raise Conflict(
        f"study {study.id} was signed off by {who} on {when} (report version {signed.version}) and is read-only; "
        "open an amendment with a reason to change it"
    )


def open_amendment(*, session: Session, user: User, study_id: str, reason: str) -> Report:
    """Open an amendment of the signed report: the study becomes editable until the amendment is signed.

    Args:
        reason: why the signed report must change (kept in the report history and printed on the amended PDF).

    Raises:
        NotFound: no such study in the user's site.
        InputError: the reason is blank or too short/long.
        Conflict: the study is not signed, or an amendment is already open.
    """
    require(user, "report.sign")
    study = visible(session, user, Study, study_id)
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_REASON_CHARS:
        raise InputError(
            f"an amendment needs a reason of at least {MIN_REASON_CHARS} characters (why the signed report changes)",
            field="reason",
        )
    if len(reason) > MAX_REASON_CHARS:
        raise InputError(f"reason has {len(reason)} characters; at most {MAX_REASON_CHARS}", field="reason")
    st = sign_state(session, study)
    if st.state == "unsigned":
        raise Conflict(f"study {study.id} is not signed off; change it directly, no amendment is needed")
    if st.state == "amending":
        version = st.amendment.version if st.amendment is not None else "?"
        raise Conflict(f"an amendment (version {version}) of study {study.id} is already open")
    signed = st.signed
    if signed is None:  # signed or amending states carry their signed version (sign_state's invariant)
        raise RuntimeError(f"study {study.id} is marked signed but has no signed report")
    draft = Report(
        study_id=study.id,
        analysis_id=signed.analysis_id,
        status="draft",
        version=signed.version + 1,
        amends_id=signed.id,
        amendment_reason=reason,
        created_by_id=user.id,
    )
    session.add(draft)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="report.amend",
        record_type="report",
        record_id=draft.id,
        patient_id=study.patient_id,
        detail={"amends": signed.id, "version": draft.version, "reason": reason},
    )
    session.commit()
    logger.info("amendment v%d of study %s opened by %s", draft.version, study.id, user.id)
    return draft


def report_versions(*, session: Session, user: User, study_id: str) -> tuple[SignState, list[Report]]:
    """The study's sign-off state and every report version (signed ones and an open amendment), oldest first."""
    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    rows = list(
        session.scalars(
            select(Report).where(Report.study_id == study.id).order_by(Report.version, Report.created_at)
        ).all()
    )
    return sign_state(session, study), rows


def snapshot_of(report: Any, input_hashes: dict[str, str]) -> dict[str, Any]:
    """What a signature covers, as JSON: every finding with its review, measurement, annotation and input hash.

    Images and overlays are covered through the input hashes and the pinned PDF's sha256; the snapshot is what a
    later reader compares against the study as it is now (``drifted`` in the report history).
    """
    return {
        "study_date": report.study_date.isoformat() if report.study_date else None,
        "age_years": report.age_years,
        "inputs": dict(sorted(input_hashes.items())),
        "analyses": [
            {
                "analyzer": a.analyzer,
                "model_version": a.model_version,
                "status": a.status,
                "band": a.band,
                "tier": a.tier,
                "findings": [
                    {
                        "code": f.code,
                        "probability": round(float(f.probability), 6),
                        "positive": f.positive,
                        "review": f.review,
                        "corrected_positive": f.corrected_positive,
                        "review_note": f.review_note,
                    }
                    for f in a.findings
                ],
                "measurements": [
                    {"name": m.name, "value": m.value, "unit": m.unit, "flag": m.flag} for m in a.measurements
                ],
            }
            for a in report.analyses
        ],
        "annotations": [
            {"input": n.input_name, "kind": n.kind, "label": n.label, "note": n.note, "version": n.version}
            for n in report.annotations
        ],
    }


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    """sha256 of the snapshot's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
