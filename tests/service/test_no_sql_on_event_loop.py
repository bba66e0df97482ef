"""The async routes (multipart uploads) run every database query in the threadpool, never on the event loop.

Why: a query on the event loop blocks every request of the process while it waits; when the connection pool is
busy that wait is the pool timeout (30 s), and requests holding connections cannot finish meanwhile. Under
``bench/load.py --db postgres --clients 50`` the study-creation response, built on the loop, stalled the server
for 30 s at a time and answered 500 (QueuePool timeout) 27 times in two minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.service.conftest import World
from tests.utils import factories as f


@pytest.fixture
def on_loop(app) -> Iterator[list[str]]:
    """The SQL statements executed on a thread that runs an event loop."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread: fine
        seen.append(statement.split()[0] + " " + " ".join(statement.split()[1:6]))

    event.listen(app.state.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(app.state.engine, "before_cursor_execute", before)


def test_creating_a_study_and_adding_inputs_query_off_the_loop(client: TestClient, world: World, on_loop) -> None:
    h = world.a.headers["clinician"]
    form = {"patient_id": world.a.patient.id, "study_date": "2024-03-01"}
    created = client.post(
        "/api/v1/studies", data=form, files={"fundus_left": ("l.png", f.png_bytes(seed=1), "image/png")}, headers=h
    )
    assert created.status_code == 201, created.text
    assert [i["slot"] for i in created.json()["inputs"]] == ["fundus_left"]  # the inputs were loaded, off the loop
    sid = created.json()["id"]
    added = client.post(f"/api/v1/studies/{sid}/inputs", files={"cxr": ("c.png", f.png_bytes(seed=2))}, headers=h)
    assert added.status_code == 201, added.text
    # the same submission again answers 200 with the stored study (the idempotent path builds it too)
    keyed = {**form, "submission_key": "form-0b9e4c1a-6a55-4b8e-9a77-3c0d2e5f8a11"}
    first = client.post("/api/v1/studies", data=keyed, headers=h)
    again = client.post("/api/v1/studies", data=keyed, headers=h)
    assert (first.status_code, again.status_code) == (201, 200) and again.json()["id"] == first.json()["id"]
    assert on_loop == []
