"""``write_wfdb`` round-trips through ``read_ecg`` at 1 µV resolution and refuses a wrong shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, read_ecg, write_wfdb


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.5, size=(12, 1000)).astype(np.float32)
    header = write_wfdb(tmp_path, "rec", signal, 100, STANDARD_LEADS)
    record = read_ecg(header)
    assert record.fs_hz == 100 and tuple(record.leads) == STANDARD_LEADS
    assert np.abs(record.signal - signal).max() <= 0.0005 + 1e-6  # 1000 adu/mV: half a µV of rounding


def test_out_of_range_is_clipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    signal = np.zeros((12, 200), dtype=np.float32)
    signal[0, 10] = 50.0
    signal[1, 20] = np.nan
    record = read_ecg(write_wfdb(tmp_path, "big", signal, 100, STANDARD_LEADS))
    assert record.signal[0, 10] == pytest.approx(32.0) and record.signal[1, 20] == 0.0
    assert "clipped" in caplog.text


def test_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"expected \(12, samples\)"):
        write_wfdb(tmp_path, "x", np.zeros((8, 100)), 100, STANDARD_LEADS)
