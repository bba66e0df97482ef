"""The 12-lead sheet: a PNG of the calibrated paper's aspect, attribution checked, notice in the footer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, ECGRecord
from vitalens.plots.ecg import GAIN_MM_PER_MV, PAPER_SPEED_MM_PER_S, SHEET_SIZE_MM, plot_12lead


@pytest.fixture(scope="module")
def record() -> ECGRecord:
    t = np.arange(5000) / 500.0
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012**2))
    return ECGRecord(np.linspace(0.5, 1.5, 12)[:, None] * beats[None, :], 500.0, STANDARD_LEADS)


def _image(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(png))


def test_sheet_is_calibrated_paper():
    # 10 s at 25 mm/s = 250 mm of trace plus the calibration margin; 4 rows of 30 mm (3 x 4 + rhythm strip)
    assert PAPER_SPEED_MM_PER_S == 25.0 and GAIN_MM_PER_MV == 10.0
    width_mm, height_mm = SHEET_SIZE_MM
    assert width_mm == pytest.approx(8 + 10 + 250 + 5)
    assert height_mm == pytest.approx(14 + 120 + 12)


def test_png_has_expected_aspect_and_writes_out(record, tmp_path: Path):
    out = tmp_path / "ecg.png"
    png = plot_12lead(record, title="test", out=out)
    assert out.read_bytes() == png
    image = _image(png)
    width_mm, height_mm = SHEET_SIZE_MM
    assert image.width / image.height == pytest.approx(width_mm / height_mm, rel=0.01)
    assert image.width == pytest.approx(width_mm / 25.4 * 150, abs=2)


def test_attribution_is_drawn(record):
    plain = np.asarray(_image(plot_12lead(record)).convert("RGB"), dtype=np.int16)
    attr = np.zeros(record.signal.shape)
    attr[:, :1250] = 1.0  # first 2.5 s of every lead
    shaded = np.asarray(_image(plot_12lead(record, attribution=attr)).convert("RGB"), dtype=np.int16)
    assert plain.shape == shaded.shape
    changed = np.abs(plain - shaded).sum(axis=2) > 30
    width_mm, height_mm = SHEET_SIZE_MM
    changed = changed[: int(plain.shape[0] * (height_mm - 14) / height_mm)]  # the grid, not the footer legend
    cols = np.flatnonzero(changed.any(axis=0))
    assert cols.size > 0
    # shading lies in the left part of the sheet (first column of leads, first quarter of the rhythm strip)
    assert cols.max() < 0.45 * plain.shape[1]


def test_attribution_shape_is_checked(record):
    with pytest.raises(InputError, match=r"attribution has shape \(12, 10\)"):
        plot_12lead(record, attribution=np.zeros((12, 10)))
    with pytest.raises(InputError, match="NaN"):
        plot_12lead(record, attribution=np.full(record.signal.shape, np.nan))


def test_eight_lead_record_is_completed_and_missing_chest_lead_refused(record):
    eight = record.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    assert _image(plot_12lead(eight)).width > 0
    with pytest.raises(InputError, match="V6"):
        plot_12lead(record.select(list(STANDARD_LEADS[:-1])))


def test_attribution_rows_may_name_their_leads(record):
    """A model that saw the 12 standard leads of an 8-lead record: its rows are named, the time axis is the record's."""
    eight = record.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    attr = np.zeros((12, record.n_samples))
    attr[STANDARD_LEADS.index("aVF"), :1250] = 1.0  # a derived lead only
    plain = np.asarray(_image(plot_12lead(eight)).convert("RGB"), dtype=np.int16)
    shaded = np.asarray(
        _image(plot_12lead(eight, attribution=attr, attribution_leads=STANDARD_LEADS)).convert("RGB"), dtype=np.int16
    )
    assert (np.abs(plain - shaded).sum(axis=2) > 30).any()
    with pytest.raises(InputError, match=r"expected \(8, 5000\)"):
        plot_12lead(eight, attribution=attr)


def test_zero_attribution_shades_nothing_and_the_paper_is_shared(record):
    from vitalens.plots import ecg

    plain = np.asarray(_image(plot_12lead(record)).convert("RGB"), dtype=np.int16)
    zero = np.asarray(_image(plot_12lead(record, attribution=np.zeros(record.signal.shape))).convert("RGB"))
    _, height_mm = SHEET_SIZE_MM
    grid = slice(0, int(plain.shape[0] * (height_mm - 14) / height_mm))  # above the footer legend
    np.testing.assert_array_equal(plain[grid], zero[grid])
    paper = ecg._paper(True)
    assert paper is ecg._paper(True) and not paper.flags.writeable


def test_short_record_draws_only_the_columns_it_has(record):
    short = ECGRecord(record.signal[:, :1000], 500.0, STANDARD_LEADS)  # 2 s: the first column only
    plain = np.asarray(_image(plot_12lead(short)).convert("RGB"), dtype=np.int16)
    full = np.asarray(_image(plot_12lead(record)).convert("RGB"), dtype=np.int16)
    width_mm, height_mm = SHEET_SIZE_MM
    grid = slice(int(plain.shape[0] * 12 / height_mm), int(plain.shape[0] * (height_mm - 14) / height_mm))
    second_column = int(plain.shape[1] * (8 + 10 + 2.5 * 25 + 1) / width_mm)

    def ink(sheet: np.ndarray) -> np.ndarray:  # dark trace and label pixels on the grid, title and footer left out
        return sheet[grid].sum(axis=2) < 200

    assert ink(plain)[:, :second_column].any() and not ink(plain)[:, second_column:].any()
    assert ink(full)[:, second_column:].any()
