"""What a job needs to run an analysis: sessions, the blob store and the process's model registry.

Why a context object: the API process and each Celery worker process build exactly one (one engine, one model
cache per process) and hand it to ``execute_analysis``; nothing is a module global, so tests build their own.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from vitalens.config import Settings
    from vitalens.service.jobs.lease import ProcessJobs
    from vitalens.service.registry import ModelRegistry
    from vitalens.store import BlobStore

__all__ = ["JobContext", "process_tag", "build_job_context"]

logger = logging.getLogger(__name__)


def process_tag() -> str:
    """``host:pid`` of this process: written on the analyses it runs, read by crash recovery."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """Resources of one process for executing analyses."""

    session_factory: sessionmaker[Session]
    blobs: BlobStore
    registry: ModelRegistry
    settings: Settings | None = None
    tag: str = field(default_factory=process_tag)
    _jobs: ProcessJobs | None = field(default=None, repr=False)

    @property
    def lease_s(self) -> float:
        """Lease length of this process's jobs, s."""
        from vitalens.service.jobs.lease import DEFAULT_LEASE_S

        return float(self.settings.job_lease_seconds) if self.settings is not None else DEFAULT_LEASE_S

    @property
    def jobs(self) -> ProcessJobs:
        """The jobs this process runs, their leases and the memory guard (one heartbeat thread per process)."""
        if self._jobs is None:
            from vitalens.service.jobs.lease import ProcessJobs

            s = self.settings
            self._jobs = ProcessJobs(
                self,
                lease_s=self.lease_s,
                memory_mb=s.job_memory_mb if s is not None else None,
                hard_kill=bool(s.job_memory_hard_kill) if s is not None else False,
            )
        return self._jobs


def build_job_context(settings: Settings, *, registry: ModelRegistry | None = None) -> JobContext:
    """A context for ``settings``: engine + sessions on its database, its blob store, a model registry."""
    from vitalens.service.registry import ModelRegistry
    from vitalens.store import make_blob_store, make_engine, make_session_factory

    engine = make_engine(settings.sqlalchemy_url)
    return JobContext(
        session_factory=make_session_factory(engine),
        blobs=make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url),
        registry=registry or ModelRegistry(settings),
        settings=settings,
    )
