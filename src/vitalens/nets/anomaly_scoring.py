"""Anomaly-score arithmetic fitted on training normals: z-scoring, the design's fusion, Gaussian and kNN distances.

Why modules with buffers: the statistics (mean and standard deviation of each score over the *training normals*,
the Gaussian of their features, the kNN memory bank) are part of the model — saved with the weights, listed in the
card, and applied by the same code in training, the bench, the analyzer and the ONNX export.

The design's fused score (exact, with σ the logistic function and z-statistics of the training normals)::

    fused = 0.4 · σ((recon − μ_recon) / s_recon) + 0.2 · σ((KL − μ_KL) / s_KL) + 0.4 · scorer

where ``scorer`` is the Transformer's sigmoid output. ``s`` is the sample standard deviation (ddof = 1), floored at
``1e-8`` so a constant score cannot divide by zero.

The Gaussian baseline (Rippel et al. 2020, "Modeling the distribution of normal data in pre-trained deep features
for anomaly detection"; PaDiM, Defard et al. 2021, does the same per patch): the Mahalanobis distance of an image's
standardised features to the Gaussian of the training normals, its covariance shrunk by Ledoit–Wolf. kNN: the mean
Euclidean distance to the ``k`` nearest training normals (Bergman et al. 2020).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vitalens.errors import InputError

__all__ = ["ZScore", "fuse_scores", "GaussianDistance", "KnnDistance", "FUSION_WEIGHTS", "STD_FLOOR"]

logger = logging.getLogger(__name__)

#: The design's weights of σ(z(recon)), σ(z(KL)) and the scorer's probability.
FUSION_WEIGHTS: tuple[float, float, float] = (0.4, 0.2, 0.4)
STD_FLOOR = 1e-8


class ZScore(nn.Module):
    """``(x − mean) / std`` elementwise, with ``mean``/``std`` fitted on training normals (buffers).

    Args:
        size: number of independent columns (1 for a scalar score, D for a feature vector).
    """

    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    @torch.no_grad()
    def fit(self, values: torch.Tensor | np.ndarray) -> ZScore:
        """Set mean and sample standard deviation (ddof = 1, floored at :data:`STD_FLOOR`) from ``(N,)``/``(N, D)``.

        Raises:
            InputError: fewer than 2 values, or a width that does not match.
        """
        v = torch.as_tensor(np.asarray(values), dtype=torch.float64)
        v = v.reshape(-1, 1) if v.ndim == 1 else v
        if v.shape[0] < 2:
            raise InputError(f"z-statistics need at least 2 training values, got {v.shape[0]}", field="train")
        if v.shape[1] != self.mean.numel():
            raise InputError(f"z-score fitted on width {v.shape[1]}, built for {self.mean.numel()}", field="train")
        self.mean.copy_(v.mean(dim=0).to(self.mean.dtype))
        self.std.copy_(v.std(dim=0, unbiased=True).clamp_min(STD_FLOOR).to(self.std.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean.numel() == 1:
            return (x - self.mean[0]) / self.std[0]
        return (x - self.mean) / self.std

    def stats(self) -> dict[str, float | list[float]]:
        """The fitted statistics, for the card."""
        if self.mean.numel() == 1:
            return {"mean": float(self.mean[0]), "std": float(self.std[0])}
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


def fuse_scores(
    recon_z: torch.Tensor,
    kl_z: torch.Tensor,
    scorer_prob: torch.Tensor,
    weights: Sequence[float] = FUSION_WEIGHTS,
) -> torch.Tensor:
    """``w0·σ(recon_z) + w1·σ(kl_z) + w2·scorer_prob`` (the design: 0.4, 0.2, 0.4).

    Raises:
        InputError: not three weights, a negative weight, or weights that do not sum to 1.
    """
    w = [float(v) for v in weights]
    if len(w) != 3 or any(v < 0 for v in w) or abs(sum(w) - 1.0) > 1e-6:
        raise InputError(f"fusion weights must be 3 non-negative numbers summing to 1, got {w}", field="weights")
    return w[0] * torch.sigmoid(recon_z) + w[1] * torch.sigmoid(kl_z) + w[2] * scorer_prob


class GaussianDistance(nn.Module):
    """Mahalanobis distance to a Gaussian fitted on (standardised) training-normal features.

    Args:
        dim: feature width.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("precision", torch.eye(dim))
        self.shrinkage: float | None = None

    @torch.no_grad()
    def fit(self, features: torch.Tensor | np.ndarray) -> GaussianDistance:
        """Mean and Ledoit–Wolf-shrunk precision of ``(N, dim)`` training-normal features."""
        from sklearn.covariance import LedoitWolf

        x = np.asarray(torch.as_tensor(np.asarray(features)), dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.numel() or x.shape[0] < 2:
            raise InputError(f"Gaussian fit needs (N ≥ 2, {self.mean.numel()}) features, got {x.shape}", field="train")
        lw = LedoitWolf().fit(x)
        self.mean.copy_(torch.as_tensor(lw.location_, dtype=self.mean.dtype))
        self.precision.copy_(torch.as_tensor(lw.precision_, dtype=self.precision.dtype))
        self.shrinkage = float(lw.shrinkage_)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, dim)`` → Mahalanobis distance ``(B,)``."""
        d = x - self.mean
        return torch.sqrt(torch.einsum("bi,ij,bj->b", d, self.precision, d).clamp_min(0.0) + 1e-12)


class KnnDistance(nn.Module):
    """Mean Euclidean distance to the ``k`` nearest training normals (the memory bank is a buffer).

    Args:
        dim: feature width.
        bank_size: number of training normals kept (fixed at construction so saved weights load strictly).
        k: neighbours averaged.
    """

    def __init__(self, dim: int, bank_size: int, k: int = 5) -> None:
        super().__init__()
        if bank_size < 1 or k < 1:
            raise InputError(f"kNN needs bank_size ≥ 1 and k ≥ 1, got {bank_size}, {k}", field="knn")
        self.k = min(int(k), int(bank_size))
        self.register_buffer("bank", torch.zeros(bank_size, dim))

    @torch.no_grad()
    def fit(self, features: torch.Tensor | np.ndarray) -> KnnDistance:
        x = torch.as_tensor(np.asarray(features), dtype=self.bank.dtype)
        if tuple(x.shape) != tuple(self.bank.shape):
            raise InputError(f"kNN bank expects {tuple(self.bank.shape)} features, got {tuple(x.shape)}", field="train")
        self.bank.copy_(x)
        return self

    def forward(self, x: torch.Tensor, *, exclude_self: bool = False) -> torch.Tensor:
        """``(B, dim)`` → mean distance to the ``k`` nearest bank rows ``(B,)``.

        ``exclude_self`` drops the nearest neighbour (distance 0 when ``x`` are the bank rows themselves), for the
        training normals' own z-statistics.
        """
        d = torch.cdist(x, self.bank)
        k = min(self.k + int(exclude_self), self.bank.shape[0])
        nearest = torch.topk(d, k, dim=1, largest=False).values
        if exclude_self:
            nearest = nearest[:, 1:]
        return nearest.mean(dim=1)
