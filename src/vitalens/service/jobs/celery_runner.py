"""Job runner that hands analyses to Celery workers over Redis (``VITALENS_BROKER_URL``).

Why the analysis id as task id: a re-sent task is recognisably the same job, and the task itself is idempotent,
so the API can re-submit after a crash without double work.
"""

from __future__ import annotations

import logging
from typing import Any

from vitalens.service.jobs._base import JobRunner, RunnerHealth

__all__ = ["CeleryRunner"]

logger = logging.getLogger(__name__)


class CeleryRunner(JobRunner):
    """Submit analyses as ``vitalens.run_analysis`` tasks on ``celery_app``."""

    backend = "celery"

    def __init__(self, celery_app: Any) -> None:
        self.app = celery_app

    def submit(self, analysis_id: str) -> str:
        from vitalens.service.jobs.celery_app import TASK_NAME

        self.app.send_task(TASK_NAME, args=[analysis_id], task_id=analysis_id)
        return analysis_id

    def health(self) -> RunnerHealth:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # noqa: BLE001 - readiness reports the reason
            return RunnerHealth(False, self.backend, f"broker unreachable: {exc}")
        return RunnerHealth(True, self.backend, "broker reachable")
