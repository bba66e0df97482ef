"""Stage 1 at training time: the frozen encoder's features of every split, computed once.

Why once: the encoder never changes, so every later stage (VAE, scorer, Gaussian, kNN, z-statistics) trains on
these tensors; augmented views of the training normals and the image-space synthetic anomalies are encoded here
too, each with its own seeded generator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["extract_features", "SplitFeatures"]

logger = logging.getLogger(__name__)


@torch.inference_mode()
def extract_features(net: Any, dataset: Any, *, device: str = "cpu", batch_size: int = 32) -> torch.Tensor:
    """GAP features ``(N, D)`` (float32, CPU) of every item of ``dataset`` in order (``net.forward_features``)."""
    from torch.utils.data import DataLoader

    net.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    chunks = [net.forward_features(batch["image"].to(device)).float().cpu() for batch in loader]
    if not chunks:
        return torch.zeros(0, int(net.num_features))
    return torch.cat(chunks)


@dataclass
class SplitFeatures:
    """Features of each split (rows aligned with the datasets) and of the extra training views.

    Attributes:
        train, val, test: ``(N, D)`` raw GAP features.
        train_augmented: augmented views of the training normals (VAE training only), possibly empty.
        synthetic: image-space synthetic anomalies, ``{"train": (M, D), "val": (M', D)}`` when made.
    """

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    train_augmented: torch.Tensor | None = None
    synthetic: dict[str, torch.Tensor] = field(default_factory=dict)

    def split(self, name: str) -> torch.Tensor:
        return {"train": self.train, "val": self.val, "test": self.test}[name]
