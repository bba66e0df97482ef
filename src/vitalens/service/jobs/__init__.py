"""Analysis jobs: an in-process thread pool by default, Celery workers over Redis when a broker is configured.

Why both behind one interface: one machine needs no broker; a deployment with GPU workers sets
``VITALENS_BROKER_URL`` and runs ``vitalens worker``. The API code is the same either way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from vitalens.config import Settings
from vitalens.service.jobs._base import JobRunner, RunnerHealth
from vitalens.service.jobs._context import JobContext, build_job_context, process_tag
from vitalens.service.jobs.execute import execute_analysis
from vitalens.service.jobs.lease import lease_alive, owner_alive
from vitalens.service.jobs.local import InProcessRunner
from vitalens.service.jobs.recovery import PeriodicSweep, RecoveryReport, reaper, recover_interrupted, sweep_interval
from vitalens.service.jobs.warmup import start_warmup, warmup_enabled

__all__ = [
    "InProcessRunner",
    "JobContext",
    "JobRunner",
    "RecoveryReport",
    "RunnerHealth",
    "build_job_context",
    "execute_analysis",
    "jobs_lifespan",
    "lease_alive",
    "make_runner",
    "owner_alive",
    "PeriodicSweep",
    "reaper",
    "process_tag",
    "recover_interrupted",
    "sweep_interval",
]

logger = logging.getLogger(__name__)


def make_runner(settings: Settings, ctx: JobContext, *, max_workers: int = 2) -> JobRunner:
    """Celery when ``settings.broker_url`` is set, else an in-process pool executing with ``ctx``."""
    if settings.broker_url:
        from vitalens.service.jobs.celery_app import create_celery_app
        from vitalens.service.jobs.celery_runner import CeleryRunner

        return CeleryRunner(create_celery_app(settings.broker_url))
    return InProcessRunner(lambda analysis_id: execute_analysis(analysis_id, ctx=ctx), max_workers=max_workers)


@asynccontextmanager
async def jobs_lifespan(app: Any) -> AsyncIterator[None]:
    """App lifespan hook: build the job context and runner, recover interrupted analyses, then sweep for lapsed
    leases every ``job_sweep_seconds`` (:class:`PeriodicSweep`); shut down at exit.

    Reuses ``app.state.session_factory`` / ``app.state.blobs`` / ``app.state.registry`` when the app has them.
    """
    settings: Settings = app.state.settings
    state = app.state
    if getattr(state, "session_factory", None) is None:
        from vitalens.service.deps import open_store

        open_store(app, settings)
    ctx = build_job_context(settings, registry=getattr(state, "registry", None))
    if getattr(state, "session_factory", None) is not None:
        ctx.session_factory = state.session_factory
    if getattr(state, "blobs", None) is not None:
        ctx.blobs = state.blobs
    runner = make_runner(settings, ctx)
    state.job_context, state.jobs = ctx, runner
    if settings.broker_url is None and ctx.registry is not None and warmup_enabled(settings):
        state.warmup = start_warmup(ctx.registry)  # the in-process pool runs the analyses: load their models now
    try:
        recover_interrupted(ctx, runner)
    except Exception:  # noqa: BLE001 - the API must start even if the sweep fails (logged)
        logger.exception("start-up recovery of interrupted analyses failed")
    sweep = PeriodicSweep(ctx, runner, every_s=sweep_interval(settings), name="vitalens-api-sweep").start()
    state.job_sweep = sweep
    try:
        yield
    finally:
        sweep.stop(timeout=1.0)
        runner.shutdown(wait=False)
