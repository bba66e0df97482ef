"""Ben-Graham filter (exact values), the filtered-image detector, and the card-driven single-image pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.data._image_source import decode_image
from vitalens.data.image_preprocess import (
    BenGraham,
    ImagePreprocess,
    ben_graham,
    looks_ben_graham_filtered,
    to_grey_rgb,
)
from vitalens.errors import InputError
from vitalens.synth.aptos import render_dr_fundus


def test_ben_graham_exact_values() -> None:
    flat = np.full((20, 20, 3), 77, np.uint8)
    assert (ben_graham(flat, 3.0) == 128).all()  # 4·77 − 4·77 + 128
    step = np.zeros((1, 200), np.uint8)
    step[:, 100:] = 64
    out = ben_graham(step, 2.0)
    assert out[0, 10] == 128 and out[0, 190] == 128  # far from the edge the local mean equals the pixel
    assert out[0, 99] < 128 < out[0, 100]  # the edge is enhanced on both sides
    # At the first bright pixel the blur is 64 · Σ_{k ≥ 0} w_k of the normalised σ = 2 kernel (truncated at 4σ).
    k = np.arange(-8, 9)
    w = np.exp(-(k**2) / (2 * 2.0**2))
    w /= w.sum()
    blurred = 64 * w[k >= 0].sum()
    assert out[0, 100] == round(4 * 64 - 4 * blurred + 128)
    with pytest.raises(InputError, match="sigma"):
        ben_graham(flat, 0)


def test_detector_tells_raw_from_filtered_and_filter_skips_filtered() -> None:
    raw = render_dr_fundus(np.random.default_rng(0), 3, 128)
    filt = BenGraham()
    once = filt(raw)
    assert not looks_ben_graham_filtered(raw) and looks_ben_graham_filtered(once)
    np.testing.assert_array_equal(filt(once), once)  # never filtered twice
    assert (once[0, 0] == 128).all()  # the black border is grey after filtering (masked)
    assert not (BenGraham(skip_if_filtered=False)(once) == once).all()


@pytest.mark.realdata
def test_detector_on_real_images() -> None:
    aptos = sorted(shared_data_path("fundus", "aptos2019", "train_images").glob("*.png"))[:20]
    odir = sorted(shared_data_path("fundus", "odir", "images").glob("*.jpg"))[:20]
    assert all(looks_ben_graham_filtered(decode_image(p)) for p in aptos)
    assert not any(looks_ben_graham_filtered(decode_image(p)) for p in odir)


def test_preprocess_config_round_trip_and_shapes() -> None:
    pre = ImagePreprocess(64, [0.5] * 3, [0.25] * 3, crop_border=True, ben_graham={"sigma_fraction": 0.05})
    again = ImagePreprocess.from_config(pre.config())
    assert again.config() == pre.config()
    img = render_dr_fundus(np.random.default_rng(1), 2, 100)
    x = pre(img)
    assert tuple(x.shape) == (3, 64, 64) and x.dtype.is_floating_point
    np.testing.assert_allclose(x.numpy(), again(img).numpy())
    # Normalisation: (v/255 − 0.5) / 0.25 on the grey 128 background.
    assert float(x[0, 0, 0]) == pytest.approx((128 / 255 - 0.5) / 0.25, abs=1e-6)
    with pytest.raises(InputError, match="not understood"):
        ImagePreprocess.from_config({"size": 64, "mean": [0] * 3, "std": [1] * 3, "bogus": 1})


def test_grey_pipeline_replicates_luminance_and_geometry_maps_back() -> None:
    pre = ImagePreprocess(32, [0.0] * 3, [1.0] * 3, grayscale=True, fit="stretch")
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[..., 0] = 100  # luminance 0.299·100 = 29.9 → 30
    sq = pre.square(rgb)
    assert sq.shape == (32, 32, 3) and (sq == 30).all()
    assert (to_grey_rgb(rgb)[..., 1] == 30).all()
    geo = pre.geometry(rgb)
    heat = np.zeros((32, 32), np.float32)
    heat[:, :16] = 1.0
    back = geo.to_input(heat)
    assert back.shape == (40, 80) and back[:, :35].min() > 0.9 and back[:, 45:].max() < 0.1
    pad = ImagePreprocess(32, [0.0] * 3, [1.0] * 3, fit="pad").geometry(rgb)
    assert pad.to_input(np.ones((32, 32), np.float32)).shape == (40, 80)
    with pytest.raises(InputError, match="expected uint8"):
        pre.square(np.zeros((4, 4), np.float32))
