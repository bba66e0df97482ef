"""The container recipe and the compose file.

Default run: the recipe's promises read from the files (multi-stage, CPU and CUDA variants, non-root, health check;
compose with API + worker + PostgreSQL + Redis, readiness probes and start order). Slow run, where a daemonless
builder exists (podman, from Debian): build the CPU image and run it — once alone on SQLite, once as the scale-out
topology (a migrate job, the API and a Celery worker) against this machine's PostgreSQL and Redis — and wait for
their probes. No Docker engine is needed; skipped with the reason where podman or the base image is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.utils.databases import PG_URL, postgres_reachable
from tests.utils.s3 import free_port

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
COMPOSE = REPO / "deploy" / "compose.yaml"
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/vitalens:test-cpu"
SECRET = "container-test-secret-0123456789-abcdefghij"  # noqa: S105


def test_containerfile_is_multistage_non_root_with_health_check_and_both_variants() -> None:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in runtime and "pip install" not in runtime
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.M), "the runtime runs as a non-root user"
    assert "useradd --system --uid 10001" in runtime
    assert re.search(r"^HEALTHCHECK .*\n.*/api/v1/health", runtime, flags=re.M)
    assert 'if [ "$TORCH_VARIANT" = "cpu" ]' in text and 'elif [ "$TORCH_VARIANT" = "cuda" ]' in text
    assert "COPY models /opt/vitalens/models" in runtime and "HF_HUB_OFFLINE=1" in runtime


def test_compose_runs_api_worker_postgres_redis_with_probes_and_order() -> None:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = doc["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], f"{name} has a health check"
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "vitalens", "ready", "--worker"]
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    env = services["api"]["environment"]
    assert env["VITALENS_ENVIRONMENT"] == "prod" and env["VITALENS_SECRET_KEY"].startswith("${VITALENS_SECRET_KEY:?")
    assert env["VITALENS_BROKER_URL"] == "redis://redis:6379/0" and "@postgres:5432/" in env["VITALENS_DATABASE_URL"]
    assert services["api"]["ports"] == ["127.0.0.1:${VITALENS_PORT:-8000}:8000"], "published on loopback only"


# ------------------------------------------------------------------------------------------------ slow: podman


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _wheel_dir() -> Path | None:
    """A local wheel folder holding a CPU torch wheel (pip's find-links on this machine), to build offline."""
    for entry in os.environ.get("PIP_FIND_LINKS", "").split():
        path = Path(entry.removeprefix("file://"))
        if path.is_dir() and any(path.glob("torch-*+cpu-*.whl")):
            return path
    return None


def _runnable(tmp: Path) -> str | None:
    """Make ``podman run`` work in this sandbox, or say why it cannot.

    Sandboxes without CAP_SYS_RESOURCE refuse podman's default rlimits (it raises NOFILE/NPROC), and crun refuses a
    hybrid cgroup layout; a containers.conf with the current limits and runc gets past both.
    """
    if _podman("run", "--rm", BASE_IMAGE, "true", check=False).returncode == 0:
        return None
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    conf = tmp / "containers.conf"
    conf.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n'
        '[engine]\nruntime = "runc"\n',
        encoding="utf-8",
    )
    os.environ["CONTAINERS_CONF"] = str(conf)
    probe = _podman("run", "--rm", BASE_IMAGE, "true", check=False)
    if probe.returncode == 0:
        return None
    os.environ.pop("CONTAINERS_CONF", None)
    return f"podman cannot run containers here: {probe.stderr.strip().splitlines()[-1] if probe.stderr else '?'}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.skip("no daemonless container builder: podman is not installed (apt-get install -y podman buildah)")
    if _podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} is not available offline; run scripts/container_base_offline.sh")
    saved_conf = os.environ.get("CONTAINERS_CONF")
    reason = _runnable(tmp_path_factory.mktemp("podman"))
    if reason:
        pytest.skip(reason)
    # Docker image format: the OCI format has no HEALTHCHECK (podman would drop it with a warning).
    args = ["build", "--format", "docker", "--pull=never", "-f", str(CONTAINERFILE), "-t", IMAGE, "--network", "host"]
    wheels = _wheel_dir()
    if wheels is not None:
        # Offline: torch from the local CPU wheel, pinned so pip does not prefer a newer CUDA build from PyPI.
        wheel = sorted(wheels.glob("torch-*+cpu-*.whl"))[-1]
        version = wheel.name.split("-")[1]
        args += ["--volume", f"{wheels}:/wheels:ro", "--build-arg", "TORCH_CPU_INDEX="]
        args += ["--build-arg", f"TORCH_SPEC=torch=={version}"]
    cert = os.environ.get("PIP_CERT")
    if cert and Path(cert).is_file():
        args += ["--volume", f"{cert}:/run/build-ca.pem:ro", "--build-arg", "PIP_CERT=/run/build-ca.pem"]
    _podman(*args, str(REPO), timeout=3000)
    yield IMAGE
    if saved_conf is None:
        os.environ.pop("CONTAINERS_CONF", None)
    else:
        os.environ["CONTAINERS_CONF"] = saved_conf


def _wait(url: str, *, seconds: float, container: str) -> dict:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback test URL
                return {"status": resp.status, "body": json.loads(resp.read())}
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
            time.sleep(2)
    logs = _podman("logs", container, check=False)
    raise AssertionError(f"{url} did not answer in {seconds}s ({last}); logs:\n{(logs.stdout + logs.stderr)[-3000:]}")


@pytest.fixture
def containers() -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for name in started:
        _podman("rm", "-f", name, check=False)


@pytest.mark.slow
def test_image_runs_as_non_root_and_answers_health_and_ready(image: str, containers: list[str]) -> None:
    name = f"vt-api-{uuid.uuid4().hex[:8]}"
    port = free_port()
    _podman(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000",
        "-e", "VITALENS_ENVIRONMENT=prod", "-e", f"VITALENS_SECRET_KEY={SECRET}", image,
    )  # fmt: skip
    containers.append(name)
    health = _wait(f"http://127.0.0.1:{port}/api/v1/health", seconds=180, container=name)
    assert health["status"] == 200 and health["body"]["status"] == "ok"
    ready = _wait(f"http://127.0.0.1:{port}/ready", seconds=30, container=name)
    assert ready["body"]["ready"] is True, ready
    assert _podman("exec", name, "id", "-u").stdout.strip() == "10001"
    inspect = json.loads(_podman("image", "inspect", image).stdout)[0]
    assert inspect["Config"]["User"] == "10001:10001"
    health_check = inspect.get("Healthcheck") or inspect["Config"].get("Healthcheck")  # podman puts it at the top
    assert "/api/v1/health" in " ".join(health_check["Test"])
    assert _podman("healthcheck", "run", name, check=False).returncode == 0


@pytest.mark.slow
def test_scale_out_topology_migrate_api_worker_on_postgres_and_redis(image: str, containers: list[str]) -> None:
    """The compose topology with the host's PostgreSQL and Redis standing in for theirs (no registry here)."""
    reason = postgres_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    db = f"vt_container_{uuid.uuid4().hex[:8]}"
    admin_dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    port = free_port()
    env = [
        "-e", "VITALENS_ENVIRONMENT=prod", "-e", f"VITALENS_SECRET_KEY={SECRET}",
        "-e", f"VITALENS_DATABASE_URL={PG_URL.rsplit('/', 1)[0]}/{db}",
        "-e", "VITALENS_BROKER_URL=redis://127.0.0.1:6379/15",
    ]  # fmt: skip
    try:
        migrate = _podman("run", "--rm", "--network", "host", *env, image, "db", "upgrade", timeout=300)
        assert "is at revision head" in migrate.stderr + migrate.stdout
        api, worker = f"vt-api-{uuid.uuid4().hex[:8]}", f"vt-worker-{uuid.uuid4().hex[:8]}"
        _podman("run", "-d", "--name", api, "--network", "host", *env, image, "serve", "--host", "127.0.0.1",
                "--port", str(port))  # fmt: skip
        containers.append(api)
        _podman("run", "-d", "--name", worker, "--network", "host", "--hostname", worker, *env, image,
                "worker", "--concurrency", "1")  # fmt: skip
        containers.append(worker)
        ready = _wait(f"http://127.0.0.1:{port}/ready", seconds=180, container=api)
        assert ready["status"] == 200 and ready["body"]["checks"]["broker"]["ok"], ready
        deadline = time.monotonic() + 120
        while True:
            probe = _podman("exec", worker, "vitalens", "ready", "--worker", check=False)
            if probe.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert json.loads(probe.stdout.strip().splitlines()[-1])["checks"]["worker"]["ok"] is True
    finally:
        for name in list(containers):
            _podman("rm", "-f", name, check=False)
        containers.clear()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
