"""Model artifacts: the typed card, save/verify/load, and the LRU model cache."""

from __future__ import annotations

from vitalens.artifacts._cache import ModelCache, module_nbytes
from vitalens.artifacts._card import (
    CARD_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    CalibrationSpec,
    DerivedFinding,
    InputSpec,
    ModelCard,
    NetSpec,
    OutputSpec,
    TrainingData,
)
from vitalens.artifacts._io import add_file_to_artifact, load_model, save_artifact, sha256_file, verify_artifact
from vitalens.artifacts.calibration import apply_calibration, sigmoid
from vitalens.artifacts.outputs import derived_probability, expected_grade, predict_probabilities

__all__ = [
    "CARD_FILE",
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "CalibrationSpec",
    "DerivedFinding",
    "InputSpec",
    "ModelCache",
    "ModelCard",
    "NetSpec",
    "OutputSpec",
    "TrainingData",
    "derived_probability",
    "expected_grade",
    "predict_probabilities",
    "add_file_to_artifact",
    "apply_calibration",
    "sigmoid",
    "load_model",
    "module_nbytes",
    "save_artifact",
    "sha256_file",
    "verify_artifact",
]
