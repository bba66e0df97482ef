"""Artifact save/verify/load: hashes and analyzer names are checked, mismatches refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vitalens.artifacts import (
    CalibrationSpec,
    InputSpec,
    ModelCard,
    NetSpec,
    TrainingData,
    apply_calibration,
    load_model,
    save_artifact,
    verify_artifact,
)
from vitalens.errors import ArtifactError
from vitalens.nets import is_net, register_net

if not is_net("_test_linear"):

    @register_net("_test_linear")
    def _test_linear(pretrained: bool | str = False, in_features: int = 4, num_classes: int = 2) -> torch.nn.Module:
        return torch.nn.Linear(in_features, num_classes)


def _card(**overrides: object) -> ModelCard:
    fields: dict[str, object] = {
        "name": "test-linear",
        "analyzer": "test.linear",
        "labels": ["a", "b"],
        "architecture": NetSpec(name="_test_linear", kwargs={"in_features": 4, "num_classes": 2}),
        "input": InputSpec(modality="fundus", channels=3, size=(64, 64)),
        "thresholds": {"a": 0.3, "b": 0.7},
        "training_data": TrainingData(datasets=["synthetic"], provenance="synthetic", n_samples=10),
        "demonstration": True,
    }
    fields.update(overrides)
    return ModelCard(**fields)  # type: ignore[arg-type]


@pytest.fixture
def artifact(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    save_artifact(tmp_path / "art", net, _card())
    return tmp_path / "art", net


def test_roundtrip_loads_identical_weights(artifact: tuple[Path, torch.nn.Module]) -> None:
    folder, net = artifact
    loaded, card = load_model(folder, expected_analyzer="test.linear")
    assert card.labels == ["a", "b"] and card.threshold("b") == 0.7
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), net(x))
    assert not loaded.training


def test_card_records_sha256_of_weights(artifact: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = artifact
    card = ModelCard.read(folder)
    assert set(card.files) == {"model.safetensors"} and len(card.files["model.safetensors"]) == 64


def test_tampered_weights_are_refused(artifact: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = artifact
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        verify_artifact(folder)


def test_wrong_analyzer_is_refused(artifact: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = artifact
    with pytest.raises(ArtifactError, match="is for analyzer 'test.linear', not 'fundus.odir'"):
        load_model(folder, expected_analyzer="fundus.odir")


def test_missing_folder_and_card(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        verify_artifact(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no card.json"):
        verify_artifact(tmp_path / "empty")


def test_missing_weight_file(artifact: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = artifact
    (folder / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="missing model.safetensors"):
        verify_artifact(folder)


def test_weights_of_another_shape_are_refused(tmp_path: Path) -> None:
    save_artifact(tmp_path / "a", torch.nn.Linear(4, 2), _card())
    card = ModelCard.read(tmp_path / "a")
    card.architecture.kwargs["in_features"] = 5
    card.write(tmp_path / "a")
    with pytest.raises((ArtifactError, RuntimeError)):
        load_model(tmp_path / "a")


def test_card_validation() -> None:
    with pytest.raises(ValueError, match="thresholds for labels not in the card"):
        _card(thresholds={"zzz": 0.5})
    with pytest.raises(ValueError, match="outside"):
        _card(thresholds={"a": 1.5})
    with pytest.raises(ValueError):
        _card(unknown_field=1)


def test_apply_calibration_exact() -> None:
    import numpy as np

    logits = np.array([[0.0, 2.0]])
    assert apply_calibration(CalibrationSpec(method="none"), logits)[0, 0] == pytest.approx(0.5)
    t = apply_calibration(CalibrationSpec(method="temperature", params={"temperature": 2.0}), logits)
    assert t[0, 1] == pytest.approx(1 / (1 + np.exp(-1.0)))
    iso = CalibrationSpec(method="isotonic", params={"x": [[0.0, 1.0], [0.0, 0.5, 1.0]], "y": [[0.2, 0.4], [0, 0, 1]]})
    out = apply_calibration(iso, logits)
    assert out[0, 0] == pytest.approx(0.3)  # σ(0) = 0.5 → halfway between 0.2 and 0.4
    with pytest.raises(ValueError, match="temperature must be positive"):
        apply_calibration(CalibrationSpec(method="temperature", params={"temperature": 0.0}), logits)
