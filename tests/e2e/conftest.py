"""End-to-end fixtures: a tiny fundus model, a real ``uvicorn`` server on a free port, Debian's Chromium via
Playwright, and axe-core injected from ``node_modules``.

Why a real server in a subprocess: the browser must talk HTTP to the same process layout as ``make serve``
(cookies, CSP, static files, the in-process job runner). Chromium comes from apt (``/usr/bin/chromium``),
never ``playwright install``; without it the tests skip with a reason, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

logger = logging.getLogger(__name__)

CHROMIUM = Path(os.environ.get("VITALENS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("VITALENS_E2E_ARTIFACTS", ROOT / "test-artifacts" / "e2e"))
SECRET = "e2e-secret-key-0123456789-abcdefghijklmnopqrstu"  # noqa: S105
PASSWORD = "correct horse battery staple"  # noqa: S105 - the e2e accounts' password


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: run scripts/e2e_setup.sh)")
    pytest.skip(f"{what}; run scripts/e2e_setup.sh")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the Python package playwright is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _missing(f"axe-core not found at {AXE} (npm install)")
    return AXE.read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled models (``models/fundus-odir``, ``models/ecg-ptbxl``): the browser sees what a user sees.

    Where a bundled fundus model is absent (a partial checkout), a tiny one is trained for one epoch on a
    24-patient synthetic twin at 64 px (a few seconds on CPU).
    """
    import torch

    from vitalens.synth.odir import write_odir_synth
    from vitalens.training.engine import train

    bundled = Path(__file__).resolve().parents[2] / "models"
    base = tmp_path_factory.mktemp("e2e-models")
    models = base / "models"
    for name in ("fundus-odir", "ecg-ptbxl"):
        if (bundled / name / "card.json").is_file():
            shutil.copytree(bundled / name, models / name)
    if not (models / "fundus-odir").is_dir():
        torch.set_num_threads(1)
        root = write_odir_synth(base / "odir", n_patients=24, image_size=64, seed=0)
        artifact = train(
            "fundus.odir",
            data=root,
            out=base / "run",
            overrides={
                "net.name": "odir_test",
                "net.pretrained": False,
                "task.image_size": 64,
                "train.max_epochs": 1,
                "train.batch_size": 8,
                "train.progress_bar": False,
            },
        )
        shutil.copytree(artifact, models / "fundus-odir")
    return models


@contextmanager
def _serve(models_dir: Path, data: Path) -> Iterator[str]:
    """A vitalens server (SQLite + local blobs in ``data``, in-process jobs) until the block ends; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "VITALENS_ENVIRONMENT": "test",
        "VITALENS_SECRET_KEY": SECRET,
        "VITALENS_DATA_DIR": str(data),
        "VITALENS_MODELS_DIR": str(models_dir),
        "VITALENS_DATABASE_URL": f"sqlite:///{data / 'e2e.db'}",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("VITALENS_BROKER_URL", None)
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
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
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(data),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a loaded 2-core machine needs a while to import torch and the models
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the e2e server did not start:\n{(data / 'server.log').read_text()[-3000:]}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[str]:
    """Base URL of a fresh vitalens server (no account yet: the first-run flow test sets it up)."""
    with _serve(models_dir, tmp_path_factory.mktemp("e2e-data")) as url:
        yield url


@dataclass(frozen=True)
class SeededSite:
    """A second server set up through its API (no browser step depends on another test): an instance admin, a
    clinician, one analysed study of the synthetic DR sample case and, the same day, a second one of its ECG."""

    base: str
    admin_email: str
    clinician_email: str
    study_url: str
    timeline_url: str


@pytest.fixture(scope="session")
def seeded(models_dir: Path, tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[SeededSite]:
    with _serve(models_dir, tmp_path_factory.mktemp("e2e-seeded")) as url:
        yield _seed(url)


def _seed(url: str) -> SeededSite:
    samples = ROOT / "src" / "vitalens" / "web" / "static" / "samples"
    admin, clinician = "admin@seed.example", "clin@seed.example"
    with httpx.Client(base_url=url, timeout=120) as c:
        c.post("/setup", json={"email": admin, "password": PASSWORD, "site_name": "Seed Clinic"}).raise_for_status()

        def bearer(email: str) -> dict[str, str]:
            r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        body = {"email": clinician, "password": PASSWORD, "role": "clinician", "full_name": "Cleo Clinician"}
        c.post("/api/v1/users", json=body, headers=bearer(admin)).raise_for_status()
        h = bearer(clinician)
        patient = c.post("/api/v1/patients", json={"pseudonym": "SEED-001", "sex": "female"}, headers=h).json()
        files = {
            slot: (name, (samples / name).read_bytes(), "text/csv" if name.endswith(".csv") else "image/jpeg")
            for slot, name in (
                ("fundus_left", "synthetic-dr-left.jpg"),
                ("fundus_right", "synthetic-dr-right.jpg"),
                ("ecg", "synthetic-dr-ecg.csv"),
            )
        }
        form = {"patient_id": patient["id"], "study_date": "2024-05-01", "age_years": "63"}
        study = c.post("/api/v1/studies", data=form, files=files, headers=h)
        study.raise_for_status()
        study_id = study.json()["id"]
        # a second study the same day (an ECG repeated): the timeline must draw the two side by side
        again = c.post("/api/v1/studies", data=form, files={"ecg": files["ecg"]}, headers=h)
        again.raise_for_status()
        for sid in (study_id, again.json()["id"]):
            href = c.post(f"/api/v1/studies/{sid}/analyses", json={}, headers=h).json()["href"]
            deadline = time.monotonic() + 300
            while c.get(href, headers=h).json()["status"] not in ("COMPLETE", "PARTIAL", "FAILED"):
                if time.monotonic() > deadline:
                    pytest.fail("the seeded analysis did not finish in 300 s")
                time.sleep(0.5)
    return SeededSite(url, admin, clinician, f"{url}/studies/{study_id}", f"{url}/patients/{patient['id']}")


@pytest.fixture(scope="session")
def playwright_driver(chromium_path: Path) -> Iterator[Any]:
    """One Playwright driver for the whole run: the sync API refuses a second one while the first is alive."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_driver: Any, chromium_path: Path) -> Iterator[object]:
    b = playwright_driver.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
