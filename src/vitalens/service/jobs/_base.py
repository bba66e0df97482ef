"""The job-runner contract: submit an analysis by id, report health, shut down.

Why one interface: the API and the crash-recovery code hand analysis ids to "the runner" without knowing whether
an in-process thread pool or Celery workers over Redis execute them; configuration alone picks the backend.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["JobRunner", "RunnerHealth"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerHealth:
    """Whether the runner can accept jobs now, and why not."""

    ok: bool
    backend: str
    detail: str = ""


class JobRunner(ABC):
    """Executes analyses (``execute(analysis_id)``) somewhere; every task is keyed by its analysis id."""

    backend: ClassVar[str]

    @abstractmethod
    def submit(self, analysis_id: str) -> str:
        """Queue the analysis ``analysis_id``; returns the job id (re-submitting the same id is harmless)."""

    @abstractmethod
    def health(self) -> RunnerHealth:
        """Readiness of the backend (thread pool alive, broker reachable)."""

    def running_ids(self) -> set[str] | None:
        """Analysis ids this runner is executing now, or None when it cannot tell (remote workers)."""
        return None

    def shutdown(self, *, wait: bool = True) -> None:  # noqa: B027 - optional hook
        """Stop accepting jobs; ``wait`` lets running ones finish."""
