"""In-process job runner: a thread pool inside the API process (the single-machine default).

Why threads: the analyzer work is in torch/numpy, which release the GIL, and the process-wide model cache is
shared by every thread, so a model is loaded once per process. Jobs already queued or running are not queued
twice (the same analysis id re-submitted returns the existing job).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from vitalens.service.jobs._base import JobRunner, RunnerHealth

__all__ = ["InProcessRunner"]

logger = logging.getLogger(__name__)


class InProcessRunner(JobRunner):
    """Run ``execute(analysis_id)`` on a ``ThreadPoolExecutor``.

    Args:
        execute: the job body (``vitalens.service.ops.analyses.execute_analysis`` bound to a context).
        max_workers: concurrent analyses in this process.
    """

    backend = "inprocess"

    def __init__(self, execute: Callable[[str], Any], *, max_workers: int = 2) -> None:
        self._execute = execute
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vitalens-job")
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _run(self, analysis_id: str) -> Any:
        try:
            return self._execute(analysis_id)
        except Exception:
            logger.exception("analysis %s: job crashed", analysis_id)
            raise
        finally:
            with self._lock:
                self._futures.pop(analysis_id, None)

    def submit(self, analysis_id: str) -> str:
        with self._lock:
            if self._closed:
                raise RuntimeError("the job runner is shut down")
            if analysis_id not in self._futures:
                self._futures[analysis_id] = self._pool.submit(self._run, analysis_id)
        return analysis_id

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until every queued job has finished (tests, graceful shutdown); False on timeout."""
        with self._lock:
            futures = list(self._futures.values())
        done, not_done = wait_futures(futures, timeout=timeout)
        return not not_done

    def health(self) -> RunnerHealth:
        if self._closed:
            return RunnerHealth(False, self.backend, "thread pool shut down")
        with self._lock:
            n = len(self._futures)
        return RunnerHealth(True, self.backend, f"{n} job(s) queued or running")

    def running_ids(self) -> set[str]:
        with self._lock:
            return set(self._futures)

    def shutdown(self, *, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
