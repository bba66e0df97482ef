"""Job leases across hosts and the poison-job quarantine, with real processes killed by ``SIGKILL``.

Before: a job owned by a worker on another host was treated as alive for ever, so when Celery re-delivered the job
of a killed worker to another host it was skipped there and stayed RUNNING; and a job that ran its worker out of
memory was re-queued on every restart and killed it again until the fourth start marked it FAILED.

Two hosts are two processes whose job tags name different hosts (``host-a:…``, ``host-b:…``): neither can see the
other's pid, exactly as on two machines, so only the lease in the shared database tells them apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.service._analysis_fakes import add_study, add_user, make_store
from vitalens.service.jobs import JobContext, execute_analysis, recover_interrupted
from vitalens.service.ops.analyses import create_analysis
from vitalens.store import Analysis

pytestmark = pytest.mark.usefixtures("fake_analyzers")

REPO = Path(__file__).resolve().parents[2]
LEASE_S = 2.0

#: A job worker in its own process: ``python -c WORKER url blobs tag analysis_id lease_s memory_mb``.
WORKER = """
import sys
import tests.service._fakes_worker
from vitalens.config import Settings
from vitalens.service.jobs import JobContext, execute_analysis
from vitalens.service.registry import ModelRegistry
from vitalens.store import LocalBlobStore, make_engine, make_session_factory

url, blobs, tag, aid, lease, memory = sys.argv[1:7]
settings = Settings(environment="test", job_lease_seconds=float(lease),
                    job_memory_mb=float(memory) if memory != "none" else None, job_memory_hard_kill=True)
ctx = JobContext(session_factory=make_session_factory(make_engine(url)), blobs=LocalBlobStore(blobs),
                 registry=ModelRegistry(settings), settings=settings, tag=tag)
print(execute_analysis(aid, ctx=ctx), flush=True)
"""


def _analysis(kit, names: list[str]) -> str:
    with kit.session_factory() as s:
        user = add_user(s)
        study = add_study(s, kit.blobs, user)
        return create_analysis(session=s, user=user, study_id=study.id, analyzers=names).id


def _row(kit, aid: str) -> Analysis:
    with kit.session_factory() as s:
        row = s.get(Analysis, aid)
        s.expunge(row)
        return row


def _spawn(kit, tmp_path: Path, tag: str, aid: str, *, memory: str = "none", **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WORKER, kit.url, str(tmp_path / "blobs"), tag, aid, str(LEASE_S), memory],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}", **env},
        stdout=subprocess.PIPE,
        stderr=(tmp_path / f"{tag.replace(':', '_')}.log").open("wb"),
    )


def _wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ctx(kit, tag: str) -> JobContext:
    settings = kit.ctx.settings.model_copy(update={"job_lease_seconds": LEASE_S, "job_memory_mb": None})
    return replace(kit.ctx, settings=settings, tag=tag, _jobs=None)


def test_a_job_killed_on_one_host_is_taken_over_on_another(tmp_path: Path) -> None:
    kit = make_store(tmp_path)
    aid = _analysis(kit, ["test.wait"])
    hold = tmp_path / "hold"
    hold.touch()
    host_a = _spawn(kit, tmp_path, "host-a:1111", aid, VITALENS_TEST_HOLD=str(hold))
    try:
        _wait_for(
            lambda: _row(kit, aid).worker == "host-a:1111" and _row(kit, aid).heartbeat_at is not None,
            what="host A to claim the job and beat",
        )
        first_beat = _row(kit, aid).heartbeat_at
        _wait_for(lambda: _row(kit, aid).heartbeat_at != first_beat, what="host A to renew its lease")
    finally:
        host_a.send_signal(signal.SIGKILL)  # the worker dies mid-job, its lease still ahead
        host_a.wait()
    hold.unlink()
    assert _row(kit, aid).status == "RUNNING"
    # Celery re-delivers the message (acks late) to a worker on host B: it waits out A's lease, then takes over
    status = execute_analysis(aid, ctx=_ctx(kit, "host-b:2222"))
    row = _row(kit, aid)
    assert (status, row.status, row.worker, row.attempts) == ("COMPLETE", "COMPLETE", "host-b:2222", 2)
    assert row.lease_expires_at is None


def test_a_live_owner_on_another_host_is_left_alone(tmp_path: Path) -> None:
    kit = make_store(tmp_path)
    aid = _analysis(kit, ["test.wait"])
    hold = tmp_path / "hold"
    hold.touch()
    host_a = _spawn(kit, tmp_path, "host-a:3333", aid, VITALENS_TEST_HOLD=str(hold))
    try:
        _wait_for(lambda: _row(kit, aid).heartbeat_at is not None, what="host A to claim the job")
        # a duplicate delivery on host B sees the lease renewed: it leaves the job to its owner
        assert execute_analysis(aid, ctx=_ctx(kit, "host-b:4444")) == "SKIPPED"
        assert _row(kit, aid).worker == "host-a:3333"
        hold.unlink()
        out, _ = host_a.communicate(timeout=60)
    finally:
        if host_a.poll() is None:
            host_a.kill()
    assert out.decode().strip() == "COMPLETE"
    row = _row(kit, aid)
    assert (row.status, row.worker, row.attempts) == ("COMPLETE", "host-a:3333", 1)


def test_a_job_that_would_kill_its_worker_is_quarantined_on_the_first_crash(tmp_path: Path) -> None:
    kit = make_store(tmp_path)
    aid = _analysis(kit, ["test.hog"])
    # the job allocates 2 GB; the guard allows 150 MB of growth and stops the process past 225 MB
    worker = _spawn(kit, tmp_path, "host-c:1", aid, memory="150", VITALENS_TEST_HOG_MB="2000")
    worker.wait(timeout=120)
    assert worker.returncode == -signal.SIGKILL  # it did kill its worker (the guard's hard stop)
    row = _row(kit, aid)
    assert row.status == "FAILED" and row.attempts == 1
    assert row.error.startswith("quarantined: the worker's memory grew by ")
    assert "limit 150 MB" in row.error
    # the next start-up does not re-queue it: it is never retried
    report = recover_interrupted(_ctx(kit, "host-b:5555"), runner=None)
    assert aid not in report.requeued + report.failed
    assert _row(kit, aid).status == "FAILED"


def test_quarantine_is_not_overwritten_when_the_job_finishes_after_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the hard stop the hog finishes; its results must not replace the quarantine.

    The process's memory is read through the guard's own probe, which here reports the hog's growth exactly
    (400 MB once it started): in a long test process the allocator may reuse pages, so the real RSS need not grow.
    """
    from vitalens.service.jobs import lease

    readings = iter([100.0])
    monkeypatch.setattr(lease, "process_rss_mb", lambda: next(readings, 500.0))
    kit = make_store(tmp_path)
    aid = _analysis(kit, ["test.hog"])
    settings = kit.ctx.settings.model_copy(update={"job_memory_mb": 80.0, "job_memory_hard_kill": False})
    ctx = replace(kit.ctx, settings=settings, _jobs=None)
    os.environ["VITALENS_TEST_HOG_MB"] = "400"
    try:
        status = execute_analysis(aid, ctx=ctx)
    finally:
        del os.environ["VITALENS_TEST_HOG_MB"]
    row = _row(kit, aid)
    assert (status, row.status, row.attempts) == ("FAILED", "FAILED", 1)
    assert row.error.startswith("quarantined: the worker's memory grew by ") and "limit 80 MB" in row.error
