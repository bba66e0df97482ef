"""Job leases with a heartbeat, and the memory guard that quarantines a job which would kill its worker.

Why a lease: "is the owner of this RUNNING job alive?" used to be answered with ``os.kill(pid, 0)`` on the same host
and "assume yes" on any other, so a job whose Celery worker died on host A and was re-delivered to host B was
skipped there and stayed RUNNING forever. Now the owner renews ``analyses.lease_expires_at`` every
``lease / 4`` seconds while the job runs; anyone may take over a job whose lease has lapsed, from any host, and a
re-delivery that finds a live lease waits for it to be renewed (owner alive: leave it) or to lapse (take over).

Why a memory guard in the same thread: a decoded input that slipped past every bound can make an analyzer allocate
until the process is killed, and a job that kills its worker was re-queued on every restart and killed it again,
until the attempt counter gave up. The heartbeat samples the process's resident memory every
:data:`SAMPLE_S` seconds; when it has grown by more than ``job_memory_mb`` since the job started **and that job is
the only one running in the process** (so the growth can be blamed on it), the job is marked FAILED with the reason
at once, before the kernel's out-of-memory killer acts, and is never retried. Past ``1.5 × job_memory_mb`` the
process stops itself (``SIGKILL``), which is what the kernel would do anyway, but now with the job already
quarantined and no innocent neighbour process chosen instead. With several jobs running, the growth cannot be
told apart and the attempt counter (:data:`vitalens.service.jobs.recovery.MAX_ATTEMPTS`) applies as before.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vitalens.service.jobs._context import JobContext

__all__ = [
    "DEFAULT_LEASE_S",
    "SAMPLE_S",
    "JobLease",
    "owner_alive",
    "lease_alive",
    "process_rss_mb",
    "ProcessJobs",
]

logger = logging.getLogger(__name__)

#: Seconds a claim lasts without renewal (the heartbeat renews every quarter of it).
DEFAULT_LEASE_S = 60.0
#: Seconds between two memory samples of the guard.
SAMPLE_S = 0.25


def process_rss_mb() -> float:
    """Resident memory of this process, MB (psutil)."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def owner_alive(tag: str | None) -> bool | None:
    """Whether the process ``host:pid`` is alive: True/False on this host, None on another (only its lease tells)."""
    if not tag or ":" not in tag:
        return False
    host, _, pid_text = tag.rpartition(":")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def lease_alive(tag: str | None, lease_expires_at: datetime | None, now: datetime) -> bool:
    """Whether the RUNNING job's owner still holds it: its lease lies ahead and, on this host, its process lives.

    A dead process on this host releases at once (no need to wait for the lease); a job without a lease (claimed
    before leases existed) is free to take over.
    """
    if owner_alive(tag) is False:
        return False
    return lease_expires_at is not None and lease_expires_at > now


@dataclass
class _Running:
    analysis_id: str
    rss_at_start_mb: float
    lost: threading.Event = field(default_factory=threading.Event)


class ProcessJobs:
    """The jobs this process runs now, renewed and guarded by one heartbeat thread per process.

    Args:
        ctx: sessions and settings of this process.
        lease_s: lease length, seconds.
        memory_mb: growth of resident memory (MB) over a job's start that quarantines it; None disables the guard.
        hard_kill: stop the process past 1.5 × ``memory_mb`` (servers and workers; tests pass False).
    """

    def __init__(
        self, ctx: JobContext, *, lease_s: float = DEFAULT_LEASE_S, memory_mb: float | None, hard_kill: bool = True
    ) -> None:
        self.ctx = ctx
        self.lease_s = lease_s
        self.memory_mb = memory_mb
        self.hard_kill = hard_kill
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def start(self, analysis_id: str) -> _Running:
        """Register a claimed job; the heartbeat renews its lease from now on."""
        rss = process_rss_mb() if self.memory_mb is not None else 0.0
        entry = _Running(analysis_id, rss)
        with self._lock:
            self._running[analysis_id] = entry
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="vitalens-job-heartbeat", daemon=True)
                self._thread.start()
        return entry

    def stop(self, analysis_id: str) -> None:
        with self._lock:
            self._running.pop(analysis_id, None)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # -- the heartbeat thread --------------------------------------------------------------------------------

    def _beat(self) -> None:
        import time

        from vitalens.store import utcnow

        renew_every = max(self.lease_s / 4.0, SAMPLE_S)
        next_renewal = time.monotonic()  # at once: the claim's lease starts counting now
        while True:
            with self._lock:
                entries = list(self._running.values())
                if not entries:
                    self._thread = None
                    return
            if time.monotonic() >= next_renewal:
                self._renew(entries, utcnow())
                next_renewal = time.monotonic() + renew_every
            if self.memory_mb is not None:
                self._guard(entries)
            time.sleep(SAMPLE_S)

    def _renew(self, entries: list[_Running], now: datetime) -> None:
        from sqlalchemy import update

        from vitalens.store import Analysis

        try:
            with self.ctx.session_factory() as session:
                for entry in entries:
                    renewed = session.execute(
                        update(Analysis)
                        .where(
                            Analysis.id == entry.analysis_id,
                            Analysis.status == "RUNNING",
                            Analysis.worker == self.ctx.tag,
                        )
                        .values(lease_expires_at=now + timedelta(seconds=self.lease_s), heartbeat_at=now)
                    ).rowcount  # type: ignore[attr-defined]
                    if not renewed and not entry.lost.is_set():
                        logger.warning("analysis %s: lease lost (taken over or quarantined)", entry.analysis_id)
                        entry.lost.set()
                session.commit()
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the heartbeat; the next beat retries
            logger.exception("job heartbeat could not renew its leases")

    def _guard(self, entries: list[_Running]) -> None:
        limit = float(self.memory_mb or 0.0)
        rss = process_rss_mb()
        if len(entries) == 1:
            entry = entries[0]
            grown = rss - entry.rss_at_start_mb
            if grown > limit and not entry.lost.is_set():
                self._quarantine(entry, grown, limit)
            if grown > 1.5 * limit and self.hard_kill:
                logger.critical(
                    "analysis %s: resident memory grew by %.0f MB (limit %.0f MB); stopping this process before the "
                    "kernel picks a victim (the job is quarantined)",
                    entry.analysis_id,
                    grown,
                    limit,
                )
                os.kill(os.getpid(), signal.SIGKILL)
        elif entries and rss - min(e.rss_at_start_mb for e in entries) > limit:
            logger.error(
                "resident memory grew by more than %.0f MB with %d jobs running (%s); the cause cannot be told "
                "apart, so none is quarantined",
                limit,
                len(entries),
                ", ".join(e.analysis_id for e in entries),
            )

    def _quarantine(self, entry: _Running, grown_mb: float, limit_mb: float) -> None:
        from sqlalchemy import update

        from vitalens.store import Analysis, utcnow

        reason = (
            f"quarantined: the worker's memory grew by {grown_mb:,.0f} MB while it ran this analysis alone "
            f"(limit {limit_mb:,.0f} MB, VITALENS_JOB_MEMORY_MB); it is not retried. Check the inputs' size."
        )
        with self.ctx.session_factory() as session:
            done = session.execute(
                update(Analysis)
                .where(Analysis.id == entry.analysis_id, Analysis.status == "RUNNING", Analysis.worker == self.ctx.tag)
                .values(status="FAILED", error=reason, finished_at=utcnow(), lease_expires_at=None)
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
        entry.lost.set()
        if done:
            logger.error("analysis %s %s", entry.analysis_id, reason)


@dataclass
class JobLease:
    """The lease of one running job (a context manager around its execution)."""

    jobs: ProcessJobs
    analysis_id: str
    entry: _Running | None = None

    def __enter__(self) -> JobLease:
        self.entry = self.jobs.start(self.analysis_id)
        return self

    def __exit__(self, *exc: object) -> None:
        self.jobs.stop(self.analysis_id)

    @property
    def lost(self) -> bool:
        """True once the job is no longer ours (another owner took it over, or the guard quarantined it)."""
        return self.entry is not None and self.entry.lost.is_set()
