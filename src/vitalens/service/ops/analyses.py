"""Analyses of a study: request one (which analyzers apply), read it with its stages, findings and timings.

Why split from the job: requesting writes a PENDING row and its audit event in one commit and returns at once
(HTTP 202); the work itself is ``vitalens.service.jobs.execute.execute_analysis``, run by whichever job runner
is configured. Every lookup goes through :func:`vitalens.service.ops.scope.visible`: another site's study or
analysis, or one of a deleted patient, is :class:`NotFound`.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vitalens.service.ops import Conflict, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.service.ops.signing import ensure_editable
from vitalens.store.models import Analysis, Explanation, Input, Study, User, utcnow

__all__ = [
    "analysis_plan",
    "applicable_analyzers",
    "create_analysis",
    "get_analysis",
    "list_analyses",
    "get_explanation",
    "poll_after_s",
    "study_slots",
]

logger = logging.getLogger(__name__)


def _keyed(session: Session, study: Study, job_key: str) -> Analysis | None:
    """The analysis of ``study`` submitted with ``job_key`` (keys are unique per study)."""
    return session.scalar(select(Analysis).where(Analysis.study_id == study.id, Analysis.job_key == job_key))


def study_slots(session: Session, study: Study) -> set[str]:
    """Input slots the study holds (``age`` and ``notes`` count when the study has an age, a note)."""
    from vitalens.service.ops.studies import study_field_values

    slots = set(session.scalars(select(Input.slot).where(Input.study_id == study.id, Input.deleted_at.is_(None))).all())
    slots |= set(study_field_values(study))  # the age, the note
    if study.patient is not None and study.patient.sex not in (None, "unknown"):
        slots.add("sex")
    return slots


def applicable_analyzers(slots: set[str]) -> list[str]:
    """Registered analyzers whose requirements ``slots`` satisfy (every required slot, one of each group)."""
    from vitalens.analyzers import get_spec, list_analyzers

    return [n for n in list_analyzers() if get_spec(n).applies_to(slots)]


def analysis_plan(slots: Sequence[str] | set[str]) -> dict[str, object]:
    """Which analyzers will run on a study holding ``slots``, and what each of the others lacks.

    Why: a study saved without the age or one eye cannot be analysed; the form shows this plan *before* submitting
    (and the study page for a saved study), so the clinician sees "Eyes → heart needs age" instead of a failure.

    Raises:
        UnknownNameError: a slot name is not registered (lists the valid ones).
    """
    from vitalens.analyzers import get_spec, list_analyzers
    from vitalens.slots import get_slot

    have = set(slots)
    for name in sorted(have):
        get_slot(name)  # unknown slot: a helpful error naming the valid ones
    will_run, cannot_run = [], []
    for name in list_analyzers():
        spec = get_spec(name)
        entry: dict[str, object] = {"name": name, "title": spec.title or name}
        gaps = spec.missing(have)
        if gaps:
            cannot_run.append({**entry, "missing": gaps, "needs": spec.requirement_text()})
        else:
            will_run.append(entry)
    return {"slots": sorted(have), "will_run": will_run, "cannot_run": cannot_run}


def create_analysis(
    *, session: Session, user: User, study_id: str, analyzers: Sequence[str] | None = None, job_key: str | None = None
) -> Analysis:
    """Record a PENDING analysis of ``study_id`` (the caller then submits ``analysis.id`` to the job runner).

    Args:
        session: the caller's session (committed here, with the audit event).
        user: who asks (needs ``analysis.create`` in the study's site).
        study_id: the study.
        analyzers: analyzer names; None or empty runs every analyzer that applies to the study's inputs.
        job_key: an idempotency key: a second request with the same key on the same study returns the first
            analysis; the same key on another study of the site is a :class:`Conflict` (409); other sites' keys
            are never consulted, so no answer tells a caller what another site sent.

    Raises:
        NotFound: no such study in the user's site.
        Conflict: ``job_key`` was used for another study of the site.
        UnknownNameError: an analyzer name is not registered (lists the valid ones).
        InputError: a named analyzer needs inputs the study lacks, or none applies.
    """
    from vitalens.analyzers import get_spec
    from vitalens.errors import InputError, UnknownNameError

    require(user, "analysis.create")
    study = visible(session, user, Study, study_id)
    if job_key:
        existing = _keyed(session, study, job_key)
        if existing is not None:
            return existing
        elsewhere = session.scalar(
            select(Analysis.id)
            .join(Study, Study.id == Analysis.study_id)
            .where(Analysis.job_key == job_key, Study.site_id == user.site_id)
            .limit(1)
        )
        if elsewhere is not None:  # keys are the site's namespace: another site's keys are never looked at
            raise Conflict(f"job_key {job_key!r} was already used for another study of your site; use a new key")
    ensure_editable(session, study)  # a new analysis of a signed study would change what its report says
    slots = study_slots(session, study)
    if analyzers:
        names = list(dict.fromkeys(analyzers))
        for name in names:
            try:
                get_spec(name)
            except UnknownNameError as exc:
                raise InputError(str(exc), field="analyzers") from None
        for name in names:
            missing = get_spec(name).missing(slots)  # required slots and "one of" groups (each eye present)
            if missing:
                raise InputError(
                    f"analyzer {name} needs {get_spec(name).requirement_text()}; the study lacks {', '.join(missing)}",
                    field=missing[0].split(" or ")[0],
                )
    else:
        names = applicable_analyzers(slots)
        if not names:
            raise InputError(
                f"no analyzer applies to this study's inputs ({', '.join(sorted(slots)) or 'none'})", field="inputs"
            )
    analysis = Analysis(study_id=study.id, status="PENDING", analyzers=names, job_key=job_key, requested_by_id=user.id)
    session.add(analysis)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request with the same key on this study won the race: answer with its job
        session.rollback()
        winner = _keyed(session, visible(session, user, Study, study_id), job_key) if job_key else None
        if winner is None:
            raise
        return winner
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
    analysis = visible(session, user, Analysis, analysis_id)
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
    study = visible(session, user, Study, study_id)
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
    explanation = visible(session, user, Explanation, explanation_id)
    analysis = explanation.analysis
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


#: Bounds of the poll hint, s: never sooner than a second, never so late that a finished result waits long.
POLL_AFTER_MIN_S, POLL_AFTER_MAX_S = 1, 30
#: Finished analyses whose run time (start to finish) estimates the next one's.
RECENT_JOBS = 20
#: The estimate before any analysis has finished on this database, s.
DEFAULT_JOB_S = 2.0


def poll_after_s(*, session: Session, analysis: Analysis, now: datetime | None = None) -> int | None:
    """Seconds a client should wait before asking about ``analysis`` again (HTTP ``Retry-After``); ``None`` when
    it is final.

    Why: every read of an analysis is audited (a row and a commit), and the web app and API clients polled every
    0.5–0.8 s; under load (``bench/load.py --db postgres --clients 50``) 5,500 polls in 161 s took the CPU the
    analyses needed (each ran 2.8 s in the service against 0.23 s alone). The hint is half the expected remaining
    time (so a client asks about twice per wait, and a wrong estimate costs little): the median run time of the
    last :data:`RECENT_JOBS` finished analyses, minus what a running one has had, or for a queued one the rounds
    ahead of it (queued analyses created before it, over the analyses running now) plus its own run, clamped to
    [:data:`POLL_AFTER_MIN_S`, :data:`POLL_AFTER_MAX_S`]. Only counts and timings of the whole instance are read,
    no other site's records.
    """
    if analysis.status not in ("PENDING", "RUNNING"):
        return None
    now = now or utcnow()
    recent = session.execute(
        select(Analysis.started_at, Analysis.finished_at)
        .where(Analysis.started_at.is_not(None), Analysis.finished_at.is_not(None))
        .order_by(Analysis.finished_at.desc())
        .limit(RECENT_JOBS)
    ).all()
    durations = [
        (end - start).total_seconds() for start, end in recent if start is not None and end is not None and end >= start
    ]
    job_s = statistics.median(durations) if durations else DEFAULT_JOB_S
    if analysis.status == "RUNNING":
        elapsed = (now - analysis.started_at).total_seconds() if analysis.started_at is not None else 0.0
        remaining = max(job_s - elapsed, 0.0)
    else:
        running = session.scalar(select(func.count()).select_from(Analysis).where(Analysis.status == "RUNNING"))
        ahead = session.scalar(
            select(func.count())
            .select_from(Analysis)
            .where(Analysis.status == "PENDING", Analysis.created_at < analysis.created_at)
        )
        remaining = (int(ahead or 0) / max(1, int(running or 0))) * job_s + job_s
    return int(min(max(math.ceil(remaining / 2.0), POLL_AFTER_MIN_S), POLL_AFTER_MAX_S))
