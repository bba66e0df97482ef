"""``fundus.vessels`` end to end on synthetic photographs: measurements with units and methods, overlays in input
coordinates, the classical fallback, the quality gate through the contract hook, and the DRIVE adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.vessels_artifact import make_tiny_vessels_artifact
from vitalens.analyzers import create_analyzer, get_contract
from vitalens.domain import QualityVerdict, StudyInputs
from vitalens.synth.odir import EyeFindings, render_fundus


@pytest.fixture(scope="module")
def eyes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "fundus_right": render_fundus(rng, 256, "right", EyeFindings()),
        "fundus_left": render_fundus(rng, 256, "left", EyeFindings()),
    }


@pytest.fixture
def no_gates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Analyses here test the analyzer; the gate has its own tests (the synthetic fundi are not real photographs)."""
    from vitalens.analyzers._base import Analyzer

    monkeypatch.setattr(Analyzer, "quality", lambda self, inputs: [])


def test_contract() -> None:
    c = get_contract("fundus.vessels")
    assert c.title == "Retinal vessels" and c.dataset == "drive"
    assert c.quality_gates == {"fundus_left": ("fundus.gradable",), "fundus_right": ("fundus.gradable",)}
    assert {b.kind for b in c.render} >= {"measurements", "overlays"}


def test_with_a_model_both_eyes(tmp_path: Path, eyes: dict[str, np.ndarray], no_gates: None) -> None:
    analyzer = create_analyzer("fundus.vessels", artifact=make_tiny_vessels_artifact(tmp_path / "a"))
    result = analyzer(StudyInputs(**eyes))
    names = [m.name for m in result.measurements]
    assert len(names) == 14 and names[0] == "Right eye (OD): vessel density"
    units = {m.name.split(": ")[1]: m.unit for m in result.measurements}
    assert units == {
        "vessel density": "%",
        "fractal dimension": "1",
        "tortuosity (arc/chord)": "1",
        "tortuosity (curvature)": "rad/mm",
        "CRAE": "µm",
        "CRVE": "µm",
        "AVR": "1",
    }
    assert all(m.method for m in result.measurements)
    crae = next(m for m in result.measurements if m.name.endswith("CRAE"))
    assert (crae.reference_low, crae.reference_high) == pytest.approx((115.3, 172.9))
    assert crae.flag is None  # not calibrated against MESA's grading: context, never a flag
    assert "MESA" in crae.method
    assert {e.input_name for e in result.explanations} == {"fundus_left", "fundus_right"}
    for e in result.explanations:
        assert e.heatmap.shape == eyes[e.input_name].shape[:2]
        assert 0.0 <= e.heatmap.min() and e.heatmap.max() <= 1.0
        assert e.overlay_png[:4] == b"\x89PNG"
    assert result.demonstration and any("Demonstration model" in w for w in result.warnings)
    assert any("research measurements" in w for w in result.warnings)
    assert set(result.extras["eyes"]) == {"fundus_left", "fundus_right"}


def test_one_eye_is_enough(tmp_path: Path, eyes: dict[str, np.ndarray], no_gates: None) -> None:
    analyzer = create_analyzer("fundus.vessels", artifact=make_tiny_vessels_artifact(tmp_path / "a"))
    result = analyzer(StudyInputs(fundus_left=eyes["fundus_left"]))
    assert all(m.name.startswith("Left eye (OS)") for m in result.measurements)


def test_classical_fallback_without_a_model(tmp_path: Path, eyes: dict[str, np.ndarray], no_gates: None) -> None:
    analyzer = create_analyzer("fundus.vessels", artifact=tmp_path / "absent")
    assert analyzer.availability().ready
    result = analyzer(StudyInputs(fundus_right=eyes["fundus_right"]))
    assert result.model.name == "sato-classical"
    assert any("classical Sato filter" in w for w in result.warnings)
    density = result.measurements[0]
    # the fallback thresholds the top 12 % of the field of view
    assert density.value == pytest.approx(12.0, abs=1.0)


def test_refusing_gate_stops_the_analysis(tmp_path: Path, eyes: dict[str, np.ndarray]) -> None:
    from vitalens.errors import QualityRefusal

    analyzer = create_analyzer("fundus.vessels", artifact=make_tiny_vessels_artifact(tmp_path / "a"))
    grey = np.repeat(eyes["fundus_left"].mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    verdicts = analyzer.quality(StudyInputs(fundus_left=grey))
    assert verdicts and verdicts[0].gate == "fundus.gradable"
    if verdicts[0].verdict == QualityVerdict.REFUSE:  # with the bundled gate installed
        with pytest.raises(QualityRefusal, match="greyscale"):
            analyzer(StudyInputs(fundus_left=grey))
    else:  # without it the input is flagged as unchecked, never passed silently
        assert verdicts[0].verdict == QualityVerdict.FLAG and "not checked" in verdicts[0].message


class TestDriveAdapter:
    def test_synthetic_round_trip_and_writer(self, tmp_path: Path, eyes: dict[str, np.ndarray]) -> None:
        import io

        from PIL import Image

        from vitalens.data import get_adapter
        from vitalens.data._adapters import ExportInput, ExportRecord, SkipRecord

        adapter = get_adapter("drive")
        root = adapter.write_synthetic(tmp_path / "DRIVE", n=4, seed=1)
        assert len(adapter.read(root, split="training")) == 2 and len(adapter.read(root, split="test")) == 2

        buf = io.BytesIO()
        Image.fromarray(eyes["fundus_right"]).save(buf, format="PNG")
        data = buf.getvalue()
        inp = ExportInput(slot="fundus_right", filename="r.png", media_type="image/png", load=lambda: data)
        mask = np.zeros(eyes["fundus_right"].shape[:2], bool)
        mask[100:104, 20:200] = True
        with adapter.writer(tmp_path / "out") as writer:
            with pytest.raises(SkipRecord, match="vessel mask"):
                writer.add(ExportRecord("s1", "p1", {}, {"fundus_right": inp}))
            assert (
                writer.add(
                    ExportRecord("s2", "p2", {}, {"fundus_right": inp}, meta={"vessel_masks": {"fundus_right": mask}})
                )
                == "01"
            )
        written = adapter.read(tmp_path / "out", split="test")[0]
        assert (written.vessels() == (mask & written.fov())).all()
