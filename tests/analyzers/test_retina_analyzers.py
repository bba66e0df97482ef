"""fundus.dr, oct.kermany4 and oct.c8: results per eye, derived findings, maps in input coordinates, ONNX Runtime
parity, "no bundled model", and bad input (a photograph as OCT, a fundus as OCT, an OCT as fundus, tiny, blank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.retina_artifacts import train_fundus_dr, train_oct
from vitalens.analyzers import create_analyzer
from vitalens.analyzers.fundus_dr import DR_RECOMMENDATIONS, ICO_2017
from vitalens.artifacts import ModelCard, expected_grade
from vitalens.domain import QualityVerdict, StudyInputs
from vitalens.errors import InputError, QualityRefusal
from vitalens.synth.aptos import render_dr_fundus
from vitalens.synth.oct import render_bscan


@pytest.fixture(scope="module")
def dr_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_fundus_dr(tmp_path_factory.mktemp("dr"))


@pytest.fixture(scope="module")
def oct_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_oct(tmp_path_factory.mktemp("oct"), "oct.kermany4")


def _fundus(grade: int, seed: int = 0, size: int = 136) -> np.ndarray:
    return render_dr_fundus(np.random.default_rng(seed), grade, size)


def _photo() -> np.ndarray:
    """A natural colour photograph (skimage's astronaut), as the OCT slot decodes it: grey."""
    from skimage import data

    rgb = data.astronaut()
    return np.rint(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


# ------------------------------------------------------------------------------------------------- fundus.dr
def test_fundus_dr_grades_each_eye_present(dr_artifact: Path) -> None:
    analyzer = create_analyzer("fundus.dr", artifact=dr_artifact)
    card = ModelCard.read(dr_artifact)
    right = _fundus(3, seed=1, size=136)
    result = analyzer(StudyInputs(fundus_right=right), explain=True)
    assert {f.input_name for f in result.findings} == {"fundus_right"}
    grades = [f for f in result.findings if f.code != "RDR"]
    assert [f.code for f in grades] == ["0", "1", "2", "3", "4"] and sum(f.positive for f in grades) == 1
    p = np.array([f.probability for f in grades])
    assert p.sum() == pytest.approx(1.0, abs=1e-6)
    assert result.extras["expected_grade"]["fundus_right"] == pytest.approx(float(expected_grade(p[None])[0]))
    (rdr,) = [f for f in result.findings if f.code == "RDR"]
    assert rdr.probability == pytest.approx(p[2:].sum()) and rdr.threshold == card.derived[0].threshold
    assert rdr.positive == (rdr.probability >= rdr.threshold)
    rec = result.extras["recommendations"][0]
    assert rec["source"] == ICO_2017 and rec["eye"] == "right eye (OD)"
    assert rec["code"] in DR_RECOMMENDATIONS and "decision support" in result.explanation
    assert result.explanation.startswith("Right eye (OD): most probable grade")  # not "(od)"
    assert result.demonstration and any("Demonstration model" in w for w in result.warnings)
    for e in result.explanations:
        assert e.input_name == "fundus_right" and e.heatmap.shape == right.shape[:2] and e.overlay_png
    both = analyzer(StudyInputs(fundus_right=right, fundus_left=_fundus(0, seed=2)), explain=False)
    assert {f.input_name for f in both.findings} == {"fundus_right", "fundus_left"}
    own = [q for q in both.quality if q.gate == "fundus.dr.plausibility"]
    assert sorted(q.slot for q in own) == ["fundus_left", "fundus_right"] and all(
        q.verdict == QualityVerdict.PASS for q in own
    )
    assert {q.gate for q in both.quality} == {"fundus.gradable", "fundus.dr.plausibility"}


def test_fundus_dr_refuses_what_is_not_a_colour_fundus(dr_artifact: Path) -> None:
    analyzer = create_analyzer("fundus.dr", artifact=dr_artifact)
    bscan = render_bscan(np.random.default_rng(0), "DME", 128, 128)
    with pytest.raises(QualityRefusal, match="greyscale image where a colour fundus photograph"):
        analyzer(StudyInputs(fundus_left=np.repeat(bscan[..., None], 3, axis=2)))  # an OCT saved as RGB
    with pytest.raises(QualityRefusal, match="blank image"):
        analyzer(StudyInputs(fundus_left=np.full((128, 128, 3), 90, np.uint8)))
    blue = np.zeros((128, 128, 3), np.uint8)
    blue[..., 2] = np.random.default_rng(0).integers(60, 250, (128, 128))
    with pytest.raises(QualityRefusal, match="colours unlike a fundus"):
        analyzer(StudyInputs(fundus_right=blue))
    with pytest.raises(InputError, match="a colour \\(RGB\\) image is required"):
        analyzer(StudyInputs(fundus_right=bscan))  # a grey OCT array in a fundus slot
    with pytest.raises(InputError, match="at least"):
        analyzer(StudyInputs(fundus_right=_fundus(2, size=64)[:20, :20]))
    with pytest.raises(InputError, match="needs"):
        analyzer(StudyInputs(age_years=50))


# ---------------------------------------------------------------------------------------------- oct.kermany4
def test_oct_kermany4_classes_recommendation_and_map(oct_artifact: Path) -> None:
    analyzer = create_analyzer("oct.kermany4", artifact=oct_artifact)
    scan = render_bscan(np.random.default_rng(4), "CNV", 160, 200)
    result = analyzer(StudyInputs(oct=scan), explain=True)
    assert [f.code for f in result.findings] == ["CNV", "DME", "DRUSEN", "NORMAL"]
    assert sum(f.probability for f in result.findings) == pytest.approx(1.0, abs=1e-6)
    top = max(result.findings, key=lambda f: f.probability)
    assert top.positive and result.extras["most_probable"] == top.code
    assert result.extras["recommendations"][0]["code"] == top.code
    assert result.quality[-1].gate == "oct.kermany4.plausibility" and result.quality[-1].verdict == QualityVerdict.PASS
    assert result.quality[0].gate == "oct.gradable"
    if top.code != "NORMAL":
        (e,) = result.explanations
        assert e.heatmap.shape == scan.shape and e.target == top.code


@pytest.mark.parametrize(
    ("what", "image", "message"),
    [
        ("photograph", _photo(), "not an OCT B-scan"),
        ("fundus", np.rint(_fundus(2, size=192).astype(np.float32).mean(axis=2)).astype(np.uint8), "not an OCT B-scan"),
        ("blank", np.full((200, 200), 128, np.uint8), "blank image"),
    ],
)
def test_oct_refuses_what_is_not_a_bscan(oct_artifact: Path, what: str, image: np.ndarray, message: str) -> None:
    analyzer = create_analyzer("oct.kermany4", artifact=oct_artifact)
    with pytest.raises(QualityRefusal, match=message):
        analyzer(StudyInputs(oct=image))


def test_oct_refuses_tiny_and_colour(oct_artifact: Path) -> None:
    analyzer = create_analyzer("oct.kermany4", artifact=oct_artifact)
    with pytest.raises(InputError, match="at least 128"):
        analyzer(StudyInputs(oct=render_bscan(np.random.default_rng(0), "NORMAL", 64, 64)))


def test_onnx_runtime_forward_matches_pytorch(oct_artifact: Path, tmp_path: Path) -> None:
    import shutil

    from vitalens.artifacts.onnx import export_onnx

    folder = Path(shutil.copytree(oct_artifact, tmp_path / "artifact"))
    scan = render_bscan(np.random.default_rng(9), "DME", 160, 160)
    eager = create_analyzer("oct.kermany4", artifact=folder)
    p_eager = [f.probability for f in eager(StudyInputs(oct=scan), explain=False).findings]
    assert eager.backend == "pytorch"
    export_onnx(folder)
    ort = create_analyzer("oct.kermany4", artifact=folder)
    result = ort(StudyInputs(oct=scan), explain=False)
    assert ort.backend == "onnxruntime" and result.extras["backend"] == "onnxruntime"
    np.testing.assert_allclose([f.probability for f in result.findings], p_eager, atol=1e-4)


def test_onnx_runtime_matches_pytorch_for_the_corn_fundus_and_the_c8_heads(dr_artifact: Path, tmp_path: Path) -> None:
    """Every single-image analyzer's ONNX forward: the CORN ordinal head (fundus.dr) and the 8-class OCT head."""
    import shutil

    from vitalens.artifacts.onnx import export_onnx

    c8 = train_oct(tmp_path / "c8", "oct.c8")
    cases = [
        ("fundus.dr", dr_artifact, StudyInputs(fundus_right=_fundus(3, seed=5), fundus_left=_fundus(1, seed=6))),
        ("oct.c8", c8, StudyInputs(oct=render_bscan(np.random.default_rng(2), "MH", 160, 160))),
    ]
    for name, artifact, inputs in cases:
        folder = Path(shutil.copytree(artifact, tmp_path / f"{name}-onnx"))
        eager = create_analyzer(name, artifact=folder)
        p_eager = [f.probability for f in eager(inputs, explain=False).findings]
        export_onnx(folder)
        ort = create_analyzer(name, artifact=folder)
        assert ort.backend == "onnxruntime", name
        np.testing.assert_allclose([f.probability for f in ort(inputs, explain=False).findings], p_eager, atol=1e-4)


# ------------------------------------------------------------------------------------------------------ oct.c8
def test_oct_c8_says_no_bundled_model_and_how_to_train(tmp_path: Path) -> None:
    analyzer = create_analyzer("oct.c8", models_dir=tmp_path)
    state = analyzer.availability()
    assert not state.ready and "no bundled model for oct.c8" in state.reason
    assert "vitalens train oct.c8 --data OCT-C8/" in state.reason


def test_oct_c8_runs_on_a_trained_artifact(tmp_path: Path) -> None:
    artifact = train_oct(tmp_path, "oct.c8")
    analyzer = create_analyzer("oct.c8", artifact=artifact)
    result = analyzer(StudyInputs(oct=render_bscan(np.random.default_rng(1), "MH", 160, 160)), explain=False)
    assert [f.code for f in result.findings] == ["AMD", "CNV", "CSR", "DME", "DR", "DRUSEN", "MH", "NORMAL"]
    assert result.extras["recommendations"][0]["source"]
