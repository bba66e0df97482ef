"""The body of an analysis job: claim it, run each analyzer as a timed stage, store the results in one commit.

Why here and idempotent: the same analysis id can be delivered twice (Celery re-delivery after a worker died,
a re-queue at restart). A finished analysis is never re-run; a running one is left to its live owner; one whose
owner died is taken over. "Alive" is a lease the owner's heartbeat renews (:mod:`vitalens.service.jobs.lease`),
so this holds across hosts: a delivery that finds a live lease waits until it is renewed (the owner works: leave
it) or lapses (the owner died: take over). Findings, measurements and explanation blobs of an analysis are written
in a single transaction with its final status, and only while this process still holds the job, so a crash leaves
either all of them or none and a job taken over (or quarantined by the memory guard) is never overwritten.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from vitalens.domain import AnalysisResult, AnalysisStatus, StudyInputs
from vitalens.errors import InputError
from vitalens.service.jobs._context import JobContext
from vitalens.service.jobs.lease import JobLease, lease_alive, owner_alive

__all__ = ["execute_analysis", "owner_alive", "FINAL_STATUSES", "VALIDATE_STAGE", "REPORT_STAGE"]

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({AnalysisStatus.COMPLETE, AnalysisStatus.PARTIAL, AnalysisStatus.FAILED})
VALIDATE_STAGE = "validate"
REPORT_STAGE = "report"


@dataclass
class _StageOutcome:
    name: str
    status: str = "PENDING"
    error: str | None = None
    result: AnalysisResult | None = None
    started: float | None = None
    duration_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: What :func:`_claim` found: the job is now ours, nothing is left to do, or a live owner (maybe) holds it.
CLAIMED, NOTHING_TO_DO, HELD = "claimed", "nothing to do", "held"


def _claim(ctx: JobContext, analysis_id: str) -> tuple[str, tuple[Any, ...]]:
    """Atomically mark the analysis RUNNING under this process, with a fresh lease.

    Returns:
        ``(CLAIMED | NOTHING_TO_DO | HELD, (worker, lease_expires_at, heartbeat_at))`` — the last as found.
    """
    from sqlalchemy import update

    from vitalens.store import Analysis, utcnow

    with ctx.session_factory() as session:
        analysis = session.get(Analysis, analysis_id)
        if analysis is None:
            logger.warning("analysis %s: no such analysis (deleted?); job dropped", analysis_id)
            return NOTHING_TO_DO, ()
        seen = (analysis.worker, analysis.lease_expires_at, analysis.heartbeat_at)
        if analysis.status in FINAL_STATUSES:
            logger.info("analysis %s already %s; re-delivery ignored", analysis_id, analysis.status)
            return NOTHING_TO_DO, seen
        now = utcnow()
        if analysis.status == AnalysisStatus.RUNNING and analysis.worker == ctx.tag:
            logger.info("analysis %s already running in this process", analysis_id)
            return NOTHING_TO_DO, seen
        if analysis.status == AnalysisStatus.RUNNING and lease_alive(analysis.worker, analysis.lease_expires_at, now):
            return HELD, seen
        stmt = (
            update(Analysis)
            .where(Analysis.id == analysis_id, Analysis.status == analysis.status)
            .where(Analysis.worker.is_(None) if analysis.worker is None else Analysis.worker == analysis.worker)
            .values(
                status=AnalysisStatus.RUNNING.value,
                worker=ctx.tag,
                attempts=Analysis.attempts + 1,
                started_at=now,
                error=None,
                lease_expires_at=now + timedelta(seconds=ctx.lease_s),
                heartbeat_at=now,
            )
        )
        claimed = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
        session.commit()
        if not claimed:
            logger.info("analysis %s was claimed by another delivery first", analysis_id)
            return HELD, seen
        if analysis.status == AnalysisStatus.RUNNING:
            logger.warning("analysis %s: took over from %s (its lease lapsed)", analysis_id, analysis.worker)
        return CLAIMED, seen


def _claim_or_wait(ctx: JobContext, analysis_id: str, *, wait: bool) -> bool:
    """Claim the job; if a live lease holds it, watch it for up to 1.5 leases: renewed → the owner works (False),
    lapsed → take it over (True). Without ``wait``, a held job is left at once."""
    state, seen = _claim(ctx, analysis_id)
    if state != HELD or not wait:
        return state == CLAIMED
    logger.info("analysis %s is held by %s; watching its lease", analysis_id, seen[0] if seen else None)
    deadline = time.monotonic() + 1.5 * ctx.lease_s + 1.0
    poll = min(1.0, max(0.1, ctx.lease_s / 8.0))
    while time.monotonic() < deadline:
        time.sleep(poll)
        state, now_seen = _claim(ctx, analysis_id)
        if state != HELD:
            return state == CLAIMED
        if seen and now_seen and now_seen[0] == seen[0] and now_seen[2] != seen[2]:
            logger.info("analysis %s: its owner %s renewed its lease; re-delivery ignored", analysis_id, seen[0])
            return False
        seen = now_seen or seen
    logger.info("analysis %s: still held after %.0f s; re-delivery ignored", analysis_id, 1.5 * ctx.lease_s)
    return False


def _load_inputs(ctx: JobContext, analysis_id: str) -> tuple[StudyInputs, dict[str, str], dict[str, str], list[str]]:
    """Decode the study's inputs from the blob store.

    Returns:
        (inputs, slot → input id, slot → decode error, analyzer names requested).
    """
    from vitalens.service.ops.inputs import decode_input
    from vitalens.slots import get_slot
    from vitalens.store import Analysis

    with ctx.session_factory() as session:
        analysis = session.get(Analysis, analysis_id)
        if analysis is None:
            raise LookupError(f"analysis {analysis_id} disappeared while it ran")
        study = analysis.study
        rows = [i for i in study.inputs if i.deleted_at is None]
        names = list(analysis.analyzers or [])
        from vitalens.service.ops.studies import study_field_values

        fields = study_field_values(study)  # the age, the note
        sex = study.patient.sex if study.patient is not None else None
        stored = {
            r.slot: (r.id, r.blob_key, _StoredInput(r.slot, r.filename, dict(r.meta or {})))
            for r in sorted(rows, key=_input_order)
        }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    ids: dict[str, str] = {}
    for slot, (input_id, key, row) in stored.items():
        ids[slot] = input_id
        try:
            # the slot's own decoder, with the hints the file was uploaded with (a CSV ECG's sampling rate)
            values[get_slot(slot).attribute] = decode_input(row, ctx.blobs.get(key), settings=ctx.settings)
        except Exception as exc:  # noqa: BLE001 - one bad input fails only the analyzers that need it
            errors[slot] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, InputError) else str(exc)
            logger.warning("analysis %s: input %s could not be decoded: %s", analysis_id, slot, exc)
    from vitalens.slots import get_slot

    for slot, value in fields.items():
        values[get_slot(slot).attribute] = value
    if sex and sex != "unknown":
        values["sex"] = sex
    return StudyInputs(**values), ids, errors, names


def _input_order(row: Any) -> Any:
    return row.created_at


@dataclass(frozen=True)
class _StoredInput:
    """What decoding a stored input needs from its row, read inside the session."""

    slot: str
    filename: str
    meta: dict[str, Any]


def _run_stage(ctx: JobContext, name: str, inputs: StudyInputs, input_errors: dict[str, str]) -> _StageOutcome:
    from vitalens.analyzers import get_spec

    out = _StageOutcome(name=name, started=time.perf_counter())
    try:
        spec = get_spec(name)
        bad = [str(n) for n in spec.inputs if str(n) in input_errors]
        if bad:
            raise InputError(f"input {bad[0]} could not be read: {input_errors[bad[0]]}", field=bad[0])
        analyzer = ctx.registry.get(name)
        out.result = analyzer(inputs, explain=True)
        out.status = "COMPLETE"
    except InputError as exc:
        out.status, out.error = "FAILED", str(exc)
        logger.info("analysis stage %s: input refused: %s", name, exc)
    except Exception as exc:  # noqa: BLE001 - an analyzer crash fails its stage, not the job
        out.status, out.error = "FAILED", f"{type(exc).__name__}: {exc}"
        logger.exception("analysis stage %s crashed", name)
    out.duration_ms = (time.perf_counter() - (out.started or 0.0)) * 1000.0
    return out


def _npy_bytes(array: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _set_stage(ctx: JobContext, analysis_id: str, name: str, **values: Any) -> None:
    from sqlalchemy import update

    from vitalens.store import AnalysisStage

    with ctx.session_factory() as session:
        session.execute(
            update(AnalysisStage)
            .where(AnalysisStage.analysis_id == analysis_id, AnalysisStage.name == name)
            .values(**values)
        )
        session.commit()


def _reset_stages(ctx: JobContext, analysis_id: str, analyzer_names: list[str]) -> None:
    """Drop anything an interrupted attempt left and lay out the stages afresh (validate, analyzers, report)."""
    from sqlalchemy import delete

    from vitalens.store import AnalysisStage, Explanation, Finding, Measurement

    with ctx.session_factory() as session:
        for model in (Finding, Measurement, Explanation, AnalysisStage):
            session.execute(delete(model).where(model.analysis_id == analysis_id))
        for position, name in enumerate([VALIDATE_STAGE, *analyzer_names, REPORT_STAGE]):
            session.add(
                AnalysisStage(
                    analysis_id=analysis_id,
                    position=position,
                    name=name,
                    analyzer=name if name not in (VALIDATE_STAGE, REPORT_STAGE) else None,
                    status="PENDING",
                )
            )
        session.commit()


def _finish(
    ctx: JobContext,
    analysis_id: str,
    outcomes: list[_StageOutcome],
    input_ids: dict[str, str],
    report_started: float,
    lease: JobLease | None = None,
) -> str:
    """Write every result row and the final status in one transaction (blobs staged with it), only while this
    process still holds the job: one taken over or quarantined meanwhile keeps what its new state says."""
    from vitalens.store import Analysis, AnalysisStage, Explanation, Finding, Measurement, atomic, utcnow

    ok = [o for o in outcomes if o.status == "COMPLETE"]
    failed = [o for o in outcomes if o.status != "COMPLETE"]
    if not outcomes:
        status, error = AnalysisStatus.FAILED, "no analyzer applies to the study's inputs"
    elif not ok:
        status = AnalysisStatus.FAILED
        error = "; ".join(f"{o.name} failed: {o.error}" for o in failed)
    elif failed:
        status = AnalysisStatus.PARTIAL
        error = "; ".join(f"{o.name} failed: {o.error}" for o in failed)
    else:
        status, error = AnalysisStatus.COMPLETE, None
    with ctx.session_factory() as session, atomic(session, ctx.blobs) as staged:
        analysis = session.get(Analysis, analysis_id)
        if analysis is None:
            raise LookupError(f"analysis {analysis_id} disappeared while it ran")
        if (lease is not None and lease.lost) or analysis.status != "RUNNING" or analysis.worker != ctx.tag:
            logger.warning(
                "analysis %s is no longer ours (%s by %s); results of this attempt discarded",
                analysis_id,
                analysis.status,
                analysis.worker,
            )
            return str(analysis.status)
        stages = {s.name: s for s in session.query(AnalysisStage).filter_by(analysis_id=analysis_id)}
        versions: dict[str, Any] = {}
        for o in outcomes:
            stage = stages[o.name]
            stage.status, stage.error, stage.duration_ms = o.status, o.error, o.duration_ms
            stage.finished_at = utcnow()
            r = o.result
            if r is None:
                continue
            stage.model_name, stage.model_version, stage.demonstration = r.model.name, r.model.version, r.demonstration
            stage.result = r.model_dump(mode="json", exclude={"explanations"})
            versions[o.name] = {
                "model": r.model.name,
                "version": r.model.version,
                "demonstration": r.demonstration,
                "sha256": (r.card or {}).get("sha256"),
            }
            # An analyzer that tiers its findings one by one (the ECG: abnormal classes only) has said which carry
            # none (Normal is the absence of findings, not a risk); only an analyzer with no per-finding tiers
            # lends its overall tier to each finding.
            per_finding_tiers = any(f.tier is not None for f in r.findings)
            for f in r.findings:
                tier = f.tier if per_finding_tiers else r.tier
                session.add(
                    Finding(
                        analysis_id=analysis_id,
                        stage_id=stage.id,
                        analyzer=o.name,
                        code=f.code,
                        label=f.name,
                        input_name=f.input_name,
                        probability=f.probability,
                        threshold=f.threshold,
                        positive=f.positive,
                        calibrated=f.calibrated,
                        band=r.band.value if r.band else None,
                        tier=tier.value if tier is not None else None,
                    )
                )
            for m in r.measurements:
                session.add(
                    Measurement(
                        analysis_id=analysis_id,
                        stage_id=stage.id,
                        analyzer=o.name,
                        name=m.name,
                        value=m.value,
                        unit=m.unit,
                        reference_low=m.reference_low,
                        reference_high=m.reference_high,
                        flag=m.flag,
                        method=m.method,
                    )
                )
            for e in r.explanations:
                session.add(
                    Explanation(
                        analysis_id=analysis_id,
                        stage_id=stage.id,
                        analyzer=o.name,
                        target=e.target,
                        input_name=e.input_name,
                        input_id=input_ids.get(e.input_name),
                        method=e.method,
                        heatmap_blob_key=staged.put(_npy_bytes(e.heatmap)) if e.heatmap is not None else None,
                        overlay_blob_key=staged.put(e.overlay_png) if e.overlay_png else None,
                        note=e.note,
                    )
                )
        report = stages[REPORT_STAGE]
        report.status = "COMPLETE"
        report.started_at = report.finished_at = utcnow()
        report.duration_ms = (time.perf_counter() - report_started) * 1000.0
        analysis.status, analysis.error, analysis.versions = status.value, error, versions
        analysis.finished_at = utcnow()
        analysis.lease_expires_at = None
    logger.info("analysis %s finished %s", analysis_id, status.value)
    return status.value


def _fail(ctx: JobContext, analysis_id: str, reason: str) -> None:
    from sqlalchemy import update

    from vitalens.store import Analysis, utcnow

    with ctx.session_factory() as session:
        session.execute(
            update(Analysis)
            .where(Analysis.id == analysis_id, Analysis.status == "RUNNING", Analysis.worker == ctx.tag)
            .values(status="FAILED", error=reason[:4000], finished_at=utcnow(), lease_expires_at=None)
        )
        session.commit()


def execute_analysis(analysis_id: str, *, ctx: JobContext, wait: bool = True) -> str:
    """Run analysis ``analysis_id`` to a final status (idempotent; safe to call for any delivery).

    Args:
        analysis_id: the Analysis row's id (also the task key).
        ctx: this process's sessions, blob store and model registry.
        wait: when another owner's live lease holds the job, watch it (up to 1.5 leases) and take over if it
            lapses; False leaves a held job at once.

    Returns:
        The final status (``COMPLETE``/``PARTIAL``/``FAILED``), or ``"SKIPPED"`` when another delivery owns it
        or it was already finished.
    """
    from vitalens.service import metrics

    if not _claim_or_wait(ctx, analysis_id, wait=wait):
        return "SKIPPED"
    t_job = time.perf_counter()
    with JobLease(ctx.jobs, analysis_id) as lease:
        status = _run_claimed(ctx, analysis_id, lease)
    metrics.ANALYSES_FINISHED.labels(status=status).inc()
    metrics.ANALYSIS_SECONDS.observe(time.perf_counter() - t_job)
    return status


def _run_claimed(ctx: JobContext, analysis_id: str, lease: JobLease) -> str:
    """The stages of a job this process holds (its lease renewed meanwhile); returns the final status."""
    from vitalens.service import metrics
    from vitalens.store import utcnow

    try:
        from vitalens.store import Analysis

        with ctx.session_factory() as session:
            analysis = session.get(Analysis, analysis_id)
            names = list(analysis.analyzers or []) if analysis is not None else []
        _reset_stages(ctx, analysis_id, names)
        t0 = time.perf_counter()
        _set_stage(ctx, analysis_id, VALIDATE_STAGE, status="RUNNING", started_at=utcnow())
        inputs, input_ids, input_errors, names = _load_inputs(ctx, analysis_id)
        nothing_read = bool(input_errors) and not (input_ids.keys() - input_errors.keys())
        _set_stage(
            ctx,
            analysis_id,
            VALIDATE_STAGE,
            status="FAILED" if nothing_read else "COMPLETE",
            error="; ".join(f"{k}: {v}" for k, v in input_errors.items()) or None,
            finished_at=utcnow(),
            duration_ms=(time.perf_counter() - t0) * 1000.0,
        )
        outcomes = []
        for name in names:
            if lease.lost:  # quarantined by the memory guard, or taken over: stop here
                break
            _set_stage(ctx, analysis_id, name, status="RUNNING", started_at=utcnow())
            outcome = _run_stage(ctx, name, inputs, input_errors)
            _set_stage(
                ctx,
                analysis_id,
                name,
                status=outcome.status,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                finished_at=utcnow(),
            )
            metrics.ANALYZER_SECONDS.labels(analyzer=name, status=outcome.status).observe(
                (outcome.duration_ms or 0.0) / 1000.0
            )
            outcomes.append(outcome)
        return _finish(ctx, analysis_id, outcomes, input_ids, time.perf_counter(), lease)
    except Exception as exc:
        logger.exception("analysis %s: job failed", analysis_id)
        _fail(ctx, analysis_id, f"job error: {type(exc).__name__}: {exc}")
        return AnalysisStatus.FAILED.value
