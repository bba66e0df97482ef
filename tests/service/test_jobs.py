"""Analysis jobs: lifecycle with stages and timings, PARTIAL/FAILED, idempotent re-delivery, crash recovery."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from tests.service._analysis_fakes import GATE, add_study, add_user, make_store
from vitalens.service.jobs import InProcessRunner, execute_analysis, owner_alive, recover_interrupted
from vitalens.service.ops.analyses import create_analysis
from vitalens.store import Analysis, Explanation, Finding, Measurement

pytestmark = pytest.mark.usefixtures("fake_analyzers")


@pytest.fixture
def kit(tmp_path):
    return make_store(tmp_path)


def _analysis(kit, names, **study_kw):
    with kit.session_factory() as s:
        user = add_user(s)
        study = add_study(s, kit.blobs, user, **study_kw)
        return create_analysis(session=s, user=user, study_id=study.id, analyzers=names).id


def _load(kit, analysis_id):
    with kit.session_factory() as s:
        a = s.get(Analysis, analysis_id)
        stages = [(st.name, st.status, st.duration_ms, st.error) for st in a.stages]
        return a.status, a.error, stages, a.versions, a.attempts


def test_complete_job_has_stages_timings_and_results(kit) -> None:
    aid = _analysis(kit, ["test.echo"], fundus_value=200)
    assert execute_analysis(aid, ctx=kit.ctx) == "COMPLETE"
    status, error, stages, versions, attempts = _load(kit, aid)
    assert (status, error, attempts) == ("COMPLETE", None, 1)
    assert [(n, st) for n, st, _, _ in stages] == [
        ("validate", "COMPLETE"),
        ("test.echo", "COMPLETE"),
        ("report", "COMPLETE"),
    ]
    assert all(ms is not None and ms >= 0 for _, _, ms, _ in stages)
    assert versions["test.echo"]["version"] == "0.0.1" and versions["test.echo"]["demonstration"] is True
    with kit.session_factory() as s:
        finding = s.query(Finding).filter_by(analysis_id=aid).one()
        # JPEG of a uniform grey 200 decodes to ~200: probability = 200/255
        assert finding.probability == pytest.approx(200 / 255, abs=0.01)
        assert finding.positive is True and finding.band == "Low"
        assert s.query(Measurement).filter_by(analysis_id=aid).one().unit == "a.u."
        expl = s.query(Explanation).filter_by(analysis_id=aid).one()
        assert expl.input_id is not None
        heat = np.load(__import__("io").BytesIO(kit.blobs.get(expl.heatmap_blob_key)))
        assert heat.shape == (96, 96) and heat.dtype == np.float32
        assert kit.blobs.get(expl.overlay_blob_key).startswith(b"\x89PNG")


def test_partial_names_the_failed_analyzer_and_why(kit) -> None:
    aid = _analysis(kit, ["test.echo", "test.boom", "test.refuse"])
    assert execute_analysis(aid, ctx=kit.ctx) == "PARTIAL"
    status, error, stages, _, _ = _load(kit, aid)
    assert "test.boom failed: RuntimeError: model exploded" in error
    assert "test.refuse failed: fundus_left: image too dark: mean 3 < 20" in error
    by_name = {n: (st, err) for n, st, _, err in stages}
    assert by_name["test.echo"] == ("COMPLETE", None)
    assert by_name["test.boom"][0] == "FAILED"


def test_all_failing_is_failed(kit) -> None:
    aid = _analysis(kit, ["test.boom"])
    assert execute_analysis(aid, ctx=kit.ctx) == "FAILED"
    status, error, _, _, _ = _load(kit, aid)
    assert status == "FAILED" and "model exploded" in error


def test_redelivery_of_a_finished_analysis_does_nothing(kit) -> None:
    aid = _analysis(kit, ["test.echo"])
    assert execute_analysis(aid, ctx=kit.ctx) == "COMPLETE"
    assert execute_analysis(aid, ctx=kit.ctx) == "SKIPPED"
    _, _, _, _, attempts = _load(kit, aid)
    assert attempts == 1
    with kit.session_factory() as s:
        assert s.query(Finding).filter_by(analysis_id=aid).count() == 1


def test_unknown_analysis_is_dropped(kit) -> None:
    assert execute_analysis("0" * 32, ctx=kit.ctx) == "SKIPPED"


def test_owner_alive_and_leases() -> None:
    from datetime import UTC, datetime, timedelta

    from vitalens.service.jobs.lease import lease_alive

    host, now = socket.gethostname(), datetime.now(UTC)
    assert owner_alive(f"{host}:{os.getpid()}") is True
    assert owner_alive(f"{host}:999999999") is False
    assert owner_alive("another-host:1") is None  # another host's process: only its lease can tell
    assert owner_alive(None) is False
    ahead, lapsed = now + timedelta(seconds=30), now - timedelta(seconds=1)
    assert lease_alive("another-host:1", ahead, now) is True
    assert lease_alive("another-host:1", lapsed, now) is False  # before: "another host: assumed alive", forever
    assert lease_alive("another-host:1", None, now) is False
    assert lease_alive(f"{host}:999999999", ahead, now) is False  # a dead process here releases at once
    assert lease_alive(f"{host}:{os.getpid()}", ahead, now) is True


def _mark_running(kit, aid, worker, attempts=1, lease_s: float | None = None):
    from datetime import UTC, datetime, timedelta

    with kit.session_factory() as s:
        a = s.get(Analysis, aid)
        a.status, a.worker, a.attempts = "RUNNING", worker, attempts
        a.lease_expires_at = datetime.now(UTC) + timedelta(seconds=lease_s) if lease_s is not None else None
        s.commit()


def test_crash_recovery_requeues_dead_owner_and_fails_exhausted(kit) -> None:
    host = socket.gethostname()
    dead = _analysis(kit, ["test.echo"])
    _mark_running(kit, dead, f"{host}:999999999", lease_s=60)  # dead process, lease still ahead: released at once
    with kit.session_factory() as s:
        user = s.get(Analysis, dead).requested_by_id
    with kit.session_factory() as s:
        from vitalens.store import User

        u = s.get(User, user)
        ids = []
        for n in range(4):
            study = add_study(s, kit.blobs, u, pseudonym=f"P-{n + 2}")
            ids.append(create_analysis(session=s, user=u, study_id=study.id, analyzers=["test.echo"]).id)
    exhausted, alive, remote_alive, remote_lapsed = ids
    _mark_running(kit, exhausted, f"{host}:999999999", attempts=3)
    _mark_running(kit, alive, f"{host}:{os.getppid()}", lease_s=60)
    _mark_running(kit, remote_alive, "other-host:42", lease_s=60)
    _mark_running(kit, remote_lapsed, "other-host:43", lease_s=-1)  # its worker on another host died
    runner = InProcessRunner(lambda i: execute_analysis(i, ctx=kit.ctx), max_workers=1)
    try:
        report = recover_interrupted(kit.ctx, runner)
        assert runner.wait(30)
    finally:
        runner.shutdown()
    assert sorted(report.requeued) == sorted([dead, remote_lapsed])
    assert report.failed == [exhausted]
    assert sorted(report.left_running) == sorted([alive, remote_alive])
    assert _load(kit, dead)[0] == "COMPLETE" and _load(kit, dead)[4] == 2
    assert _load(kit, remote_lapsed)[0] == "COMPLETE" and _load(kit, remote_lapsed)[4] == 2
    status, error, *_ = _load(kit, exhausted)
    assert status == "FAILED" and "interrupted 3 time(s)" in error
    assert _load(kit, alive)[0] == "RUNNING" and _load(kit, remote_alive)[0] == "RUNNING"


def test_in_process_runner_does_not_queue_twice(kit) -> None:
    aid = _analysis(kit, ["test.wait"])
    GATE.clear()
    calls = []
    runner = InProcessRunner(lambda i: calls.append(i) or execute_analysis(i, ctx=kit.ctx), max_workers=2)
    try:
        runner.submit(aid)
        runner.submit(aid)
        assert runner.running_ids() == {aid}
        assert runner.health().ok
        GATE.set()
        assert runner.wait(30)
    finally:
        GATE.set()
        runner.shutdown()
    assert calls == [aid]
    assert _load(kit, aid)[0] == "COMPLETE"
    assert not runner.health().ok
