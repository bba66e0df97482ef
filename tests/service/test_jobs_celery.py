"""Celery path on the machine's Redis: a real ``vitalens worker`` subprocess runs jobs; a ``kill -9`` mid-job
leaves nothing stuck (the restarted worker re-runs it). Skips when Redis is unreachable, fails when ``CI=true``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service._analysis_fakes import add_study, add_user, make_store
from vitalens.service.ops.analyses import create_analysis
from vitalens.store import Analysis

pytestmark = pytest.mark.usefixtures("fake_analyzers")

BROKER = "redis://127.0.0.1:6379/15"
REPO = Path(__file__).resolve().parents[2]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_broker():
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis at 127.0.0.1:6379 is required on CI for the Celery job tests")
        pytest.skip("Redis at 127.0.0.1:6379 unreachable: Celery job path not tested")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    yield BROKER
    redis.Redis.from_url(BROKER).flushdb()


def _start_worker(tmp_path: Path, kit, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "VITALENS_BROKER_URL": BROKER,
        "VITALENS_DATABASE_URL": kit.url,
        "VITALENS_BLOB_DIR": str(tmp_path / "blobs"),
        "VITALENS_DATA_DIR": str(tmp_path),
        "VITALENS_ENVIRONMENT": "test",
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",  # this checkout's package, not an installed one
        **env_extra,
    }
    code = "from vitalens.cli import main; main()"
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--import",
            "tests.service._fakes_worker",
        ],
        env=env,
        cwd=REPO,
        stdout=open(tmp_path / "worker.log", "ab"),
        stderr=subprocess.STDOUT,  # noqa: SIM115
    )


def _wait_status(kit, aid: str, wanted: set[str], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        with kit.session_factory() as s:
            status = s.get(Analysis, aid).status
        if status in wanted:
            return status
        time.sleep(0.1)
    return status


@pytest.mark.slow
def test_celery_worker_runs_jobs_and_survives_kill9(tmp_path, redis_broker) -> None:
    from vitalens.service.jobs.celery_app import create_celery_app
    from vitalens.service.jobs.celery_runner import CeleryRunner

    kit = make_store(tmp_path)
    hold = tmp_path / "hold"
    runner = CeleryRunner(create_celery_app(redis_broker))
    assert runner.health().ok
    with kit.session_factory() as s:
        user = add_user(s)
        ok_id = create_analysis(
            session=s, user=user, study_id=add_study(s, kit.blobs, user).id, analyzers=["test.echo", "test.boom"]
        ).id
        slow_id = create_analysis(
            session=s, user=user, study_id=add_study(s, kit.blobs, user, pseudonym="P-2").id, analyzers=["test.wait"]
        ).id
    worker = _start_worker(tmp_path, kit, {"VITALENS_TEST_HOLD": str(hold)})
    try:
        runner.submit(ok_id)
        runner.submit(ok_id)  # a duplicate delivery is harmless
        assert _wait_status(kit, ok_id, {"PARTIAL", "COMPLETE", "FAILED"}) == "PARTIAL", (
            tmp_path / "worker.log"
        ).read_text()
        hold.write_text("hold")
        runner.submit(slow_id)
        assert _wait_status(kit, slow_id, {"RUNNING"}) == "RUNNING"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        with kit.session_factory() as s:
            assert s.get(Analysis, slow_id).status == "RUNNING"  # stuck, until a worker comes back
        hold.unlink()
        worker = _start_worker(tmp_path, kit, {})
        assert _wait_status(kit, slow_id, {"COMPLETE", "FAILED"}) == "COMPLETE", (tmp_path / "worker.log").read_text()
        with kit.session_factory() as s:
            a = s.get(Analysis, slow_id)
            assert a.attempts == 2
            assert s.get(Analysis, ok_id).attempts == 1
    finally:
        worker.kill()
        worker.wait(10)


def test_celery_runner_reports_unreachable_broker() -> None:
    from vitalens.service.jobs.celery_app import create_celery_app
    from vitalens.service.jobs.celery_runner import CeleryRunner

    health = CeleryRunner(create_celery_app("redis://127.0.0.1:1/0")).health()
    assert not health.ok and "broker unreachable" in health.detail
