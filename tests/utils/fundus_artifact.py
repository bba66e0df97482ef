"""A tiny, untrained ``fundus.odir`` artifact built in milliseconds (random ``odir_test`` weights, honest card)."""

from __future__ import annotations

from pathlib import Path

import torch

from vitalens.artifacts import CalibrationSpec, InputSpec, ModelCard, NetSpec, TrainingData, save_artifact
from vitalens.data.odir import ODIR_LABEL_NAMES, ODIR_LABELS
from vitalens.nets import create_net


def make_tiny_fundus_artifact(folder: Path, *, seed: int = 0) -> Path:
    """Write ``folder`` as a fundus.odir artifact with random weights; returns the folder."""
    torch.manual_seed(seed)
    net = create_net("odir_test")
    card = ModelCard(
        name="fundus-odir-test",
        analyzer="fundus.odir",
        labels=list(ODIR_LABELS),
        label_names=dict(ODIR_LABEL_NAMES),
        architecture=NetSpec(name="odir_test", kwargs={}),
        input=InputSpec(
            modality="fundus", channels=3, size=(64, 64), min_size=64, extra={"age_mean": 60.0, "age_std": 12.0}
        ),
        thresholds={label: 0.5 for label in ODIR_LABELS},
        threshold_method="fixed 0.5 (untrained test artifact)",
        calibration=CalibrationSpec(method="temperature", params={"temperature": 1.0}),
        training_data=TrainingData(datasets=["none: random weights"], provenance="synthetic", n_samples=0),
        demonstration=True,
        intended_use="tests only",
    )
    save_artifact(folder, net, card)
    return folder
