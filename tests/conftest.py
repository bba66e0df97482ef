"""Root fixtures: offline hub, test settings, and the location of ../shared/data (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VITALENS_ENVIRONMENT", "test")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VITALENS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared/data absent: {path} not found (real-data test)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real public data; tests using it skip with a reason on a fresh clone without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared/data absent: {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Two cores on CI: keep torch from oversubscribing them."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
