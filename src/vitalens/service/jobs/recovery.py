"""Crash recovery: analyses left PENDING or RUNNING by a dead process are re-queued or marked FAILED.

Why: a ``kill -9`` of the API (in-process jobs) or of a Celery worker leaves rows that say RUNNING forever.
At start-up each process looks for them, and the API keeps looking every lease (:func:`reaper`): a RUNNING row whose
lease lapsed (its owner, on any host, stopped renewing it; on this host a dead pid releases it at once), and at
start-up every PENDING row (its queue message may have died with an in-process pool), is re-queued while it has
attempts left, else marked FAILED with the reason. Re-queuing is safe because jobs are idempotent by analysis id.
A job the memory guard quarantined is already FAILED and is never re-queued.

Why a periodic sweep in every process that can submit (:class:`PeriodicSweep`): the API sweeps for its in-process
pool and for Celery alike, and each Celery worker sweeps too (started on ``worker_ready``), so a job orphaned by a
dead worker is re-queued even when no API replica runs, and nobody has to deploy Celery beat. Many sweepers are
safe: a row is released only by a compare-and-set on the state the sweeper saw (status, owner, lease), so of
several sweepers exactly one re-queues it, and a job that a live worker claimed in between is never reset.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vitalens.service.jobs._base import JobRunner
from vitalens.service.jobs._context import JobContext
from vitalens.service.jobs.lease import lease_alive

if TYPE_CHECKING:
    from vitalens.config import Settings

__all__ = ["RecoveryReport", "recover_interrupted", "reaper", "PeriodicSweep", "sweep_interval", "MAX_ATTEMPTS"]

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
            # compare-and-set on what this sweep saw: another sweeper that got there first, or a live worker that
            # claimed the job meanwhile (new owner, new lease), makes the update match nothing
            seen = (
                (Analysis.id == analysis_id)
                & (Analysis.status == status)
                & Analysis.worker.is_not_distinct_from(worker)
                & Analysis.lease_expires_at.is_not_distinct_from(lease)
            )
            if runner is None or (attempts or 0) >= max_attempts:
                reason = (
                    f"interrupted {attempts} time(s) (worker {worker} stopped); not retried again"
                    if runner is not None
                    else f"interrupted (worker {worker} stopped) and no job runner to retry it"
                )
                done = (
                    update(Analysis)
                    .where(seen)
                    .values(status="FAILED", error=reason, finished_at=utcnow(), lease_expires_at=None)
                )
                if _changed(session.execute(done)):
                    report.failed.append(analysis_id)
                session.commit()
                continue
            again = update(Analysis).where(seen).values(status="PENDING", worker=None, lease_expires_at=None)
            if _changed(session.execute(again)):
                report.requeued.append(analysis_id)
            session.commit()  # row by row: a re-queued row is visible to other sweepers before it is submitted
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


def _changed(result: object) -> bool:
    """Whether an UPDATE matched a row (its ``rowcount``)."""
    return bool(getattr(result, "rowcount", 0))


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


def sweep_interval(settings: Settings | None) -> float | None:
    """Seconds between two sweeps: ``job_sweep_seconds``, else one lease; None when set to 0 (start-up only)."""
    from vitalens.service.jobs.lease import DEFAULT_LEASE_S

    if settings is None:
        return DEFAULT_LEASE_S
    if settings.job_sweep_seconds is None:
        return float(settings.job_lease_seconds)
    return float(settings.job_sweep_seconds) or None


class PeriodicSweep:
    """:func:`reaper` on a daemon thread of this process, started and stopped by its owner (a lifespan, a worker).

    Args:
        ctx: this process's job context.
        runner: where re-queued analyses go (the in-process pool, or Celery).
        every_s: seconds between sweeps; None disables the sweep (``start`` does nothing).
        name: thread name, for logs and ``py-spy``.

    Example:
        >>> sweep = PeriodicSweep(ctx, runner, every_s=60.0).start()  # doctest: +SKIP
        >>> sweep.stop()  # doctest: +SKIP
    """

    def __init__(
        self, ctx: JobContext, runner: JobRunner, *, every_s: float | None, name: str = "vitalens-job-sweep"
    ) -> None:
        self.ctx, self.runner, self.every_s, self.name = ctx, runner, every_s, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PeriodicSweep:
        if self.every_s is None or self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=reaper, args=(self.ctx, self.runner, self._stop), kwargs={"every_s": self.every_s}, name=self.name
        )
        self._thread.daemon = True
        self._thread.start()
        logger.info("periodic sweep for lapsed job leases every %.1f s (%s)", self.every_s, self.name)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
