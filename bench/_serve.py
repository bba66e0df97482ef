"""Start a real vitalens server the README way for the robustness benches, and set up its accounts over HTTP.

Why the README way: the benches must probe what a user runs. ``make serve`` is ``vitalens serve`` on SQLite under
``VITALENS_DATA_DIR`` with the bundled models, no ``VITALENS_SECRET_KEY`` (the server generates one into the data
folder) and no broker (in-process jobs). First-run set-up goes through ``POST /setup`` as the web page does, and
the further users are created through the users API by the administrators, as a person would.

The server's resident memory is watched: a bench case that makes it grow beyond ``max_rss_mb`` kills it (and the
bench says so) instead of taking the shared machine down.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Server", "free_port", "setup_accounts", "Accounts", "PASSWORD"]

logger = logging.getLogger("bench.serve")

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-correct-horse"  # noqa: S105 - throwaway accounts in a throwaway data folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``vitalens serve`` in a subprocess on a free loopback port, with an RSS watchdog."""

    data_dir: Path
    max_rss_mb: float = 6000.0
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0
    killed_for_memory: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / "server.log"

    def start(self, timeout: float = 180.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("VITALENS_") or k == "VITALENS_MODELS_DIR"
        }  # nothing configured but the data folder: as `make serve` on a fresh machine
        env.update(
            {
                "VITALENS_DATA_DIR": str(self.data_dir),
                "HF_HUB_OFFLINE": "1",
                "OMP_NUM_THREADS": "2",
                "MKL_NUM_THREADS": "2",
                **self.env_extra,
            }
        )
        argv = [
            sys.executable,
            "-c",
            "from vitalens.cli import main; main()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True
        )
        threading.Thread(target=self._watch, daemon=True).start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    logger.info("server up on %s after %.1f s", self.base, time.monotonic() - t0)
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not healthy after {timeout:.0f} s; see {self.log}")

    def _watch(self) -> None:
        import psutil

        while not self._stop.is_set() and self.proc is not None and self.proc.poll() is None:
            try:
                rss = psutil.Process(self.proc.pid).memory_info().rss / 2**20
            except psutil.Error:
                return
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            if rss > self.max_rss_mb:
                logger.error("server RSS %.0f MB above %.0f MB: killing it", rss, self.max_rss_mb)
                self.killed_for_memory = True
                self.kill()
                return
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None  # noqa: S101 - bench script
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self._stop.set()
        if self.alive():
            assert self.proc is not None  # noqa: S101 - bench script
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class Accounts:
    """Sites and bearer headers by role: ``instance_admin`` (home site A), and per site ``clinician``,
    ``reviewer`` and ``admin``."""

    sites: dict[str, str]  # "A"/"B" → site id
    users: dict[tuple[str, str], str]  # (site, role) → user id
    headers: dict[tuple[str, str], dict[str, str]]  # (site, role) → Authorization header

    def h(self, site: str, role: str) -> dict[str, str]:
        return self.headers[(site, role)]


def _login(client: httpx.Client, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def setup_accounts(base: str, *, sites: tuple[str, ...] = ("A", "B")) -> Accounts:
    """First-run set-up through ``POST /setup``, then sites and users through the API by the instance administrator
    (the login limit is 10 a minute per client; this logs in 7 accounts)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post(
            "/setup",
            json={"email": "root@bench.example", "password": PASSWORD, "site_name": "Site A", "full_name": "Root"},
        )
        r.raise_for_status()
        root = _login(client, "root@bench.example")
        site_ids = {"A": client.get("/api/v1/sites", headers=root).json()[0]["id"]}
        for name in sites[1:]:
            r = client.post("/api/v1/sites", json={"name": f"Site {name}"}, headers=root)
            r.raise_for_status()
            site_ids[name] = r.json()["id"]
        headers: dict[tuple[str, str], dict[str, str]] = {("A", "instance_admin"): root}
        users = {("A", "instance_admin"): str(client.get("/api/v1/auth/me", headers=root).json()["id"])}
        for site, site_id in site_ids.items():
            for role in ("admin", "clinician", "reviewer"):
                email = f"{role}-{site.lower()}@bench.example"
                r = client.post(
                    "/api/v1/users",
                    json={"email": email, "password": PASSWORD, "role": role, "site_id": site_id},
                    headers=root,
                )
                r.raise_for_status()
                users[(site, role)] = r.json()["id"]
                headers[(site, role)] = _login(client, email)
    return Accounts(sites=site_ids, users=users, headers=headers)


def wait_analysis(client: httpx.Client, href: str, headers: dict[str, str], timeout: float = 300.0) -> dict[str, Any]:
    """Poll an analysis until it is final."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        body = client.get(href, headers=headers).json()
        if body.get("status") in ("COMPLETE", "PARTIAL", "FAILED"):
            return dict(body)
        time.sleep(0.5)
    raise RuntimeError(f"analysis {href} not finished after {timeout:.0f} s")
