"""A tiny, untrained ``fundus.vessels`` artifact built in milliseconds (random ``vessel_unet_test`` weights)."""

from __future__ import annotations

from pathlib import Path

import torch

from vitalens.artifacts import InputSpec, ModelCard, NetSpec, TrainingData, save_artifact
from vitalens.nets import create_net


def make_tiny_vessels_artifact(folder: Path, *, seed: int = 0, fov_diameter_px: float = 240.0) -> Path:
    """Write ``folder`` as a fundus.vessels artifact with random weights; returns the folder."""
    torch.manual_seed(seed)
    net = create_net("vessel_unet_test")
    card = ModelCard(
        name="fundus-vessels-test",
        analyzer="fundus.vessels",
        labels=["vessel"],
        label_names={"vessel": "Retinal vessel (per pixel)"},
        architecture=NetSpec(name="vessel_unet_test", kwargs={"in_chans": 1, "num_classes": 1}),
        input=InputSpec(
            modality="fundus",
            channels=3,
            min_size=128,
            dtype="uint8",
            extra={"fov_diameter_px": fov_diameter_px, "clip_limit": 0.01, "flip_average": True},
        ),
        thresholds={"vessel": 0.5},
        threshold_method="fixed 0.5 (untrained test artifact)",
        training_data=TrainingData(datasets=["none: random weights"], provenance="synthetic", n_samples=0),
        demonstration=True,
        intended_use="tests only",
    )
    save_artifact(folder, net, card)
    return folder
