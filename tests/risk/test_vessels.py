"""Exact values of the vessel biomarkers on hand-made vessel trees and paths (same functions the analyzer calls)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitalens.risk.vessels import (
    KNUDTSON_ARTERIOLE,
    KNUDTSON_VENULE,
    REFERENCE_VALUES,
    ReferenceValue,
    arc_length_px,
    arteriole_venule_ratio,
    box_counting_dimension,
    crae_um,
    crve_um,
    curvature_tortuosity,
    distance_tortuosity,
    flag_against_reference,
    knudtson_summary,
    vessel_density,
)


class TestKnudtson:
    def test_coefficients_are_the_revised_formulas(self) -> None:
        assert (KNUDTSON_ARTERIOLE, KNUDTSON_VENULE) == (0.88, 0.95)

    def test_six_largest_arterioles_in_three_rounds(self) -> None:
        # widths 15 14 13 12 11 10 (+5, dropped: only the six widest count)
        # round 1: (15,10) → 0.88·√325 = 15.864426; (14,11) → 0.88·√317 = 15.667955; (13,12) → 0.88·√313 = 15.568789
        # round 2: (15.864426, 15.568789) → 19.560308, 15.667955 carried
        # round 3: 0.88·√(19.560308² + 15.667955²) = 22.054325
        assert crae_um([10, 15, 5, 12, 14, 11, 13]) == pytest.approx(22.054325, abs=1e-6)

    def test_odd_count_carries_the_middle_width(self) -> None:
        # (20,16) → 0.95·√656 = 24.331872, 18 carried; then 0.95·√(24.331872² + 18²) = 28.752845
        assert crve_um([20, 18, 16]) == pytest.approx(28.752845, abs=1e-6)

    def test_two_venules(self) -> None:
        assert crve_um([20, 18]) == pytest.approx(0.95 * math.sqrt(724), abs=1e-9)  # 25.561886

    def test_edges(self) -> None:
        assert knudtson_summary([], 0.88) is None
        assert crae_um([130.0]) == 130.0
        with pytest.raises(ValueError, match="finite"):
            crae_um([120.0, -1.0])
        with pytest.raises(ValueError, match="finite"):
            crve_um([float("nan")])

    def test_avr(self) -> None:
        assert arteriole_venule_ratio(144.0, 216.0) == pytest.approx(2 / 3)
        assert arteriole_venule_ratio(None, 200.0) is None
        assert arteriole_venule_ratio(140.0, 0.0) is None


class TestReference:
    def test_mesa_interval_is_mean_plus_minus_two_sd(self) -> None:
        ref = REFERENCE_VALUES["crae"]
        assert (ref.low, ref.high) == pytest.approx((115.3, 172.9))
        assert (REFERENCE_VALUES["crve"].low, REFERENCE_VALUES["crve"].high) == pytest.approx((169.6, 258.4))

    def test_flags_at_the_interval_edges(self) -> None:
        ref = ReferenceValue(144.1, 14.4, "µm", "MESA", comparable=True)
        assert flag_against_reference(ref, 115.2) == "low"
        assert flag_against_reference(ref, 115.3) == "normal"
        assert flag_against_reference(ref, 172.9) == "normal"
        assert flag_against_reference(ref, 173.0) == "high"
        assert flag_against_reference(ref, None) is None

    def test_uncalibrated_references_never_flag(self) -> None:
        # none of our measurements is calibrated against the published methods yet: context only
        for name, ref in REFERENCE_VALUES.items():
            assert flag_against_reference(ref, ref.mean * 3) is None, name


class TestDensity:
    def test_share_of_fov(self) -> None:
        fov = np.zeros((10, 10), bool)
        fov[:, :5] = True  # 50 px
        vessels = np.zeros((10, 10), bool)
        vessels[0, :] = True  # 10 px, 5 of them inside the field of view
        assert vessel_density(vessels, fov) == pytest.approx(5 / 50)

    def test_edges(self) -> None:
        assert vessel_density(np.ones((3, 3)), np.zeros((3, 3))) is None
        with pytest.raises(ValueError, match="field of view"):
            vessel_density(np.ones((3, 3)), np.ones((3, 4)))


class TestFractalDimension:
    def test_filled_square_is_two(self) -> None:
        assert box_counting_dimension(np.ones((64, 64), bool)) == pytest.approx(2.0, abs=1e-12)

    def test_straight_line_is_one(self) -> None:
        mask = np.zeros((64, 64), bool)
        mask[10, :] = True
        assert box_counting_dimension(mask) == pytest.approx(1.0, abs=1e-12)

    def test_single_pixel_is_zero(self) -> None:
        mask = np.zeros((64, 64), bool)
        mask[3, 3] = True
        assert box_counting_dimension(mask) == pytest.approx(0.0, abs=1e-12)

    def test_sierpinski_carpet_dimension(self) -> None:
        # Level-3 carpet on 27 px with boxes 1, 3, 9: N = 512, 64, 8 → slope log 8 / log 3 = 1.892789
        carpet = np.ones((1, 1), bool)
        for _ in range(3):
            z = np.zeros_like(carpet)
            carpet = np.block([[carpet, carpet, carpet], [carpet, z, carpet], [carpet, carpet, carpet]])
        assert box_counting_dimension(carpet, [1, 3, 9]) == pytest.approx(math.log(8) / math.log(3), abs=1e-9)

    def test_edges(self) -> None:
        assert box_counting_dimension(np.zeros((32, 32), bool)) is None
        assert box_counting_dimension(np.ones((32, 32), bool), [4]) is None
        with pytest.raises(ValueError, match="2-D"):
            box_counting_dimension(np.ones(5, bool))


class TestTortuosity:
    def test_straight_segment(self) -> None:
        path = np.array([[0, 0], [3, 4], [6, 8]], float)
        assert arc_length_px(path) == pytest.approx(10.0)
        assert distance_tortuosity(path) == pytest.approx(1.0)
        assert curvature_tortuosity(path) == pytest.approx(0.0)

    def test_quarter_circle_polygon(self) -> None:
        # 4 chords of a radius-10 circle spanning 90°: arc 4·20·sin(π/16) = 15.607226, chord 20·sin(π/4) = 14.142136;
        # 3 turns of π/8 each → total 3π/8 = 1.178097 rad over 15.607226 px = 0.075484 rad/px
        theta = np.linspace(0.0, math.pi / 2, 5)
        path = np.stack([10 * np.cos(theta), 10 * np.sin(theta)], axis=1)
        assert arc_length_px(path) == pytest.approx(15.607226, abs=1e-6)
        assert distance_tortuosity(path) == pytest.approx(1.103598, abs=1e-6)
        assert curvature_tortuosity(path) == pytest.approx(0.075484, abs=1e-6)

    def test_zigzag_turn_sign_does_not_cancel(self) -> None:
        # right angles alternating left and right: |±π/2| twice over 3 unit segments
        path = np.array([[0, 0], [1, 0], [1, 1], [2, 1]], float)
        assert curvature_tortuosity(path) == pytest.approx(math.pi / 3)
        assert distance_tortuosity(path) == pytest.approx(3 / math.sqrt(5))

    def test_edges(self) -> None:
        assert distance_tortuosity(np.array([[1.0, 1.0]])) is None
        assert distance_tortuosity(np.array([[0, 0], [1, 0], [0, 0]], float)) is None  # closed: chord 0
        assert curvature_tortuosity(np.array([[2, 2], [2, 2]], float)) is None
        with pytest.raises(ValueError, match=r"\(N, 2\)"):
            arc_length_px(np.zeros((3, 3)))
