"""Weighted sampling for imbalanced multi-label data.

Why: with a 3 % label, most batches hold no positive; drawing samples with weights that favour rare labels gives
the loss something to learn from (an alternative to, or complement of, positive weights in the loss).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["multilabel_sample_weights", "make_weighted_sampler"]

logger = logging.getLogger(__name__)


def multilabel_sample_weights(targets: np.ndarray) -> np.ndarray:
    """Per-sample weight = the largest inverse label frequency among the sample's positive labels.

    A sample with no positive label gets the inverse frequency of "no label" (1 / its share). Weights are
    normalised to mean 1.

    Args:
        targets: ``(N, L)`` 0/1 training targets.

    Returns:
        ``(N,)`` float weights.
    """
    y = np.asarray(targets, dtype=float)
    n = y.shape[0]
    if n == 0:
        return np.zeros(0)
    freq = y.mean(axis=0)
    inv = np.where(freq > 0, 1.0 / np.maximum(freq, 1e-12), 0.0)
    w = (y * inv[None, :]).max(axis=1)
    none = y.sum(axis=1) == 0
    if none.any():
        w[none] = 1.0 / none.mean()
    return w / w.mean()


def make_weighted_sampler(targets: np.ndarray, seed: int = 0) -> WeightedRandomSampler:
    """A with-replacement sampler drawing ``N`` samples per epoch by :func:`multilabel_sample_weights`."""
    weights = multilabel_sample_weights(targets)
    gen = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double), len(weights), replacement=True, generator=gen
    )
