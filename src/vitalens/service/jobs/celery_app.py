"""Celery over Redis: the task that executes an analysis, and the app configured from ``VITALENS_BROKER_URL``.

Why these settings: ``task_acks_late`` + ``task_reject_on_worker_lost`` make a message survive a worker that is
``kill -9``-ed mid-job (it is re-delivered), ``worker_prefetch_multiplier=1`` keeps one long job from hoarding
messages, and the task id is the analysis id, so duplicates are recognisable. The task is thin: it calls
:func:`vitalens.service.jobs.execute.execute_analysis` with this worker process's :class:`JobContext` (one
engine, one model cache per process). On ``worker_ready`` the worker re-queues analyses whose owner died, and from
then on sweeps for lapsed leases every ``job_sweep_seconds`` (:class:`~vitalens.service.jobs.recovery.PeriodicSweep`).

Run a worker with ``vitalens worker`` (or ``celery -A vitalens.service.jobs.celery_app worker``).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, signals

from vitalens.config import Settings, get_settings
from vitalens.service.jobs._context import JobContext, build_job_context

__all__ = ["TASK_NAME", "create_celery_app", "app", "worker_context", "run_analysis_task"]

logger = logging.getLogger(__name__)

TASK_NAME = "vitalens.run_analysis"
QUEUE = "vitalens-analyses"

_ctx: JobContext | None = None
_ctx_lock = threading.Lock()
_ctx_pid: int | None = None


def worker_context(settings: Settings | None = None) -> JobContext:
    """This worker process's job context (built once per process; rebuilt after a fork)."""
    global _ctx, _ctx_pid
    with _ctx_lock:
        if _ctx is None or _ctx_pid != os.getpid():
            _ctx = build_job_context(settings or get_settings())
            _ctx_pid = os.getpid()
        return _ctx


def create_celery_app(broker_url: str | None = None) -> Celery:
    """A Celery app on ``broker_url`` (default ``VITALENS_BROKER_URL``; an in-memory broker when unset)."""
    url = broker_url or get_settings().broker_url or "memory://"
    celery = Celery("vitalens", broker=url, backend=None)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
    )
    celery.task(name=TASK_NAME, bind=True, acks_late=True)(run_analysis_task)
    return celery


def run_analysis_task(task: Any, analysis_id: str) -> str:
    """Celery task body: execute the analysis (idempotent; returns its final status or ``SKIPPED``)."""
    from vitalens.service.jobs.execute import execute_analysis

    return execute_analysis(analysis_id, ctx=worker_context())


#: The periodic sweep of this worker process (started on ``worker_ready``, stopped on ``worker_shutdown``).
_sweep: Any = None


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _recover_on_start(sender: Any = None, **_: Any) -> None:
    """Re-queue analyses whose worker died as soon as this worker is up, then sweep for lapsed leases periodically.

    Why worker-side rather than Celery beat: no extra process to deploy, a job orphaned by a dead worker is re-queued
    even while no API replica runs, and several sweeping workers are safe (the sweep's compare-and-set releases a
    row once). ``VITALENS_JOB_SWEEP_SECONDS`` sets the period (default one lease; 0: start-up only).
    """
    global _sweep
    from vitalens.service.jobs.celery_runner import CeleryRunner
    from vitalens.service.jobs.recovery import PeriodicSweep, recover_interrupted, sweep_interval

    try:
        celery_app = sender.app if sender is not None else app
        ctx = worker_context()
        runner = CeleryRunner(celery_app)
        report = recover_interrupted(ctx, runner, include_pending=False)
        logger.info("worker start-up recovery: %s", report)
        _sweep = PeriodicSweep(ctx, runner, every_s=sweep_interval(ctx.settings), name="vitalens-worker-sweep")
        _sweep.start()
        from vitalens.service.jobs.warmup import start_warmup, warmup_enabled

        if warmup_enabled(ctx.settings):
            start_warmup(ctx.registry)  # the worker runs the analyses: load their models before the first one
    except Exception:  # noqa: BLE001 - a worker must start even if the sweep fails
        logger.exception("worker start-up recovery failed")


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_sweep(**_: Any) -> None:
    if _sweep is not None:
        _sweep.stop(timeout=2.0)


#: The app ``celery -A vitalens.service.jobs.celery_app worker`` finds.
app = create_celery_app()
