"""Analyses of a study: request one (which analyzers apply), read it with its stages, findings and timings.

Why split from the job: requesting writes a PENDING row and its audit event in one commit and returns at once
(HTTP 202); the work itself is ``vitalens.service.jobs.execute.execute_analysis``, run by whichever job runner
is configured. Every lookup is site-scoped: another site's study or analysis is :class:`NotFound`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.service.ops import NotFound, require
from vitalens.service.ops.audit import record_event
from vitalens.store.models import Analysis, Explanation, Input, Study, User

__all__ = [
    "applicable_analyzers",
    "create_analysis",
    "get_analysis",
    "list_analyses",
    "scoped_study",
    "scoped_analysis",
    "study_slots",
]

logger = logging.getLogger(__name__)


def scoped_study(session: Session, user: User, study_id: str) -> Study:
    """The study ``study_id`` of the user's site (not deleted), else :class:`NotFound`."""
    study = session.get(Study, study_id)
    if study is None or study.site_id != user.site_id or study.deleted_at is not None:
        raise NotFound(f"study {study_id} not found")
    return study


def scoped_analysis(session: Session, user: User, analysis_id: str) -> Analysis:
    """The analysis ``analysis_id`` of a study of the user's site, else :class:`NotFound`."""
    analysis = session.get(Analysis, analysis_id)
    if analysis is None:
        raise NotFound(f"analysis {analysis_id} not found")
    study = analysis.study
    if study is None or study.site_id != user.site_id or study.deleted_at is not None:
        raise NotFound(f"analysis {analysis_id} not found")
    return analysis


def study_slots(session: Session, study: Study) -> set[str]:
    """Input slots the study holds (``age`` counts when the study has an age)."""
    slots = set(session.scalars(select(Input.slot).where(Input.study_id == study.id, Input.deleted_at.is_(None))).all())
    if study.age_years is not None:
        slots.add("age")
    if study.patient is not None and study.patient.sex not in (None, "unknown"):
        slots.add("sex")
    return slots


def applicable_analyzers(slots: set[str]) -> list[str]:
    """Registered analyzers whose every required input is among ``slots``."""
    from vitalens.analyzers import get_spec, list_analyzers

    return [n for n in list_analyzers() if all(str(i) in slots for i in get_spec(n).inputs)]


def create_analysis(
    *, session: Session, user: User, study_id: str, analyzers: Sequence[str] | None = None, job_key: str | None = None
) -> Analysis:
    """Record a PENDING analysis of ``study_id`` (the caller then submits ``analysis.id`` to the job runner).

    Args:
        session: the caller's session (committed here, with the audit event).
        user: who asks (needs ``analysis.create`` in the study's site).
        study_id: the study.
        analyzers: analyzer names; None or empty runs every analyzer that applies to the study's inputs.
        job_key: an idempotency key: a second request with the same key returns the first analysis.

    Raises:
        NotFound: no such study in the user's site.
        UnknownNameError: an analyzer name is not registered (lists the valid ones).
        InputError: a named analyzer needs inputs the study lacks, or none applies.
    """
    from vitalens.analyzers import get_spec
    from vitalens.errors import InputError

    require(user, "analysis.create")
    study = scoped_study(session, user, study_id)
    if job_key:
        existing = session.scalar(select(Analysis).where(Analysis.job_key == job_key))
        if existing is not None and existing.study_id == study.id:
            return existing
    slots = study_slots(session, study)
    if analyzers:
        names = list(dict.fromkeys(analyzers))
        for name in names:
            missing = [str(i) for i in get_spec(name).inputs if str(i) not in slots]
            if missing:
                raise InputError(
                    f"analyzer {name} needs {', '.join(str(i) for i in get_spec(name).inputs)}; "
                    f"the study lacks {', '.join(missing)}",
                    field=missing[0],
                )
    else:
        names = applicable_analyzers(slots)
        if not names:
            raise InputError(
                f"no analyzer applies to this study's inputs ({', '.join(sorted(slots)) or 'none'})", field="inputs"
            )
    analysis = Analysis(study_id=study.id, status="PENDING", analyzers=names, job_key=job_key, requested_by_id=user.id)
    session.add(analysis)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="analysis.create",
        record_type="analysis",
        record_id=analysis.id,
        patient_id=study.patient_id,
        detail={"analyzers": names},
    )
    session.commit()
    logger.info("analysis %s of study %s requested: %s", analysis.id, study.id, names)
    return analysis


def get_analysis(*, session: Session, user: User, analysis_id: str) -> Analysis:
    """The analysis with its stages, findings, measurements and explanations (audited read)."""
    require(user, "analysis.read")
    analysis = scoped_analysis(session, user, analysis_id)
    record_event(
        session=session,
        actor=user,
        action="analysis.read",
        record_type="analysis",
        record_id=analysis.id,
        patient_id=analysis.study.patient_id,
    )
    session.commit()
    return analysis


def list_analyses(*, session: Session, user: User, study_id: str) -> list[Analysis]:
    """Analyses of a study, oldest first (audited read)."""
    require(user, "analysis.read")
    study = scoped_study(session, user, study_id)
    items = list(
        session.scalars(select(Analysis).where(Analysis.study_id == study.id).order_by(Analysis.created_at)).all()
    )
    record_event(
        session=session,
        actor=user,
        action="analysis.list",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
    )
    session.commit()
    return items


def get_explanation(*, session: Session, user: User, explanation_id: str) -> Explanation:
    """An explanation of an analysis of the user's site (audited read)."""
    require(user, "analysis.read")
    explanation = session.get(Explanation, explanation_id)
    if explanation is None:
        raise NotFound(f"explanation {explanation_id} not found")
    try:
        analysis = scoped_analysis(session, user, explanation.analysis_id)
    except NotFound:  # another site's record: answer exactly as for a missing id, so ids do not leak
        raise NotFound(f"explanation {explanation_id} not found") from None
    record_event(
        session=session,
        actor=user,
        action="explanation.read",
        record_type="explanation",
        record_id=explanation.id,
        patient_id=analysis.study.patient_id,
    )
    session.commit()
    return explanation
