"""Fixtures of the data-layer tests: one synthetic ODIR folder per session (written once, read by many tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalens.synth.odir import write_odir_synth


@pytest.fixture(scope="session")
def odir_synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-patient synthetic ODIR folder at 96 px (read-only by convention: copy it before mutating)."""
    return write_odir_synth(tmp_path_factory.mktemp("odir") / "odir", n_patients=24, image_size=96, seed=3)
