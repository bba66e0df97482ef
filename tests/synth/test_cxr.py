"""Chest X-ray synthetic twin: the adapter reads it unchanged, they are marked synthetic, deterministic, and the
abnormal classes carry visible extra density inside the lung fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitalens.data.covid_radiography import CovidRadiographyDataset
from vitalens.errors import InputError, UnknownNameError
from vitalens.synth.cxr import SYNTHETIC_MARKER, render_cxr, write_covid_radiography_synth
from vitalens.training.tasks import detect_synthetic


def test_covid_twin_is_read_by_the_adapter(tmp_path: Path) -> None:
    root = write_covid_radiography_synth(
        tmp_path / "cxr", n_per_class={"Normal": 5, "COVID": 2, "Lung_Opacity": 1}, image_size=48
    )
    ds = CovidRadiographyDataset(root)
    assert dict(ds.class_counts()) == {"Normal": 5, "COVID": 2, "Lung_Opacity": 1}
    assert (root / SYNTHETIC_MARKER).is_file() and detect_synthetic(root)


def test_render_is_deterministic_and_validated() -> None:
    a = render_cxr(64, "COVID", np.random.default_rng(3))
    b = render_cxr(64, "COVID", np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == (64, 64)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnknownNameError):
        render_cxr(64, "Flu", np.random.default_rng(0))
    with pytest.raises(InputError):
        render_cxr(8, "Normal", np.random.default_rng(0))


def test_abnormal_classes_add_density_in_the_lungs() -> None:
    """Same anatomy draw (same seed), with and without the class's opacities: the lungs get brighter."""
    for cls in ("COVID", "Viral Pneumonia", "Lung_Opacity"):
        normal = render_cxr(128, "Normal", np.random.default_rng(11)).astype(float)
        sick = render_cxr(128, cls, np.random.default_rng(11)).astype(float)
        lungs = (slice(40, 100), slice(20, 108))
        assert sick[lungs].mean() > normal[lungs].mean() + 2.0, cls
