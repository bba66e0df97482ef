"""Image gates: classical measures on hand-made images, the embedding reference, and calibration end to end
on synthetic genuine images (the encoder replaced by a cheap deterministic embedding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.quality_gate import cheap_embed, make_synthetic_fundus_gate
from vitalens.errors import ArtifactError
from vitalens.quality.calibrate import degrade, split_of
from vitalens.quality.image_gate import GateCard, load_image_gate
from vitalens.quality.measures import measure_image
from vitalens.quality.reference import EmbeddingReference
from vitalens.synth.odir import EyeFindings, render_fundus


class TestMeasures:
    def test_grey_image_has_no_colour(self) -> None:
        grey = np.repeat(np.linspace(0, 255, 128 * 128).reshape(128, 128, 1), 3, axis=2).astype(np.uint8)
        assert measure_image(grey).colourfulness == pytest.approx(0.0)

    def test_fundus_is_colourful_red_and_round(self) -> None:
        m = measure_image(render_fundus(np.random.default_rng(0), 256, "left", EyeFindings()))
        assert m.colourfulness > 30 and m.red_dominance > 60
        assert 0.6 < m.bright_fraction < 0.8 and m.bright_circularity > 0.8

    def test_degradations_move_the_right_measure(self) -> None:
        img = render_fundus(np.random.default_rng(1), 256, "right", EyeFindings())
        base = measure_image(img)
        assert measure_image(degrade(img, "blurred")).sharpness < 0.5 * base.sharpness
        assert measure_image(degrade(img, "blurred")).fine_detail < 0.5 * base.fine_detail
        assert measure_image(degrade(img, "dark")).luminance < 0.3 * base.luminance
        assert measure_image(degrade(img, "overexposed")).clipped_fraction > base.clipped_fraction + 0.3

    def test_size_is_the_native_one(self) -> None:
        assert measure_image(np.full((40, 90, 3), 120, np.uint8)).min_side_native_px == 40


class TestReference:
    def test_genuine_near_foreign_far(self) -> None:
        rng = np.random.default_rng(0)
        genuine = rng.normal(0, 1, (200, 64)) @ rng.normal(0, 1, (64, 64))
        ref = EmbeddingReference.fit(genuine[:150], n_components=8)
        d_in = ref.distance(genuine[150:])
        d_out = ref.distance(genuine[150:] + 50.0)
        assert np.median(d_in) < 2.5 and d_out.min() > 3 * np.median(d_in)

    def test_round_trip(self, tmp_path: Path) -> None:
        x = np.random.default_rng(1).normal(size=(40, 16))
        ref = EmbeddingReference.fit(x, n_components=4)
        loaded = EmbeddingReference.load(ref.save(tmp_path / "r.npz"))
        assert np.allclose(ref.distance(x), loaded.distance(x))

    def test_too_few(self) -> None:
        with pytest.raises(ValueError, match="more than"):
            EmbeddingReference.fit(np.zeros((5, 8)), n_components=8)


@pytest.fixture(scope="module")
def synthetic_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate")
    make_synthetic_fundus_gate(root / "models")
    return root


class TestCalibratedGate:
    def test_card_records_provenance_and_no_foreign_images(self, synthetic_gate: Path) -> None:
        card = GateCard.read(synthetic_gate / "models" / "quality-fundus")
        assert card.calibration["foreign_images_used"] == 0
        assert card.reference["n_fit"] + card.calibration["n_images"] <= 160
        assert card.measures["min_side_native_px"].refuse_below == 64
        detail = card.measures["fine_detail"]
        assert detail.refuse_below is not None
        assert detail.flag_below is None or detail.refuse_below < detail.flag_below
        assert card.measures["luminance"].refuse_above is not None
        outside = card.calibration["outside_share"]
        assert outside["passed"] + outside["flagged"] + outside["refused"] == pytest.approx(1.0)

    def test_verdicts(self, synthetic_gate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import vitalens.quality.embedding as embedding

        monkeypatch.setattr(embedding, "embed_images", cheap_embed)
        gate = load_image_gate("fundus", synthetic_gate / "models")
        genuine = render_fundus(np.random.default_rng(99), 128, "left", EyeFindings())
        assert gate.assess(genuine).verdict in ("pass", "flag")
        grey = np.repeat(genuine.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        refused = gate.assess(grey)
        assert refused.verdict == "refuse"
        assert any("greyscale" in r for r in refused.reasons)
        assert gate.assess(degrade(genuine, "dark")).verdict == "refuse"
        blurred = gate.assess(degrade(genuine, "blurred"))
        assert blurred.verdict == "refuse" and any(r.startswith("out of focus") for r in blurred.reasons)
        burnt = gate.assess(degrade(genuine, "overexposed"))
        assert burnt.verdict == "refuse" and any(r.startswith("burnt-out") for r in burnt.reasons)
        tiny = gate.assess(genuine[:40, :40])
        assert tiny.verdict == "refuse" and "too small" in tiny.reasons[0]
        assert "embedding_distance" not in tiny.metrics  # no embedding of a thumbnail

    def test_tampered_reference_is_refused(self, synthetic_gate: Path, tmp_path: Path) -> None:
        import shutil

        copy = tmp_path / "models" / "quality-fundus"
        shutil.copytree(synthetic_gate / "models" / "quality-fundus", copy)
        with open(copy / "reference.npz", "ab") as fh:
            fh.write(b"x")
        with pytest.raises(ArtifactError, match="sha256"):
            load_image_gate("fundus", tmp_path / "models")

    def test_missing_gate_says_how_to_make_it(self, tmp_path: Path) -> None:
        with pytest.raises(ArtifactError, match="make model-quality-gates"):
            load_image_gate("oct", tmp_path)


def test_split_is_stable_and_balanced() -> None:
    splits = [split_of("fundus", f"p{i}") for i in range(2000)]
    assert split_of("fundus", "p1") == split_of("fundus", "p1")
    share = {s: splits.count(s) / 2000 for s in ("fit", "calib", "report")}
    assert share["fit"] == pytest.approx(0.5, abs=0.05) and share["report"] == pytest.approx(0.25, abs=0.05)
