from __future__ import annotations

from pathlib import Path

import pytest

from vitalens.synth import write_drive_synth


@pytest.fixture(scope="session")
def drive_twin_256(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic DRIVE at 256 px: large enough for discs, zones and calibres."""
    return write_drive_synth(tmp_path_factory.mktemp("drive256") / "DRIVE", n_train=4, n_test=2, image_size=256)
