"""B-scan and DR-fundus renderers: deterministic, the class's signs are really drawn."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.errors import UnknownNameError
from vitalens.synth.aptos import render_dr_fundus
from vitalens.synth.oct import BSCAN_CLASSES, render_bscan


def test_bscan_deterministic_and_sized() -> None:
    a = render_bscan(np.random.default_rng(5), "CNV", 64, 96)
    b = render_bscan(np.random.default_rng(5), "CNV", 64, 96)
    assert a.shape == (64, 96) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnknownNameError, match="Valid"):
        render_bscan(np.random.default_rng(0), "GLAUCOMA")


def _dark_in_retina(img: np.ndarray) -> float:
    """Share of very dark pixels between the first and last bright row of each column (fluid, cysts, holes)."""
    bright = img > 90
    shares = []
    for col in range(img.shape[1]):
        rows = np.flatnonzero(bright[:, col])
        if rows.size > 2:
            shares.append(float((img[rows[0] : rows[-1], col] < 25).mean()))
    return float(np.mean(shares))


@pytest.mark.parametrize("label", ["DME", "CSR", "MH"])
def test_fluid_classes_have_more_dark_space_than_normal(label: str) -> None:
    normal = np.mean([_dark_in_retina(render_bscan(np.random.default_rng(s), "NORMAL")) for s in range(4)])
    sick = np.mean([_dark_in_retina(render_bscan(np.random.default_rng(s), label)) for s in range(4)])
    assert sick > normal + 0.01, (label, sick, normal)
    assert set(BSCAN_CLASSES) >= {"CNV", "DME", "DRUSEN", "NORMAL", "AMD", "CSR", "DR", "MH"}


def test_dr_fundus_lesions_grow_with_grade() -> None:
    def red_dots(grade: int) -> float:
        img = render_dr_fundus(np.random.default_rng(3), grade, 128, side="left").astype(int)
        return float(((img[..., 0] < 140) & (img[..., 0] > 80) & (img[..., 1] < 25)).sum())

    assert red_dots(4) > red_dots(1) > red_dots(0)
