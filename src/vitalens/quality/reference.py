"""The genuine-image distribution of one modality in embedding space, and an image's distance to it.

Method: the encoder embeddings of the modality's genuine training images are projected on their first
``n_components`` principal axes; a Ledoit–Wolf shrunk covariance of the projections gives the Mahalanobis
distance of any new embedding (Lee et al. 2018 use class-conditional Gaussians on network features for
out-of-distribution detection; one Gaussian per modality suffices here, since the question is "is this a fundus
photograph at all", not "which class"). The residual outside the principal subspace is added as a second term
(its squared norm over the genuine images' mean residual), so an image that is unlike everything in a direction
the genuine images never vary in is not missed.

numpy and scikit-learn only; the fitted arrays are saved in the gate artifact (``reference.npz``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingReference"]

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingReference:
    """PCA mean/axes, the precision matrix of the projections and the mean residual of the genuine images."""

    mean: np.ndarray
    components: np.ndarray
    precision: np.ndarray
    residual_scale: float
    n_fit: int

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_components: int = 32) -> EmbeddingReference:
        """Fit on ``(N, D)`` genuine embeddings (``N`` > ``n_components`` + 1).

        Raises:
            ValueError: too few embeddings for the requested components.
        """
        from sklearn.covariance import LedoitWolf
        from sklearn.decomposition import PCA

        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or len(x) <= n_components + 1:
            raise ValueError(f"need more than {n_components + 1} embeddings to fit, got {len(x)}")
        pca = PCA(n_components=n_components, random_state=0).fit(x)
        z = pca.transform(x)
        lw = LedoitWolf().fit(z)
        resid = x - pca.inverse_transform(z)
        scale = float(np.mean(np.sum(resid**2, axis=1))) or 1.0
        return cls(
            mean=pca.mean_.astype(np.float32),
            components=pca.components_.astype(np.float32),
            precision=(lw.precision_).astype(np.float64),
            residual_scale=scale,
            n_fit=len(x),
        )

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` distances √(Mahalanobis² in the subspace / k + residual² / mean genuine residual²).

        A genuine image scores ≈ √2 (each term ≈ 1 on average); the distance grows with how unlike it is.
        """
        x = np.asarray(embeddings, dtype=np.float64)
        centred = x - self.mean
        z = centred @ self.components.T.astype(np.float64)
        maha = np.einsum("ij,jk,ik->i", z, self.precision, z) / self.components.shape[0]
        resid = centred - z @ self.components.astype(np.float64)
        return np.sqrt(maha + np.sum(resid**2, axis=1) / self.residual_scale)

    def save(self, path: Path) -> Path:
        np.savez_compressed(
            path,
            mean=self.mean,
            components=self.components,
            precision=self.precision,
            residual_scale=np.float64(self.residual_scale),
            n_fit=np.int64(self.n_fit),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> EmbeddingReference:
        with np.load(path) as data:
            return cls(
                mean=data["mean"],
                components=data["components"],
                precision=data["precision"],
                residual_scale=float(data["residual_scale"]),
                n_fit=int(data["n_fit"]),
            )
