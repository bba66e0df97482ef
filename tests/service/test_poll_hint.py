"""The poll hint (``Retry-After``) of a queued or running analysis: exact seconds from the instance's recent run
times, the queue ahead and the analyses running now; none once final."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.service._analysis_fakes import StoreKit, add_study, add_user, make_store
from vitalens.service.ops.analyses import (
    DEFAULT_JOB_S,
    POLL_AFTER_MAX_S,
    POLL_AFTER_MIN_S,
    create_analysis,
    poll_after_s,
)
from vitalens.store import Analysis, User

pytestmark = pytest.mark.usefixtures("fake_analyzers")

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def kit(tmp_path: Path) -> StoreKit:
    return make_store(tmp_path)


@pytest.fixture
def new_analysis(kit: StoreKit) -> Callable[..., str]:
    """A fresh ``test.echo`` analysis created ``minutes_ago`` before NOW, in the given state."""
    with kit.session_factory() as s:  # type: ignore[operator]
        user_id = add_user(s).id
    count = iter(range(1000))

    def make(minutes_ago: float, status: str = "PENDING", run_s: float | None = None, started_s_ago: float = 0) -> str:
        with kit.session_factory() as s:  # type: ignore[operator]
            user = s.get(User, user_id)
            study = add_study(s, kit.blobs, user, pseudonym=f"P-{next(count)}")
            a = create_analysis(session=s, user=user, study_id=study.id, analyzers=["test.echo"])
            a.created_at = NOW - timedelta(minutes=minutes_ago)
            a.status = status
            if status == "RUNNING":
                a.started_at = NOW - timedelta(seconds=started_s_ago)
            if run_s is not None:  # finished: started run_s before it finished
                a.finished_at = a.created_at + timedelta(seconds=1)
                a.started_at = a.finished_at - timedelta(seconds=run_s)
            s.commit()
            return a.id

    return make


def _hint(kit: StoreKit, aid: str) -> int | None:
    with kit.session_factory() as s:  # type: ignore[operator]
        return poll_after_s(session=s, analysis=s.get(Analysis, aid), now=NOW)


def test_bounds_and_default() -> None:
    assert (POLL_AFTER_MIN_S, POLL_AFTER_MAX_S, DEFAULT_JOB_S) == (1, 30, 2.0)


def test_nothing_finished_yet_uses_the_default_run_time(kit, new_analysis) -> None:
    # nothing ahead, nothing running: its own run, 2.0 s, halved -> 1 s
    assert _hint(kit, new_analysis(1)) == 1


def test_queued_behind_others_counts_the_rounds_ahead(kit, new_analysis) -> None:
    for run_s in (10.0, 20.0, 30.0):  # median run time 20 s
        new_analysis(60, status="COMPLETE", run_s=run_s)
    new_analysis(5, status="RUNNING", started_s_ago=1)
    new_analysis(5, status="RUNNING", started_s_ago=1)
    new_analysis(4)  # one queued ahead
    mine = new_analysis(3)
    new_analysis(2)  # queued behind: does not count
    # (1 ahead / 2 running) x 20 s + its own 20 s = 30 s, halved -> 15 s
    assert _hint(kit, mine) == 15
    # three more ahead with the same two running: (4 / 2) x 20 + 20 = 60 s, halved 30 -> the 30 s cap
    for _ in range(3):
        new_analysis(3.5)
    assert _hint(kit, mine) == POLL_AFTER_MAX_S


def test_running_counts_what_it_has_had(kit, new_analysis) -> None:
    for run_s in (10.0, 20.0, 30.0):
        new_analysis(60, status="COMPLETE", run_s=run_s)
    assert _hint(kit, new_analysis(1, status="RUNNING", started_s_ago=8)) == 6  # (20 - 8) / 2
    assert _hint(kit, new_analysis(1, status="RUNNING", started_s_ago=7)) == 7  # ceil(13 / 2)
    assert _hint(kit, new_analysis(1, status="RUNNING", started_s_ago=50)) == POLL_AFTER_MIN_S  # overdue


def test_final_analyses_have_no_hint(kit, new_analysis) -> None:
    for status in ("COMPLETE", "PARTIAL", "FAILED"):
        assert _hint(kit, new_analysis(1, status=status, run_s=3.0)) is None
