"""Crash recovery: analyses left PENDING or RUNNING by a dead process are re-queued or marked FAILED.

Why: a ``kill -9`` of the API (in-process jobs) or of a Celery worker leaves rows that say RUNNING forever.
At start-up each process looks for them, and the API keeps looking every lease (:func:`reaper`): a RUNNING row whose
lease lapsed (its owner, on any host, stopped renewing it; on this host a dead pid releases it at once), and at
start-up every PENDING row (its queue message may have died with an in-process pool), is re-queued while it has
attempts left, else marked FAILED with the reason. Re-queuing is safe because jobs are idempotent by analysis id.
A job the memory guard quarantined is already FAILED and is never re-queued.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from vitalens.service.jobs._base import JobRunner
from vitalens.service.jobs._context import JobContext
from vitalens.service.jobs.lease import lease_alive

__all__ = ["RecoveryReport", "recover_interrupted", "reaper", "MAX_ATTEMPTS"]

logger = logging.getLogger(__name__)

#: An analysis interrupted this many times is marked FAILED instead of being re-queued again.
MAX_ATTEMPTS = 3


@dataclass
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)


def recover_interrupted(
    ctx: JobContext, runner: JobRunner | None, *, max_attempts: int = MAX_ATTEMPTS, include_pending: bool = True
) -> RecoveryReport:
    """Find interrupted analyses and re-queue them on ``runner`` (or fail them when it is None / exhausted).

    Args:
        ctx: sessions of this process (its ``tag`` identifies live jobs of this very process).
        runner: where to re-queue; None marks every interrupted analysis FAILED.
        max_attempts: attempts after which an analysis is failed rather than retried.
        include_pending: also re-submit PENDING analyses (their queue message may be lost).

    Returns:
        Which analysis ids were re-queued, failed, or left alone because a live process runs them.
    """
    from sqlalchemy import select, update

    from vitalens.service import metrics
    from vitalens.store import Analysis, utcnow

    report = RecoveryReport()
    statuses = ["RUNNING", "PENDING"] if include_pending else ["RUNNING"]
    busy = runner.running_ids() if runner is not None else None
    with ctx.session_factory() as session:
        now = utcnow()
        rows = session.execute(
            select(Analysis.id, Analysis.status, Analysis.worker, Analysis.attempts, Analysis.lease_expires_at).where(
                Analysis.status.in_(statuses)
            )
        ).all()
        for analysis_id, status, worker, attempts, lease in rows:
            if busy is not None and analysis_id in busy:
                continue
            if status == "RUNNING" and (worker == ctx.tag or lease_alive(worker, lease, now)):
                report.left_running.append(analysis_id)
                continue
            if runner is None or (attempts or 0) >= max_attempts:
                reason = (
                    f"interrupted {attempts} time(s) (worker {worker} stopped); not retried again"
                    if runner is not None
                    else f"interrupted (worker {worker} stopped) and no job runner to retry it"
                )
                session.execute(
                    update(Analysis)
                    .where(Analysis.id == analysis_id, Analysis.status == status)
                    .values(status="FAILED", error=reason, finished_at=utcnow(), lease_expires_at=None)
                )
                report.failed.append(analysis_id)
                continue
            session.execute(
                update(Analysis)
                .where(Analysis.id == analysis_id, Analysis.status == status)
                .values(status="PENDING", worker=None, lease_expires_at=None)
            )
            report.requeued.append(analysis_id)
        session.commit()
    if runner is not None:
        for analysis_id in report.requeued:
            try:
                runner.submit(analysis_id)
            except Exception as exc:  # noqa: BLE001 - the next start-up sweeps it again
                logger.error("analysis %s: could not re-queue: %s", analysis_id, exc)
    metrics.ANALYSES_RECOVERED.labels(action="requeued").inc(len(report.requeued))
    metrics.ANALYSES_RECOVERED.labels(action="failed").inc(len(report.failed))
    if report.requeued or report.failed:
        logger.warning(
            "recovered interrupted analyses: %d re-queued, %d failed", len(report.requeued), len(report.failed)
        )
    return report


def reaper(ctx: JobContext, runner: JobRunner, stop: threading.Event, *, every_s: float | None = None) -> None:
    """Until ``stop`` is set, re-queue RUNNING analyses whose lease lapsed, every lease (a thread's body).

    Why besides the start-up sweep: a worker that dies on another host is noticed here, by the API that keeps
    running, even if no message is re-delivered (an in-process job of a killed replica, a broker that lost it).
    """
    interval = every_s if every_s is not None else ctx.lease_s
    while not stop.wait(interval):
        try:
            report = recover_interrupted(ctx, runner, include_pending=False)
            if report.requeued or report.failed:
                logger.warning("reaper: %s", report)
        except Exception:  # noqa: BLE001 - keep reaping; the next round retries
            logger.exception("reaper: recovery sweep failed")
