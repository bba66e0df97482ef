"""ONNX export of the multi-input and any-size fundus nets, and their analyzers' ONNX Runtime forward.

``fundus.odir`` (both eyes + age → 8 labels) and ``fundus.vessels`` (one image of any size → vessel logits) on tiny
nets fitted a few steps on synthetic fundi (so batch norm statistics and weights are not their initial values):
the exported graph matches PyTorch on batch and image sizes not used at export, and the analyzers give the same
probabilities / vessel maps on ONNX Runtime as on PyTorch, saying which ran.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.utils.fundus_artifact import make_tiny_fundus_artifact
from tests.utils.vessels_artifact import make_tiny_vessels_artifact
from vitalens.analyzers import create_analyzer
from vitalens.artifacts import ONNX_FILE, ModelCard, load_model, save_artifact, verify_artifact
from vitalens.artifacts.onnx import example_input_shape, example_inputs, export_onnx, onnx_parity
from vitalens.domain import StudyInputs
from vitalens.errors import ArtifactError
from vitalens.synth.odir import EyeFindings, render_fundus


@pytest.fixture
def no_gates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analyses test the forward backends; the gates have their own tests (synthetic fundi are not real)."""
    from vitalens.analyzers._base import Analyzer

    monkeypatch.setattr(Analyzer, "quality", lambda self, inputs: [])


def _eyes(seed: int, size: int = 256) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fundus_left": render_fundus(rng, size, "left", EyeFindings()),
        "fundus_right": render_fundus(rng, size, "right", EyeFindings()),
    }


def _adam_steps(net: torch.nn.Module, loss: Callable[[], torch.Tensor], steps: int) -> None:
    """``steps`` seeded Adam steps on ``loss()`` (fresh random batch each call), then eval mode."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(steps):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
    net.eval()


def _fit_odir(folder: Path, steps: int = 4) -> Path:
    """A few Adam steps of the tiny bilateral net on synthetic pairs; every threshold low so Grad-CAM runs."""
    net, card = load_model(folder)

    def loss() -> torch.Tensor:
        left, right = torch.randn(4, 3, 64, 64) * 0.5 + 0.2, torch.randn(4, 3, 64, 64) * 0.5 - 0.1
        return torch.nn.functional.binary_cross_entropy_with_logits(
            net(left, right, torch.randn(4)), (torch.rand(4, 8) > 0.5).float()
        )

    _adam_steps(net, loss, steps)
    fitted = card.model_copy(update={"thresholds": dict.fromkeys(card.labels, 0.01), "files": {}})
    save_artifact(folder, net, fitted)
    return folder


def _fit_vessels(folder: Path, steps: int = 4) -> Path:
    """A few Adam steps of the tiny U-Net on odd-sized random crops (target: the brighter pixels)."""
    net, card = load_model(folder)

    def loss() -> torch.Tensor:
        x = torch.randn(2, 1, 45, 51)
        return torch.nn.functional.binary_cross_entropy_with_logits(net(x), (x > 0.8).float())

    _adam_steps(net, loss, steps)
    save_artifact(folder, net, card.model_copy(update={"files": {}}))
    return folder


def test_odir_exports_three_named_inputs_with_parity(tmp_path: Path) -> None:
    folder = _fit_odir(make_tiny_fundus_artifact(tmp_path / "odir"))
    card = ModelCard.read(folder)
    with pytest.raises(ArtifactError, match="onnx_signature"):
        example_input_shape(
            card.model_copy(
                update={
                    "input": card.input.model_copy(update={"extra": {"inputs": ["fundus_left", "fundus_right", "age"]}})
                }
            )
        )
    path = export_onnx(folder)
    card = verify_artifact(folder, expected_analyzer="fundus.odir")
    assert card.files[ONNX_FILE]
    net, _ = load_model(folder)
    shapes = example_inputs(card, 5, net)
    assert shapes == {"left": (5, 3, 64, 64), "right": (5, 3, 64, 64), "age": (5, 1)}
    assert onnx_parity(net, path, shapes, seed=3) <= 1e-4  # a batch size not used at export


def test_vessel_unet_graph_takes_any_image_size(tmp_path: Path) -> None:
    folder = _fit_vessels(make_tiny_vessels_artifact(tmp_path / "vessels"))
    path = export_onnx(folder)
    net, card = load_model(folder)
    assert example_inputs(card, 2, net) == {"input": (2, 1, 240, 240)}  # the card's reference FOV width
    for shape in [(1, 1, 101, 77), (3, 1, 64, 33), (2, 1, 584, 565)]:  # odd, even, DRIVE's frame
        assert onnx_parity(net, path, {"input": shape}, seed=shape[2]) <= 1e-4, shape


def test_odir_analyzer_onnxruntime_matches_pytorch(tmp_path: Path, no_gates: None) -> None:
    folder = _fit_odir(make_tiny_fundus_artifact(tmp_path / "odir"))
    inputs = StudyInputs(**_eyes(1), age_years=67)
    eager = create_analyzer("fundus.odir", artifact=folder)
    assert eager.backend == "pytorch"
    before = eager(inputs)
    assert before.extras["backend"] == "pytorch"
    export_onnx(folder)
    ort = create_analyzer("fundus.odir", artifact=folder)
    after = ort(inputs)
    assert ort.backend == "onnxruntime" and after.extras["backend"] == "onnxruntime"
    p_eager = [f.probability for f in before.findings]
    np.testing.assert_allclose([f.probability for f in after.findings], p_eager, atol=1e-4)
    assert len(set(np.round(p_eager, 3))) > 1  # the fitted net does not give one constant
    assert [f.positive for f in after.findings] == [f.positive for f in before.findings]
    assert after.proxies == pytest.approx(before.proxies, abs=1e-4) and after.band == before.band
    # Grad-CAM still runs on the PyTorch net: same maps, one per eye and positive finding
    assert len(after.explanations) == len(before.explanations) == 2 * sum(f.positive for f in before.findings) > 0
    for a, b in zip(after.explanations, before.explanations, strict=True):
        assert (a.target, a.input_name) == (b.target, b.input_name)
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)


def test_vessels_analyzer_onnxruntime_matches_pytorch(tmp_path: Path, no_gates: None) -> None:
    folder = _fit_vessels(make_tiny_vessels_artifact(tmp_path / "vessels"))
    inputs = StudyInputs(**_eyes(2))
    eager = create_analyzer("fundus.vessels", artifact=folder)
    before = eager(inputs)
    assert eager.backend == "pytorch" and before.extras["backend"] == "pytorch"
    onnx_folder = Path(shutil.copytree(folder, tmp_path / "vessels-onnx"))
    export_onnx(onnx_folder)
    ort = create_analyzer("fundus.vessels", artifact=onnx_folder)
    after = ort(inputs)
    assert ort.backend == "onnxruntime" and after.extras["backend"] == "onnxruntime"
    assert [e.input_name for e in after.explanations] == [e.input_name for e in before.explanations]
    for a, b in zip(after.explanations, before.explanations, strict=True):
        assert a.heatmap.shape == b.heatmap.shape and a.heatmap.std() > 0
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)
    for slot in ("fundus_left", "fundus_right"):
        assert after.extras["eyes"][slot]["density"] == pytest.approx(before.extras["eyes"][slot]["density"], abs=1e-3)


def test_classical_vessels_report_their_backend(tmp_path: Path, no_gates: None) -> None:
    result = create_analyzer("fundus.vessels", models_dir=tmp_path)(StudyInputs(fundus_left=_eyes(3)["fundus_left"]))
    assert result.extras["backend"] == "classical"
