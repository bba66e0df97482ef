"""Load and crash bench of the clinical service: N concurrent clinicians on a real server, with optional kill -9.

Why: the claims "no committed record is lost" and "no analysis stays PENDING/RUNNING after a crash" only mean
something under concurrent load with a real process being killed. This script, on loopback only:

1. creates a temporary data folder and a database (SQLite file, or a fresh PostgreSQL database on
   127.0.0.1:5432 that it drops afterwards), migrates it, and bootstraps an admin, a site and N clinicians
   through the ops layer;
2. starts ``uvicorn`` (and with ``--broker`` a ``vitalens worker``) as subprocesses on a free port;
3. runs N clinicians concurrently for ``--seconds`` (each: login once, then loop: create patient, create study with
   two synthetic fundus images and age, POST an analysis, poll it until done, annotate, give feedback);
4. optionally ``kill -9``-s the server (``--kill-server-at``) or worker (``--kill-worker-at``) mid-load and restarts
   it on the same database; clients retry through the outage;
5. checks in the database that every record accepted with a 2xx exists and that no analysis stays PENDING/RUNNING.

The analyses use ``models/fundus-odir`` when bundled, else a tiny artifact trained once on the synthetic ODIR twin
(cached in the temp folder ``vitalens-bench-tiny-fundus``). Each client sends its own ``X-Forwarded-For`` (uvicorn
trusts it from 127.0.0.1), as clinicians behind a reverse proxy would, so the per-IP login limit applies per client.

Run (from the repository root):
    .venv/bin/python bench/load.py --db sqlite --clients 20 --seconds 30
    .venv/bin/python bench/load.py --db postgres --clients 20 --seconds 30 --kill-server-at 12
    .venv/bin/python bench/load.py --db sqlite --broker redis://127.0.0.1:6379/14 --kill-worker-at 10

Prints a table and writes ``bench/results/load-<db>[-celery][-kill].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE

REPO = Path(__file__).resolve().parents[1]


__all__ = ["main", "percentile", "route_table", "LoadStats"]

logger = logging.getLogger("bench.load")

PG_BASE = os.environ.get("VITALENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-password-correct-horse"  # noqa: S105 - throwaway accounts in a throwaway database
SECRET = "bench-secret-" + "x" * 40
FINAL = ("COMPLETE", "PARTIAL", "FAILED")
TINY_CACHE = Path(tempfile.gettempdir()) / "vitalens-bench-tiny-fundus"


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100, linear interpolation) of ``values``; None when empty."""
    return float(np.percentile(values, q)) if values else None


@dataclass
class LoadStats:
    """Every request's route, status and latency, plus the ids the server accepted (2xx)."""

    samples: list[tuple[str, str, float]] = field(default_factory=list)  # (route, status, seconds)
    accepted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    analysis_latency: list[float] = field(default_factory=list)  # 202 → final status seen, seconds
    analysis_final: Counter[str] = field(default_factory=Counter)
    workflows: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, route: str, status: str, seconds: float) -> None:
        self.samples.append((route, status, seconds))


def route_table(samples: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """Per route: count, p50/p95/max latency (ms, successful requests) and counts per non-2xx status."""
    by_route: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for route, status, seconds in samples:
        by_route[route].append((status, seconds))
    rows = []
    for route in sorted(by_route):
        items = by_route[route]
        ok = [s * 1000 for st, s in items if st.startswith("2")]
        errors = Counter(st for st, _ in items if not st.startswith("2"))
        rows.append(
            {
                "route": route,
                "count": len(items),
                "ok": len(ok),
                "p50_ms": percentile(ok, 50),
                "p95_ms": percentile(ok, 95),
                "max_ms": max(ok) if ok else None,
                "errors": dict(sorted(errors.items())),
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------- set-up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(kind: str, tmp: Path) -> tuple[str, str | None]:
    """(SQLAlchemy URL, PostgreSQL database name to drop afterwards or None)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'vitalens.db'}", None
    import psycopg

    name = f"vl_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_BASE.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_BASE.rpartition("/")
    return f"{base}/{name}", name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bootstrap(url: str, n_clients: int) -> list[str]:
    """Migrate, create the admin + site and ``n_clients`` clinicians through the ops layer; returns their e-mails."""
    from vitalens.service.ops.users import bootstrap_admin, create_user
    from vitalens.store import make_engine, make_session_factory, upgrade

    upgrade(url)
    engine = make_engine(url)
    emails = [f"clinician{i:03d}@bench.example" for i in range(n_clients)]
    try:
        with make_session_factory(engine)() as session:
            admin = bootstrap_admin(
                session=session, email="admin@bench.example", password=PASSWORD, site_name="Bench clinic"
            )
            for email in emails:
                create_user(session=session, user=admin, email=email, password=PASSWORD, role="clinician")
    finally:
        engine.dispose()
    return emails


def models_dir(tmp: Path) -> tuple[Path, str]:
    """The models folder to serve and a description: bundled ``models/fundus-odir``, else a tiny trained one."""
    bundled = REPO / "models"
    if (bundled / "fundus-odir" / "card.json").is_file():
        return bundled, "bundled models/fundus-odir"
    target = TINY_CACHE / "models"
    if not (target / "fundus-odir" / "card.json").is_file():
        import torch

        from vitalens.synth import write_odir_synth
        from vitalens.training import train

        torch.set_num_threads(1)
        work = Path(tempfile.mkdtemp(prefix="vitalens-bench-train-"))
        data = write_odir_synth(work / "odir", n_patients=48, image_size=64, seed=0)
        logger.info("training a tiny fundus.odir artifact on the synthetic twin (one epoch)")
        artifact = train(
            "fundus.odir",
            data=data,
            out=work / "run",
            overrides={
                "net.name": "odir_test",
                "net.pretrained": False,
                "task.image_size": 64,
                "train.max_epochs": 1,
            },
        )
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(artifact, target / "fundus-odir", dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return target, "tiny odir_test trained 1 epoch on the synthetic twin (64 px)"


def synthetic_images(tmp: Path, n: int = 6) -> list[bytes]:
    """JPEG bytes of ``2 n`` synthetic fundus photographs (256 px), from the ODIR synthetic twin."""
    from vitalens.synth import write_odir_synth

    root = write_odir_synth(tmp / "images-src", n_patients=n, image_size=256, seed=1)
    return [p.read_bytes() for p in sorted((root / "images").glob("*.jpg"))]


@dataclass
class Proc:
    """A restartable subprocess (the API server or the Celery worker)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        fh = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        fh.write(f"\n===== start {self.starts} at {time.time():.3f} =====\n".encode())
        fh.flush()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.argv, env=self.env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True
        )

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the whole process group (a worker's children too)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_warm(base: str, server: Proc, timeout: float = 300.0) -> float:
    """Poll ``/api/v1/health`` until the start-up model warm-up is done (not "running"); returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}; see {server.log}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=5).json().get("warmup") != "running":
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"model warm-up not done after {timeout:.0f} s; see {server.log}")


def wait_healthy(base: str, server: Proc, timeout: float = 120.0) -> float:
    """Poll ``/health`` until 200; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}; see {server.log}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s; see {server.log}")


# ----------------------------------------------------------------------------------------------- clients


@dataclass
class Run:
    base: str
    stats: LoadStats
    images: list[bytes]
    start: float
    stop_new: float  # no new workflow after this (monotonic)
    hard_stop: float  # nothing at all after this
    poll_s: float = 0.5
    honour_retry_after: bool = True


def _poll_wait(run: Run, response: httpx.Response | None) -> float:
    """Seconds before the next poll: the server's ``Retry-After`` when it sends one (and the run honours it, as the
    web app does), else the fixed ``poll_s``."""
    if run.honour_retry_after and response is not None:
        try:
            return min(max(float(response.headers.get("Retry-After", "")), run.poll_s), 30.0)
        except ValueError:
            pass
    return run.poll_s


_RETRY = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError, httpx.ConnectTimeout)


async def call(
    client: httpx.AsyncClient, run: Run, method: str, url: str, route: str, **kw: Any
) -> httpx.Response | None:
    """One request, retried through connection failures (server down) until the hard stop; None if it never got
    a response. Every attempt is recorded (``conn_error`` for transport failures)."""
    while time.monotonic() < run.hard_stop:
        t0 = time.monotonic()
        try:
            response = await client.request(method, url, **kw)
        except _RETRY as exc:
            run.stats.add(route, "conn_error", time.monotonic() - t0)
            logger.debug("%s: %s; retrying", route, type(exc).__name__)
            await asyncio.sleep(0.5)
            continue
        except httpx.TimeoutException:
            run.stats.add(route, "timeout", time.monotonic() - t0)
            return None
        run.stats.add(route, str(response.status_code), time.monotonic() - t0)
        return response
    return None


def _ok(response: httpx.Response | None) -> bool:
    return response is not None and 200 <= response.status_code < 300


async def clinician(i: int, email: str, run: Run) -> None:
    headers = {"X-Forwarded-For": f"10.{(i // 250) % 250}.{i % 250}.7", "User-Agent": f"vitalens-bench/{i}"}
    async with httpx.AsyncClient(base_url=run.base, timeout=60.0, headers=headers) as client:
        r = await call(
            client, run, "POST", "/api/v1/auth/login", "POST /auth/login", json={"email": email, "password": PASSWORD}
        )
        if not _ok(r):
            logger.warning("clinician %d could not log in: %s", i, r.text if r is not None else "no response")
            return
        assert r is not None
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        n = 0
        while time.monotonic() < run.stop_new:
            n += 1
            if await workflow(client, run, i, n):
                run.stats.workflows += 1


async def workflow(client: httpx.AsyncClient, run: Run, i: int, n: int) -> bool:
    """One visit: patient, study with both eyes, analysis (polled), annotation, feedback. False if a step failed."""
    stats = run.stats
    r = await call(
        client,
        run,
        "POST",
        "/api/v1/patients",
        "POST /patients",
        json={"pseudonym": f"B{i:03d}-{n:04d}-{uuid.uuid4().hex[:6]}", "year_of_birth": 1958, "sex": "female"},
    )
    if not _ok(r):
        return False
    assert r is not None
    patient_id = r.json()["id"]
    stats.accepted["patients"].add(patient_id)
    left = run.images[(2 * (i + n)) % len(run.images)]
    right = run.images[(2 * (i + n) + 1) % len(run.images)]
    r = await call(
        client,
        run,
        "POST",
        "/api/v1/studies",
        "POST /studies",
        data={"patient_id": patient_id, "study_date": "2024-05-01", "age_years": "63"},
        files={"fundus_left": ("left.jpg", left, "image/jpeg"), "fundus_right": ("right.jpg", right, "image/jpeg")},
    )
    if not _ok(r):
        return False
    assert r is not None
    study = r.json()
    stats.accepted["studies"].add(study["id"])
    left_input = next(x["id"] for x in study["inputs"] if x["slot"] == "fundus_left")
    r = await call(
        client,
        run,
        "POST",
        f"/api/v1/studies/{study['id']}/analyses",
        "POST /studies/{id}/analyses",
        json={"analyzers": ["fundus.odir"], "job_key": f"bench-{study['id']}"},  # retries stay idempotent
    )
    if not _ok(r):
        return False
    assert r is not None
    analysis_id = r.json()["id"]
    stats.accepted["analyses"].add(analysis_id)
    submitted = time.monotonic()
    analysis: dict[str, Any] = {}
    wait_s = _poll_wait(run, r)
    while time.monotonic() < run.hard_stop:
        await asyncio.sleep(wait_s)
        r = await call(client, run, "GET", f"/api/v1/analyses/{analysis_id}", "GET /analyses/{id}")
        if not _ok(r):
            return False
        assert r is not None
        analysis = r.json()
        wait_s = _poll_wait(run, r)
        if analysis["status"] in FINAL:
            stats.analysis_latency.append(time.monotonic() - submitted)
            stats.analysis_final[analysis["status"]] += 1
            break
    else:
        stats.analysis_final["not finished by the bench's end"] += 1
        return False
    findings = analysis.get("findings") or []
    r = await call(
        client,
        run,
        "POST",
        f"/api/v1/inputs/{left_input}/annotations",
        "POST /inputs/{id}/annotations",
        json={
            "shape": "box",
            "geometry": {"x0": 40, "y0": 50, "x1": 90, "y1": 100},
            "label": "haemorrhage",
            "finding_id": findings[0]["id"] if findings else None,
        },
    )
    if not _ok(r):
        return False
    assert r is not None
    stats.accepted["annotations"].add(r.json()["id"])
    if not findings:
        return True
    r = await call(
        client,
        run,
        "POST",
        f"/api/v1/findings/{findings[0]['id']}/feedback",
        "POST /findings/{id}/feedback",
        json={"action": "confirm"},
    )
    if not _ok(r):
        return False
    assert r is not None
    stats.accepted["feedback"].add(r.json()["id"])
    return True


async def killer(run: Run, target: Proc, at_s: float, base: str, server: Proc, what: str) -> None:
    """``kill -9`` ``target`` at ``at_s`` seconds into the load, restart it, record the outage."""
    await asyncio.sleep(max(0.0, run.start + at_s - time.monotonic()))
    t_kill = time.monotonic()
    pid = target.proc.pid if target.proc else None
    await asyncio.to_thread(target.kill9)
    logger.warning("killed the %s (pid %s) with SIGKILL at %.1f s", what, pid, t_kill - run.start)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(target.start)
    waited = 0.0
    if target is server:
        waited = await asyncio.to_thread(wait_healthy, base, server)
    run.stats.events.append(
        {
            "event": f"kill -9 {what}",
            "at_s": round(t_kill - run.start, 2),
            "pid": pid,
            "restarted_after_s": round(time.monotonic() - t_kill, 2),
            "healthy_wait_s": round(waited, 2),
        }
    )


async def drive(run: Run, emails: list[str], kills: list[tuple[Proc, float, str]], server: Proc) -> None:
    tasks = [asyncio.create_task(clinician(i, e, run)) for i, e in enumerate(emails)]
    tasks += [asyncio.create_task(killer(run, p, at, run.base, server, what)) for p, at, what in kills]
    await asyncio.gather(*tasks)


# ----------------------------------------------------------------------------------------------- checks


def verify(url: str, stats: LoadStats, timeout_s: float) -> dict[str, Any]:
    """Wait until no analysis is PENDING/RUNNING (or ``timeout_s``), then check every accepted id exists."""
    from sqlalchemy import func, select

    from vitalens.store import Analysis, Annotation, Feedback, Patient, Study, make_engine, make_session_factory

    engine = make_engine(url)
    tables = {
        "patients": Patient,
        "studies": Study,
        "analyses": Analysis,
        "annotations": Annotation,
        "feedback": Feedback,
    }
    t0 = time.monotonic()
    try:
        factory = make_session_factory(engine)
        while True:
            with factory() as session:
                unfinished = session.scalars(
                    select(Analysis.id).where(Analysis.status.in_(("PENDING", "RUNNING")))
                ).all()
            if not unfinished or time.monotonic() - t0 > timeout_s:
                break
            time.sleep(1.0)
        settle = time.monotonic() - t0
        result: dict[str, Any] = {"unfinished_wait_s": round(settle, 1), "unfinished_analyses": len(unfinished)}
        lost: dict[str, list[str]] = {}
        with factory() as session:
            for name, model in tables.items():
                ids = sorted(stats.accepted.get(name, set()))
                found: set[str] = set()
                for k in range(0, len(ids), 500):
                    chunk = ids[k : k + 500]
                    found |= set(session.scalars(select(model.id).where(model.id.in_(chunk))).all())
                lost[name] = [x for x in ids if x not in found]
                result[f"{name}_accepted"] = len(ids)
            statuses = dict(session.execute(select(Analysis.status, func.count()).group_by(Analysis.status)).all())
            attempts = dict(session.execute(select(Analysis.attempts, func.count()).group_by(Analysis.attempts)).all())
        result["lost"] = {k: len(v) for k, v in lost.items()}
        result["lost_examples"] = {k: v[:5] for k, v in lost.items() if v}
        result["analysis_status_in_db"] = {str(k): int(v) for k, v in statuses.items()}
        result["analysis_attempts_in_db"] = {str(k): int(v) for k, v in attempts.items()}
        result["ok"] = not any(lost.values()) and not unfinished
        return result
    finally:
        engine.dispose()


_CEILING = """
import sys, time, json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from vitalens.analyzers import create_analyzer
from vitalens.domain import StudyInputs
from vitalens.io.images import decode_image
paths = sorted(Path(sys.argv[1]).glob("*.jpg"))
images = [decode_image(p.read_bytes()) for p in paths]
analyzer = create_analyzer("fundus.odir", models_dir=Path(sys.argv[2]))
studies = [StudyInputs(fundus_left=images[2 * k % len(images)], fundus_right=images[(2 * k + 1) % len(images)],
                       age_years=63) for k in range(int(sys.argv[3]))]
def run(study):
    try:
        analyzer(study, explain=True)
        return "complete"
    except Exception as exc:  # a quality-gate refusal, as the job path counts it
        return type(exc).__name__
run(studies[0])
t0 = time.perf_counter()
with ThreadPoolExecutor(2) as pool:
    outcomes = list(pool.map(run, studies))
print(json.dumps({"n": len(studies), "seconds": time.perf_counter() - t0,
                  "outcomes": {k: outcomes.count(k) for k in set(outcomes)}}))
"""


def analyzer_ceiling(env: dict[str, str], image_dir: Path, mdir: Path, n: int = 16) -> dict[str, Any]:
    """The analyzer's own throughput on this machine, right after the load: ``fundus.odir`` with explanations on
    the same images, 2 threads like the job pool, one thread per op like the server, no HTTP, no database."""
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _CEILING, str(image_dir), str(mdir), str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=str(REPO),
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    return {**measured, "analyses_per_min": measured["n"] / measured["seconds"] * 60.0, "threads": 2}


def job_breakdown(url: str, latency_p50_s: float | None) -> dict[str, Any]:
    """Where an analysis's time went, from the database: queue wait (created → claimed), each stage's own time
    (validate = reading and decoding the blobs, the analyzers, report = result rows and blob writes in one
    commit), the job's bookkeeping between stages (claim, stage rows, lease), and the clients' polling lag
    (their latency p50 minus the created → finished p50). Also the job pool's capacity: analyses per minute it
    could finish at the measured per-job time with its concurrency."""
    from sqlalchemy import select

    from vitalens.store import Analysis, AnalysisStage, make_engine, make_session_factory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(Analysis.id, Analysis.created_at, Analysis.started_at, Analysis.finished_at).where(
                    Analysis.status.in_(FINAL), Analysis.started_at.is_not(None), Analysis.finished_at.is_not(None)
                )
            ).all()
            stages: dict[str, dict[str, float]] = defaultdict(dict)
            for aid, name, ms in session.execute(
                select(AnalysisStage.analysis_id, AnalysisStage.name, AnalysisStage.duration_ms)
            ).all():
                if ms is not None:
                    stages[aid][name] = float(ms) / 1000.0
    finally:
        engine.dispose()
    if not rows:
        return {"n": 0}
    queue = [(r.started_at - r.created_at).total_seconds() for r in rows]
    run = [(r.finished_at - r.started_at).total_seconds() for r in rows]
    total = [(r.finished_at - r.created_at).total_seconds() for r in rows]
    names = sorted({n for st in stages.values() for n in st})
    per_stage = {n: [stages[r.id][n] for r in rows if n in stages[r.id]] for n in names}
    bookkeeping = [run[i] - sum(stages[r.id].values()) for i, r in enumerate(rows)]
    starts = sorted(r.started_at for r in rows)
    ends = sorted(r.finished_at for r in rows)
    window = (ends[-1] - starts[0]).total_seconds() or 1.0
    busy = sum(run) / window  # mean number of jobs running at once over the run
    out: dict[str, Any] = {
        "n": len(rows),
        "queue_wait_s": {"p50": percentile(queue, 50), "p95": percentile(queue, 95)},
        "job_run_s": {"p50": percentile(run, 50), "p95": percentile(run, 95), "mean": float(np.mean(run))},
        "created_to_finished_s": {"p50": percentile(total, 50), "p95": percentile(total, 95)},
        "stages_s": {n: {"p50": percentile(v, 50), "mean": float(np.mean(v))} for n, v in per_stage.items() if v},
        "bookkeeping_s": {"p50": percentile(bookkeeping, 50), "mean": float(np.mean(bookkeeping))},
        "mean_jobs_running": busy,
        "jobs_finished_per_min": len(rows) / window * 60.0,
        "pool_capacity_per_min": busy / float(np.mean(run)) * 60.0 if np.mean(run) > 0 else None,
    }
    if latency_p50_s is not None and out["created_to_finished_s"]["p50"] is not None:
        out["client_polling_lag_p50_s"] = latency_p50_s - out["created_to_finished_s"]["p50"]
    return out


# ----------------------------------------------------------------------------------------------- report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_table(result: dict[str, Any]) -> None:
    print(
        f"vitalens load bench: {result['config']['db']}, {result['config']['clients']} clients, "
        f"{result['config']['seconds']} s, jobs={result['config']['jobs']}, model: {result['config']['model']}, "
        f"warm-up {'on' if result['config'].get('warm_models') else 'off'}"
    )
    print(f"{'route':34s} {'n':>6s} {'ok':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}  errors")
    for row in result["routes"]:
        errors = ", ".join(f"{k}×{v}" for k, v in row["errors"].items()) or "0"
        print(
            f"{row['route']:34s} {row['count']:6d} {row['ok']:6d} {_fmt(row['p50_ms']):>8s} "
            f"{_fmt(row['p95_ms']):>8s} {_fmt(row['max_ms']):>8s}  {errors}"
        )
    t = result["throughput"]
    print(
        f"throughput: {t['requests_per_s']:.1f} req/s, {t['workflows']} complete visits "
        f"({t['workflows_per_min']:.1f}/min), analyses final {result['analyses']['final_seen']}, "
        f"analysis latency p50 {_fmt(result['analyses']['latency_p50_s'])} s / "
        f"p95 {_fmt(result['analyses']['latency_p95_s'])} s"
    )
    print(f"errors by status (all routes): {result['errors_by_status'] or 'none'}")
    for event in result["events"]:
        print(f"event: {event}")
    b = result.get("job_breakdown") or {}
    if b.get("n"):
        stage_text = ", ".join(f"{k} {v['mean']:.2f}" for k, v in b["stages_s"].items())
        print(
            f"job path (n = {b['n']}, means/p50 in s): queue wait p50 {b['queue_wait_s']['p50']:.1f}, job run p50 "
            f"{b['job_run_s']['p50']:.2f} (stages: {stage_text}; bookkeeping {b['bookkeeping_s']['mean']:.2f}), "
            f"polling lag p50 {b.get('client_polling_lag_p50_s', float('nan')):.2f}; {b['mean_jobs_running']:.2f} "
            f"jobs running on average, {b['jobs_finished_per_min']:.1f} finished/min"
        )
        alone = b.get("analyzer_alone") or {}
        if "analyses_per_min" in alone:
            print(
                f"the analyzer alone on this machine right after (2 threads, no HTTP/DB): "
                f"{alone['analyses_per_min']:.1f} analyses/min ({alone['seconds'] / alone['n']:.2f} s each)"
            )
    v = result["verify"]
    print(
        f"database check: lost {v['lost']}, unfinished analyses {v['unfinished_analyses']} "
        f"(waited {v['unfinished_wait_s']} s), statuses {v['analysis_status_in_db']} -> "
        f"{'OK' if v['ok'] else 'FAILED'}"
    )
    print(DECISION_SUPPORT_NOTICE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="Time during which visits are started.")
    parser.add_argument("--grace", type=float, default=180.0, help="Extra time to finish visits in flight.")
    parser.add_argument("--kill-server-at", type=float, default=None, help="kill -9 the server after S seconds.")
    parser.add_argument("--broker", default=None, help="Celery broker (redis://127.0.0.1:6379/14) + a worker.")
    parser.add_argument("--kill-worker-at", type=float, default=None, help="kill -9 the worker after S seconds.")
    parser.add_argument("--recovery-timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None, help="Result JSON (default bench/results/load-...json).")
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder (logs, SQLite file).")
    parser.add_argument(
        "--warm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Start-up model warm-up on (the default; the load starts once /health says it is done) or off (cold).",
    )
    parser.add_argument(
        "--retry-after",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Clients wait as the server's Retry-After says while an analysis runs (the default, as the web app "
        "does) or poll every 0.5 s regardless (--no-retry-after, the earlier clients).",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.kill_worker_at is not None and not args.broker:
        parser.error("--kill-worker-at needs --broker")
    if args.broker and not args.broker.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("the bench runs on loopback only: --broker must be redis://127.0.0.1:...")

    tmp = Path(tempfile.mkdtemp(prefix="vitalens-load-"))
    url, pg_name = create_database(args.db, tmp)
    server: Proc | None = None
    worker: Proc | None = None
    try:
        emails = bootstrap(url, args.clients)
        mdir, model_desc = models_dir(tmp)
        images = synthetic_images(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "VITALENS_DATABASE_URL": url,
            "VITALENS_DATA_DIR": str(tmp / "data"),
            "VITALENS_SECRET_KEY": SECRET,
            "VITALENS_ENVIRONMENT": "test",
            "VITALENS_MODELS_DIR": str(mdir),
            "HF_HUB_OFFLINE": "1",
            "VITALENS_WARM_MODELS": "1" if args.warm else "0",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO / "src"),
        }
        env.pop("VITALENS_BROKER_URL", None)
        if args.broker:
            import redis

            redis.Redis.from_url(args.broker).flushdb()  # the bench's own database number: no stale messages
            env["VITALENS_BROKER_URL"] = args.broker
        server = Proc(
            "server",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "vitalens.service.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--proxy-headers",
                "--forwarded-allow-ips",
                "127.0.0.1",
            ],
            env,
            tmp / "server.log",
        )
        server.start()
        wait_healthy(base, server)
        warm_wait = wait_warm(base, server) if args.warm and not args.broker else None
        if args.broker:
            worker = Proc(
                "worker",
                [
                    sys.executable,
                    "-c",
                    "from vitalens.cli import main; main()",
                    "worker",
                    "--pool",
                    "threads",
                    "-c",
                    "2",
                    "--loglevel",
                    "WARNING",
                ],
                env,
                tmp / "worker.log",
            )
            worker.start()
        kills: list[tuple[Proc, float, str]] = []
        if args.kill_server_at is not None:
            kills.append((server, args.kill_server_at, "server"))
        if args.kill_worker_at is not None and worker is not None:
            kills.append((worker, args.kill_worker_at, "worker"))
        stats = LoadStats()
        t0 = time.monotonic()
        run = Run(
            base,
            stats,
            images,
            start=t0,
            stop_new=t0 + args.seconds,
            hard_stop=t0 + args.seconds + args.grace,
            honour_retry_after=args.retry_after,
        )
        asyncio.run(drive(run, emails, kills, server))
        elapsed = time.monotonic() - t0
        logger.info("load finished after %.1f s; checking the database", elapsed)
        checked = verify(url, stats, args.recovery_timeout)
        breakdown = job_breakdown(url, percentile(stats.analysis_latency, 50))
        for proc in (worker, server):
            if proc is not None:
                proc.stop()
        breakdown["analyzer_alone"] = analyzer_ceiling(env, tmp / "images-src" / "images", mdir)
        routes = route_table(stats.samples)
        errors = Counter(st for _, st, _ in stats.samples if not st.startswith("2"))
        result = {
            "notice": DECISION_SUPPORT_NOTICE,
            "config": {
                "db": args.db,
                "clients": args.clients,
                "seconds": args.seconds,
                "jobs": f"celery ({args.broker})" if args.broker else "in-process",
                "kill_server_at": args.kill_server_at,
                "kill_worker_at": args.kill_worker_at,
                "model": model_desc,
                "warm_models": args.warm,
                "warmup_wait_s": warm_wait,
                "clients_honour_retry_after": args.retry_after,
            },
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "elapsed_s": round(elapsed, 1),
            "throughput": {
                "requests": len(stats.samples),
                "requests_per_s": len(stats.samples) / elapsed,
                "workflows": stats.workflows,
                "workflows_per_min": stats.workflows / elapsed * 60,
            },
            "routes": routes,
            "errors_by_status": dict(sorted(errors.items())),
            "analyses": {
                "final_seen": dict(stats.analysis_final),
                "latency_p50_s": percentile(stats.analysis_latency, 50),
                "latency_p95_s": percentile(stats.analysis_latency, 95),
            },
            "events": stats.events,
            "job_breakdown": breakdown,
            "verify": checked,
        }
        suffix = ("-celery" if args.broker else "") + ("-kill" if kills else "")
        out = args.out or REPO / "bench" / "results" / f"load-{args.db}{suffix}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print_table(result)
        print(f"wrote {out}")
        return 0 if checked["ok"] else 1
    finally:
        for proc in (worker, server):
            if proc is not None:
                proc.stop()
        if pg_name:
            drop_database(pg_name)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
