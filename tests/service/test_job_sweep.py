"""The periodic sweep for analyses left RUNNING: the API's timer (in-process pool) and each Celery worker's.

A job whose worker died *after* every start-up recovery ran (on another host, so no pid can be checked) has only its
lease to tell: the sweep must notice the lapsed lease on its next round, re-queue the job (which then completes) or
fail it when its attempts are used up, and never disturb a job a live owner renews. Several sweepers at once
(replicas, workers) release a row exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service._analysis_fakes import StoreKit, add_study, add_user, make_store
from vitalens.config import Settings
from vitalens.service.jobs import InProcessRunner, JobRunner, PeriodicSweep, execute_analysis, sweep_interval
from vitalens.service.jobs._base import RunnerHealth
from vitalens.service.jobs.recovery import MAX_ATTEMPTS, recover_interrupted
from vitalens.service.ops.analyses import create_analysis
from vitalens.store import Analysis, User

pytestmark = pytest.mark.usefixtures("fake_analyzers")

SWEEP_S = 0.2


@pytest.fixture
def kit(tmp_path: Path) -> StoreKit:
    return make_store(tmp_path)


@pytest.fixture
def new_analysis(kit: StoreKit) -> Callable[[], str]:
    """Make a fresh ``test.echo`` analysis (one user, one patient per analysis) and return its id."""
    with kit.session_factory() as s:  # type: ignore[operator]
        user_id = add_user(s).id
    count = iter(range(1000))

    def make() -> str:
        with kit.session_factory() as s:  # type: ignore[operator]
            user = s.get(User, user_id)
            study = add_study(s, kit.blobs, user, pseudonym=f"P-{next(count)}")
            return create_analysis(session=s, user=user, study_id=study.id, analyzers=["test.echo"]).id

    return make


def _orphan(kit: StoreKit, aid: str, *, attempts: int = 1, lease_s: float = -1.0, worker: str = "gone:7") -> None:
    """Mark ``aid`` RUNNING under a worker on another host whose lease ends ``lease_s`` from now."""
    with kit.session_factory() as s:  # type: ignore[operator]
        a = s.get(Analysis, aid)
        a.status, a.worker, a.attempts = "RUNNING", worker, attempts
        a.lease_expires_at = datetime.now(UTC) + timedelta(seconds=lease_s)
        s.commit()


def _row(kit: StoreKit, aid: str) -> Analysis:
    with kit.session_factory() as s:  # type: ignore[operator]
        row = s.get(Analysis, aid)
        s.expunge(row)
        return row


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class RecordingRunner(JobRunner):
    """Counts submissions (and runs nothing): what a sweep hands to the queue."""

    backend = "recording"

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self._lock = threading.Lock()

    def submit(self, analysis_id: str) -> str:
        with self._lock:
            self.submitted.append(analysis_id)
        return analysis_id

    def health(self) -> RunnerHealth:
        return RunnerHealth(True, self.backend)


def test_sweep_interval_follows_the_settings() -> None:
    base = {"environment": "test", "job_lease_seconds": 30.0}
    assert sweep_interval(Settings(**base)) == 30.0  # default: one lease
    assert sweep_interval(Settings(**base, job_sweep_seconds=5)) == 5.0
    assert sweep_interval(Settings(**base, job_sweep_seconds=0)) is None  # start-up only
    with pytest.raises(ValueError, match="job_sweep_seconds"):
        Settings(**base, job_sweep_seconds=-1)


def test_periodic_sweep_requeues_a_lapsed_job_and_fails_an_exhausted_one(
    kit: StoreKit, new_analysis: Callable[[], str]
) -> None:
    runner = InProcessRunner(lambda i: execute_analysis(i, ctx=kit.ctx), max_workers=1)
    sweep = PeriodicSweep(kit.ctx, runner, every_s=SWEEP_S).start()  # type: ignore[arg-type]
    try:
        time.sleep(SWEEP_S * 2)  # the sweep is running before the jobs are orphaned: only a *periodic* round sees them
        lapsed, exhausted, renewed = new_analysis(), new_analysis(), new_analysis()
        _orphan(kit, lapsed)
        _orphan(kit, exhausted, attempts=MAX_ATTEMPTS)
        _orphan(kit, renewed, lease_s=60.0, worker="alive-elsewhere:8")  # a live owner on another host
        assert _wait(lambda: _row(kit, lapsed).status == "COMPLETE"), _row(kit, lapsed).status
        assert _wait(lambda: _row(kit, exhausted).status == "FAILED")
    finally:
        sweep.stop()
        runner.shutdown()
    assert not sweep.running
    done = _row(kit, lapsed)
    assert (done.attempts, done.lease_expires_at) == (2, None) and done.worker == kit.ctx.tag  # type: ignore[attr-defined]
    failed = _row(kit, exhausted)
    assert failed.error == f"interrupted {MAX_ATTEMPTS} time(s) (worker gone:7 stopped); not retried again"
    left = _row(kit, renewed)
    assert (left.status, left.worker, left.attempts) == ("RUNNING", "alive-elsewhere:8", 1)


def test_a_disabled_sweep_starts_no_thread(kit: StoreKit) -> None:
    sweep = PeriodicSweep(kit.ctx, RecordingRunner(), every_s=None).start()  # type: ignore[arg-type]
    assert not sweep.running
    sweep.stop()


def test_concurrent_sweepers_release_each_job_once(kit: StoreKit, new_analysis: Callable[[], str]) -> None:
    """Four sweepers (replicas and workers) over the same orphans: every job is re-queued by exactly one."""
    ids = [new_analysis() for _ in range(6)]
    for aid in ids:
        _orphan(kit, aid)
    runner = RecordingRunner()
    barrier = threading.Barrier(4)
    reports: list[Any] = []

    def sweep() -> None:
        barrier.wait()
        reports.append(recover_interrupted(kit.ctx, runner, include_pending=False))  # type: ignore[arg-type]

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(runner.submitted) == sorted(ids)  # each once, none twice
    assert sorted(aid for r in reports for aid in r.requeued) == sorted(ids)
    assert {_row(kit, aid).status for aid in ids} == {"PENDING"}


def test_a_job_claimed_between_look_and_release_is_not_reset(
    kit: StoreKit, new_analysis: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep saw a lapsed lease, but a live worker took the job over before the sweep's update: left alone."""
    aid = new_analysis()
    _orphan(kit, aid)
    import vitalens.service.jobs.recovery as recovery

    real_lease_alive = recovery.lease_alive

    def claimed_meanwhile(tag: str | None, lease: datetime | None, now: datetime) -> bool:
        with kit.session_factory() as s:  # type: ignore[operator]
            row = s.get(Analysis, aid)
            row.worker, row.attempts = "taker:9", 2
            row.lease_expires_at = datetime.now(UTC) + timedelta(seconds=60)
            s.commit()
        return real_lease_alive(tag, lease, now)

    monkeypatch.setattr(recovery, "lease_alive", claimed_meanwhile)
    runner = RecordingRunner()
    report = recover_interrupted(kit.ctx, runner, include_pending=False)  # type: ignore[arg-type]
    assert report.requeued == [] and runner.submitted == []
    row = _row(kit, aid)
    assert (row.status, row.worker, row.attempts) == ("RUNNING", "taker:9", 2)


@pytest.fixture
def sweeping_app(tmp_path: Path, kit: StoreKit) -> Iterator[TestClient]:
    """The real app (jobs lifespan, in-process pool) on ``kit``'s database, sweeping every 0.2 s."""
    from vitalens.service.app import create_app

    settings = Settings(
        environment="test",
        secret_key="sweep-test-secret-0123456789-abcdefghij",
        data_dir=tmp_path,
        job_lease_seconds=5.0,
        job_sweep_seconds=SWEEP_S,
        job_memory_mb=None,
    )
    app = create_app(settings)
    app.state.session_factory = kit.session_factory
    app.state.blobs = kit.blobs
    with TestClient(app) as client:
        yield client


def test_the_api_lifespan_sweeps_with_its_in_process_pool(
    sweeping_app: TestClient, kit: StoreKit, new_analysis: Callable[[], str]
) -> None:
    state = sweeping_app.app.state  # type: ignore[attr-defined]
    assert state.job_sweep.running and state.job_sweep.every_s == SWEEP_S
    aid = new_analysis()
    _orphan(kit, aid)  # orphaned after start-up recovery ran: only the periodic sweep can find it
    assert _wait(lambda: _row(kit, aid).status == "COMPLETE"), _row(kit, aid).status
    assert _row(kit, aid).attempts == 2


def test_a_celery_worker_sweeps_after_it_is_ready(
    kit: StoreKit, new_analysis: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``worker_ready`` starts the worker's own sweep; re-queued jobs go to the broker as tasks named by their id."""
    from dataclasses import replace

    from vitalens.service.jobs import celery_app as worker_module

    settings = kit.ctx.settings.model_copy(update={"job_sweep_seconds": SWEEP_S})  # type: ignore[attr-defined]
    monkeypatch.setattr(worker_module, "worker_context", lambda settings_=None: replace(kit.ctx, settings=settings))
    celery = worker_module.create_celery_app("memory://")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(celery, "send_task", lambda name, args, task_id: sent.append((name, task_id)))

    class Sender:
        app = celery

    worker_module._recover_on_start(sender=Sender())
    try:
        assert worker_module._sweep is not None and worker_module._sweep.running
        aid = new_analysis()
        _orphan(kit, aid)
        assert _wait(lambda: _row(kit, aid).status == "PENDING")
        assert _wait(lambda: (worker_module.TASK_NAME, aid) in sent)
    finally:
        worker_module._stop_sweep()
    assert not worker_module._sweep.running
    assert _row(kit, aid).worker is None and _row(kit, aid).lease_expires_at is None
