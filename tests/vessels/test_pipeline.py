"""Vessel image analysis on hand-made trees and on the synthetic twin (whose disc and vessels are known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vitalens.data.drive import DriveDataset
from vitalens.errors import InputError
from vitalens.training.seg_metrics import ScoreHistogram
from vitalens.vessels import fov_mask, rescale_to_fov, vessel_channel
from vitalens.vessels.biomarkers import measure_vessel_biomarkers
from vitalens.vessels.classical import classical_vesselness
from vitalens.vessels.disc import locate_optic_disc
from vitalens.vessels.graph import half_width_profile_px, trace_vessel_tree


class TestPreprocess:
    def test_fov_of_the_twin(self, drive_twin_256: Path) -> None:
        rec = DriveDataset(drive_twin_256, "test")[0]
        est, truth = fov_mask(rec.image()), rec.fov()
        assert (est & truth).sum() / (est | truth).sum() > 0.97

    def test_black_image(self) -> None:
        assert not fov_mask(np.zeros((32, 32, 3), np.uint8)).any()
        with pytest.raises(InputError, match="black"):
            rescale_to_fov(np.zeros((32, 32, 3), np.uint8))

    def test_rescale_to_reference_width(self, drive_twin_256: Path) -> None:
        image = DriveDataset(drive_twin_256, "test")[0].image()
        scaled = rescale_to_fov(image, 480.0)
        assert scaled.factor == pytest.approx(480.0 / fov_mask(image).sum(axis=1).max(), rel=1e-6)
        assert abs(scaled.fov.sum(axis=1).max() - 480) <= 6

    def test_channel_is_zscored_inside(self, drive_twin_256: Path) -> None:
        rec = DriveDataset(drive_twin_256, "test")[0]
        c = vessel_channel(rec.image(), rec.fov())
        assert c[rec.fov()].mean() == pytest.approx(0.0, abs=1e-4)
        assert c[rec.fov()].std() == pytest.approx(1.0, abs=1e-3)
        assert (c[~rec.fov()] == 0).all()
        assert c[rec.vessels()].mean() < -0.5  # vessels are dark in green


class TestClassical:
    @pytest.mark.parametrize("method", ["sato", "frangi"])
    def test_vessels_score_above_background(self, drive_twin_256: Path, method: str) -> None:
        rec = DriveDataset(drive_twin_256, "test")[0]
        score = classical_vesselness(vessel_channel(rec.image(), rec.fov()), rec.fov(), method=method)
        assert score.min() >= 0 and score.max() < 1
        assert ScoreHistogram.from_pixels(rec.vessels(), score, rec.fov()).auc() > 0.8

    def test_unknown_method(self) -> None:
        with pytest.raises(ValueError, match="sato"):
            classical_vesselness(np.zeros((8, 8)), np.ones((8, 8), bool), method="hessian")


class TestGraph:
    def test_t_shaped_tree(self) -> None:
        m = np.zeros((40, 40), bool)
        m[20, 5:35] = True  # horizontal trunk
        m[5:20, 20] = True  # a branch from above
        tree = trace_vessel_tree(m)
        assert (tree.n_junctions, tree.n_endpoints, len(tree.segments)) == (1, 3, 3)
        assert sorted(round(s.length_px) for s in tree.segments) == [12, 13, 13]
        assert tree.graph.number_of_edges() == 3
        assert all(1 in (s.start, s.end) for s in tree.segments)  # every segment meets the one junction

    def test_width_of_a_bar(self) -> None:
        bar = np.zeros((40, 40))
        bar[18:23, :] = 1.0  # 5 px wide
        assert half_width_profile_px(bar, (20.0, 20.0), (1.0, 0.0)) == pytest.approx(5.0)
        assert half_width_profile_px(bar, (20.0, 20.0), (1.0, 1.0)) == pytest.approx(5.0 * np.sqrt(2))
        assert half_width_profile_px(bar, (5.0, 20.0), (1.0, 0.0)) is None  # centre off the vessel


class TestBiomarkersOnTheTwin:
    def test_disc_found_where_rendered(self, drive_twin_256: Path) -> None:
        truth = json.loads((drive_twin_256 / "synthetic.json").read_text())
        for rec in DriveDataset(drive_twin_256, "training"):
            disc = locate_optic_disc(rec.image(), rec.fov(), rec.vessels().astype(float))
            x, y = truth[f"training/{rec.image_id}"]["disc_xy"]
            assert np.hypot(disc.x - x, disc.y - y) < truth[f"training/{rec.image_id}"]["disc_radius"]

    def test_measurements_on_the_true_mask(self, drive_twin_256: Path) -> None:
        rec = DriveDataset(drive_twin_256, "test")[0]
        vessels, fov = rec.vessels(), rec.fov()
        b = measure_vessel_biomarkers(rec.image(), fov, vessels.astype(np.float32), 0.5)
        assert b.density == pytest.approx(vessels[fov].mean())
        assert 1.0 < b.fractal_dimension < 2.0
        assert b.tortuosity_distance is not None and b.tortuosity_distance >= 1.0
        assert b.zone_vessels and b.crae_um is not None and b.crve_um is not None
        assert b.avr == pytest.approx(b.crae_um / b.crve_um)
        assert all(v.width_um == pytest.approx(v.width_px * b.um_per_px) for v in b.zone_vessels)
