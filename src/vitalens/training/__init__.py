"""The training engine: one Lightning loop for every analyzer, configured by a YAML recipe per task.

Entry points: :func:`train` (recipe → checkpoints → thresholds/calibration on validation → artifact + report),
:func:`evaluate` (score an artifact on a dataset split) and :func:`predict_dataset`. Task plug-ins live in
``training.tasks``. The numpy-only parts (metrics, calibration, recipe) import no torch; the rest is imported
lazily so ``import vitalens.training`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Recipe",
    "train",
    "evaluate",
    "predict_dataset",
    "ClassifierModule",
    "FocalLoss",
    "GradualUnfreezing",
    "fit_temperature",
    "fit_isotonic",
    "fit_calibration",
    "apply_calibration",
    "expected_calibration_error",
    "reliability_curve",
    "ece_consistency",
    "multilabel_metrics",
    "odir_challenge_score",
    "register_task",
    "get_task",
    "list_tasks",
    "TrainingTask",
    "DataBundle",
]

_LAZY = {
    "Recipe": "vitalens.training.recipe",
    "train": "vitalens.training.engine",
    "evaluate": "vitalens.training.evaluate",
    "predict_dataset": "vitalens.training.predict",
    "ClassifierModule": "vitalens.training.module",
    "FocalLoss": "vitalens.training.losses",
    "GradualUnfreezing": "vitalens.training.callbacks",
    "fit_temperature": "vitalens.training.calibration",
    "fit_isotonic": "vitalens.training.calibration",
    "fit_calibration": "vitalens.training.calibration",
    "apply_calibration": "vitalens.training.calibration",
    "expected_calibration_error": "vitalens.training.calibration",
    "reliability_curve": "vitalens.training.calibration",
    "ece_consistency": "vitalens.training.calibration",
    "multilabel_metrics": "vitalens.training.metrics",
    "odir_challenge_score": "vitalens.training.metrics",
    "register_task": "vitalens.training.tasks",
    "get_task": "vitalens.training.tasks",
    "list_tasks": "vitalens.training.tasks",
    "TrainingTask": "vitalens.training.tasks",
    "DataBundle": "vitalens.training.tasks",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vitalens.training' has no attribute {name!r}")
