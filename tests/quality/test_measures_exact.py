"""Exact values of the classical measures added for the fundus gate — the fine-detail ratio, the field of view on
a lifted (non-black) surround, and the overexposure degradation — on hand-made images whose values are known."""

from __future__ import annotations

import numpy as np
import pytest

from vitalens.quality.calibrate import degrade
from vitalens.quality.measures import FINE_SIGMA, MID_SIGMA, field_of_view, fine_detail, measure_image


def _gaussian_transfer(sigma: float, omega: float) -> float:
    """Transfer function at ``omega`` of the sampled, normalised Gaussian scipy uses (truncated at 4 σ)."""
    radius = int(4.0 * sigma + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    w /= w.sum()
    return float(np.sum(w * np.cos(omega * k)))


def _cosine(period: int, side: int = 64, amplitude: float = 50.0, offset: float = 128.0) -> np.ndarray:
    """``offset + amplitude·cos(2π(x + ½)/period)`` across the columns: symmetric about both image edges when
    ``side`` is a multiple of half the period, so scipy's reflecting boundary sees one endless cosine."""
    x = np.arange(side, dtype=np.float64)
    row = offset + amplitude * np.cos(2 * np.pi * (x + 0.5) / period)
    return np.tile(row, (side, 1))


class TestFineDetail:
    @pytest.mark.parametrize("period", [4, 8, 16, 32])
    def test_cosine_ratio_is_the_band_transfer_ratio(self, period: int) -> None:
        omega = 2 * np.pi / period
        h1, h4 = _gaussian_transfer(FINE_SIGMA, omega), _gaussian_transfer(MID_SIGMA, omega)
        expected = abs(1 - h1) / abs(h1 - h4)
        assert fine_detail(_cosine(period)) == pytest.approx(expected, rel=1e-9)

    def test_known_values(self) -> None:
        # by hand: at ω = π/4, H₁ = (1 + 2(0.60653·cos π/4 + 0.13534·cos π/2 + 0.011109·cos 3π/4 − 0.000335)) /
        # 2.50663 = 0.73460 and H₄ ≈ e^(−16·(π/4)²/2) = 0.00719, so (1 − 0.73460)/(0.73460 − 0.00719) = 0.3649;
        # at ω = π/2, H₁ = (1 − 2·0.13534 + 2·0.000335)/2.50663 = 0.29122 and H₄ ≈ 0: 0.70878/0.29122 = 2.4338
        assert fine_detail(_cosine(8)) == pytest.approx(0.3649, abs=2e-4)
        assert fine_detail(_cosine(4)) == pytest.approx(2.4338, abs=2e-4)

    def test_contrast_and_brightness_do_not_change_it(self) -> None:
        """Haze (less contrast) or a dim exposure leaves the ratio alone: only defocus lowers it."""
        base = fine_detail(_cosine(8))
        assert fine_detail(_cosine(8, amplitude=5.0, offset=40.0)) == pytest.approx(base, rel=1e-9)

    def test_blur_lowers_it(self) -> None:
        from scipy import ndimage

        rng = np.random.default_rng(0)
        texture = ndimage.gaussian_filter(rng.normal(128, 40, (128, 128)), 0.7)
        blurred = ndimage.gaussian_filter(texture, 3.0)
        assert fine_detail(blurred) < 0.25 * fine_detail(texture)

    def test_flat_image_and_empty_region_are_zero(self) -> None:
        assert fine_detail(np.full((32, 32), 90.0)) == 0.0
        assert fine_detail(_cosine(8), np.zeros((64, 64), bool)) == 0.0

    def test_rim_of_the_field_of_view_adds_no_detail(self) -> None:
        """A flat bright disc on black: the disc's edge is outside the measure (normalised convolution)."""
        yy, xx = np.mgrid[:128, :128]
        disc = (yy - 63.5) ** 2 + (xx - 63.5) ** 2 < 50**2
        luma = np.where(disc, 180.0, 0.0)
        assert fine_detail(luma, disc) == pytest.approx(0.0, abs=1e-9)
        assert fine_detail(luma) > 0.1  # over the whole frame the rim is all there is


def _square_on(surround: int, inside: int, side: int = 256, half: int = 80) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((side, side, 3), surround, np.uint8)
    sq = np.zeros((side, side), bool)
    sq[side // 2 - half : side // 2 + half, side // 2 - half : side // 2 + half] = True
    img[sq] = inside
    return img, sq


def _less_corners(mask: np.ndarray) -> np.ndarray:
    """``mask`` (a square) less its four corner pixels, which the 3 × 3-cross opening of the mask removes."""
    out = mask.copy()
    rows, cols = np.nonzero(mask)
    for r in (rows.min(), rows.max()):
        for c in (cols.min(), cols.max()):
            out[r, c] = False
    return out


class TestFieldOfView:
    @pytest.mark.parametrize("surround", [0, 70, 110])
    def test_square_field_on_a_flat_surround(self, surround: int) -> None:
        img, sq = _square_on(surround, 200)
        luma = img[..., 0].astype(np.float64)
        assert np.array_equal(field_of_view(luma), _less_corners(sq))
        m = measure_image(img)
        assert m.bright_fraction == pytest.approx((160 * 160 - 4) / 256**2)
        assert m.luminance == pytest.approx(200.0)
        assert m.dark_fraction == 0.0 and m.clipped_fraction == 0.0

    def test_surround_as_bright_as_the_centre_keeps_the_black_level_rule(self) -> None:
        """A preprocessed image on mid-grey (APTOS-like): the centre is not 30 above the surround."""
        img, _ = _square_on(128, 150)
        assert np.array_equal(field_of_view(img[..., 0].astype(np.float64)), _less_corners(np.ones((256, 256), bool)))
        lifted, square = _square_on(118, 150)  # 32 above the surround: the surround is left out
        assert np.array_equal(field_of_view(lifted[..., 0].astype(np.float64)), _less_corners(square))

    def test_burnt_out_field_on_a_grey_surround_reads_burnt_out(self) -> None:
        img, _ = _square_on(70, 255)
        m = measure_image(img)
        assert m.clipped_fraction == 1.0 and m.luminance == pytest.approx(255.0)


class TestOverexposedDegradation:
    def test_bright_image_gets_the_fixed_gain(self) -> None:
        img, sq = _square_on(0, 50)
        img[sq] = (160, 80, 40)  # luma 99.36: 185/99.36 < 2.2, so the gain stays 2.2
        out = degrade(img, "overexposed")
        assert tuple(out[sq][0]) == (255, 246, 158)  # 160·2.2+70 → 255, 80·2.2+70 = 246, 40·2.2+70 = 158
        assert out[~sq].max() == 70

    def test_dark_image_is_burnt_out_too(self) -> None:
        """A fixed × 2.2 + 70 would make a luma-20 field a fair 114; the gain rises to reach full scale."""
        img, sq = _square_on(0, 20)
        out = degrade(img, "overexposed")
        assert out[sq].min() == 255 and out[~sq].max() == 70


class TestLimits:
    def test_refuse_a_quarter_beyond_the_tail_quantile_and_flag_beyond_the_range(self) -> None:
        from vitalens.quality.calibrate import REFUSE_SPREAD, _limit

        assert REFUSE_SPREAD == 0.25
        values = np.arange(200, dtype=float)  # median 99.5; 0.5 % quantile 0.995, 99.5 % quantile 198.005
        lim = _limit(values, ("low", "high"), True, min_margin=2.0)
        assert lim.refuse_below == pytest.approx(0.995 - 0.25 * 98.505)
        assert lim.refuse_above == pytest.approx(198.005 + 0.25 * 98.505)
        assert lim.flag_below == pytest.approx(-1.0) and lim.flag_above == pytest.approx(200.0)

    def test_margin_floor_and_no_flag_band(self) -> None:
        from vitalens.quality.calibrate import _limit

        values = np.array([-1000.0] + [50.0] * 399)  # all at the median but one far outlier (the 2nd value)
        lim = _limit(values, ("low",), True, min_margin=3.0)
        assert lim.refuse_below == pytest.approx(50.0 - 3.0)  # quantile = median: the floor margin decides
        assert lim.flag_below is None  # the outlier's value less 1.5 lies beyond the refuse limit
        assert _limit(values, ("low",), False, min_margin=3.0).flag_below is None

    def test_outside_share_counts_each_image_once(self) -> None:
        from vitalens.quality.calibrate import _outside_share
        from vitalens.quality.image_gate import DistanceLimit, MeasureLimit

        limits = {"luminance": MeasureLimit(refuse_below=10.0, flag_below=20.0)}
        distance = DistanceLimit(flag_above=2.0, refuse_above=3.0)
        measures = [{"luminance": v} for v in (5.0, 15.0, 50.0, 50.0)]
        share = _outside_share(measures, np.array([2.5, 2.5, 2.5, 1.0]), limits, distance)
        # 5 → refused (and far); 15 → flagged twice, counted once; 50 & 2.5 → flagged by distance; 50 & 1.0 → pass
        assert share == {"refused": 0.25, "flagged": 0.5, "passed": 0.25}
