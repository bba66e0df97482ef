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
