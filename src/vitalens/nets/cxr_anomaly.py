"""The chest X-ray anomaly net: frozen encoder → features → (VAE + Transformer scorer | Gaussian | kNN) → score.

Why one module holding every stage: the artifact must rebuild and run the whole pipeline from one state dict
(encoder weights, feature standardisation, projection, VAE, scorer, the training normals' z-statistics, the
Gaussian and the kNN bank), and Grad-CAM, ONNX export and the generic ``evaluate`` need one ``forward(image)``.

Pipeline (every statistic from the training normals):

1. :class:`~vitalens.nets.feature_encoder.FrozenFeatureEncoder`: GAP features ``f`` (D wide);
2. standardise ``f`` per feature (z-score), then project to the VAE's 512 inputs with a *fixed* orthonormal
   matrix (seeded, never trained; none when D is already 512, e.g. VGG16). A fixed map cannot learn to hide an
   anomaly from the VAE, and orthonormality keeps distances;
3. :class:`~vitalens.nets.feature_vae.FeatureVAE` → reconstruction error and KL; its posterior mean feeds
4. :class:`~vitalens.nets.latent_scorer.LatentTransformerScorer` → scorer probability;
5. the design's fusion 0.4·σ(z(recon)) + 0.2·σ(z(KL)) + 0.4·scorer
   (:func:`~vitalens.nets.anomaly_scoring.fuse_scores`);
6. beside it, the baselines on the same standardised features: Mahalanobis distance to the training normals'
   Gaussian and the mean distance to the k nearest training normals, each reported as σ(z(distance)).

``forward`` returns the logit of the score named by ``output`` (the one the card ships), shape ``(B, 1)``;
:meth:`scores` returns every component. All scores are in [0, 1] and increase with abnormality; they are anomaly
*scores*, not calibrated probabilities of disease.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vitalens._naming import unknown_name_error
from vitalens.nets._registry import register_net
from vitalens.nets.anomaly_scoring import FUSION_WEIGHTS, GaussianDistance, KnnDistance, ZScore, fuse_scores
from vitalens.nets.feature_encoder import FrozenFeatureEncoder
from vitalens.nets.feature_vae import FeatureVAE
from vitalens.nets.latent_scorer import LatentTransformerScorer
from vitalens.nets.pretrained import LITE0_BACKBONE

__all__ = [
    "CxrAnomalyNet",
    "ANOMALY_OUTPUTS",
    "SCORE_NAMES",
    "orthonormal_projection",
    "cxr_anomaly",
    "cxr_anomaly_lite0",
    "cxr_anomaly_vgg16",
    "cxr_anomaly_test",
]

logger = logging.getLogger(__name__)

#: The scores a net can ship (``output``), each in [0, 1]; the first five are the design's ablation rows.
ANOMALY_OUTPUTS: tuple[str, ...] = ("recon", "kl", "scorer", "recon_kl", "fusion", "mahalanobis", "knn")
#: Keys of :meth:`CxrAnomalyNet.scores` that are per-image numbers (besides the outputs).
SCORE_NAMES: tuple[str, ...] = (
    *ANOMALY_OUTPUTS,
    "recon_error",
    "kl_divergence",
    "mahalanobis_distance",
    "knn_distance",
)
_EPS = 1e-6


def orthonormal_projection(d_in: int, d_out: int, seed: int) -> torch.Tensor:
    """A fixed ``(d_in, d_out)`` matrix with orthonormal rows (``d_in ≤ d_out``) or columns (``d_in > d_out``).

    ``x @ P`` then preserves Euclidean distances exactly when ``d_in ≤ d_out`` (an isometric embedding) and is a
    Johnson–Lindenstrauss-style random projection otherwise. Seeded, so the same kwargs give the same matrix.
    """
    gen = torch.Generator().manual_seed(int(seed))
    a = torch.randn(max(d_in, d_out), min(d_in, d_out), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique QR: a deterministic sign convention
    mat = q.T if d_in <= d_out else q  # (d_in, d_out)
    return mat.to(torch.float32).contiguous()


class CxrAnomalyNet(nn.Module):
    """Frozen encoder + the design's VAE and Transformer scorer + Gaussian/kNN baselines, one ``forward``.

    Args:
        backbone, pretrained, feature_indices, in_chans: the frozen encoder (:class:`FrozenFeatureEncoder`).
        vae_dim: VAE input width (512); the features are projected to it when their width differs.
        vae_hidden, latent_dim, dropout, beta: :class:`FeatureVAE` (design: (512, 384), 256, 0.1, 0.001).
        n_patches, d_model, depth, heads: :class:`LatentTransformerScorer` (design: 8, 128, 6, 8).
        fusion_weights: weights of σ(z(recon)), σ(z(KL)), scorer (design: 0.4, 0.2, 0.4).
        output: the score ``forward`` returns as a logit (one of :data:`ANOMALY_OUTPUTS`).
        knn_bank_size: training normals kept for kNN (0: no kNN; set by the trainer).
        knn_k: neighbours averaged.
        projection_seed: seed of the fixed projection.

    Example:
        >>> net = cxr_anomaly_test()
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        backbone: str = LITE0_BACKBONE,
        pretrained: bool | str = False,
        feature_indices: Sequence[int] = (2, 3),
        in_chans: int = 3,
        vae_dim: int = 512,
        vae_hidden: Sequence[int] = (512, 384),
        latent_dim: int = 256,
        dropout: float = 0.1,
        beta: float = 1e-3,
        n_patches: int = 8,
        d_model: int = 128,
        depth: int = 6,
        heads: int = 8,
        fusion_weights: Sequence[float] = FUSION_WEIGHTS,
        output: str = "fusion",
        knn_bank_size: int = 0,
        knn_k: int = 5,
        projection_seed: int = 0,
    ) -> None:
        super().__init__()
        if output not in ANOMALY_OUTPUTS:
            raise unknown_name_error("anomaly output", output, ANOMALY_OUTPUTS)
        if output == "knn" and knn_bank_size < 1:
            raise ValueError("output 'knn' needs knn_bank_size ≥ 1")
        self.output = output
        self.fusion_weights = tuple(float(w) for w in fusion_weights)
        fuse_scores(torch.zeros(1), torch.zeros(1), torch.zeros(1), self.fusion_weights)  # validates the weights
        self.encoder = FrozenFeatureEncoder(backbone, pretrained, feature_indices, in_chans)
        d = self.encoder.num_features
        self.num_features = d
        self.feature_norm = ZScore(d)
        self.projected = d != vae_dim
        proj = orthonormal_projection(d, vae_dim, projection_seed) if self.projected else torch.eye(d)
        self.register_buffer("projection", proj)
        self.vae = FeatureVAE(vae_dim, vae_hidden, latent_dim, dropout, "gelu", beta)
        self.scorer = LatentTransformerScorer(latent_dim, n_patches, d_model, depth, heads, 4.0, dropout)
        self.recon_z = ZScore(1)
        self.kl_z = ZScore(1)
        self.gaussian = GaussianDistance(d)
        self.gaussian_z = ZScore(1)
        self.knn = KnnDistance(d, knn_bank_size, knn_k) if knn_bank_size > 0 else None
        self.knn_z = ZScore(1) if knn_bank_size > 0 else None

    # -- the uniform surface ---------------------------------------------------------------------------------
    @property
    def target_layer(self) -> str:
        """The encoder's deepest stage used (Grad-CAM target)."""
        return "encoder." + self.encoder.target_layer

    def train(self, mode: bool = True) -> CxrAnomalyNet:
        super().train(mode)
        self.encoder.train(False)
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(B, C, H, W)`` → raw GAP features ``(B, D)`` of the frozen encoder."""
        return self.encoder(x)

    def standardize(self, features: torch.Tensor) -> torch.Tensor:
        return self.feature_norm(features)

    def project(self, standardized: torch.Tensor) -> torch.Tensor:
        """Standardised features → the VAE's input ``(B, vae_dim)``."""
        return standardized @ self.projection

    def scores_from_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every score from raw GAP features ``(B, D)``; values are ``(B,)`` (``latent`` is ``(B, latent_dim)``)."""
        fs = self.standardize(features)
        vae_out = self.vae.scores(self.project(fs))
        scorer_prob = torch.sigmoid(self.scorer(vae_out["mu"]))
        zr, zk = self.recon_z(vae_out["recon"]), self.kl_z(vae_out["kl"])
        w = self.fusion_weights
        maha = self.gaussian(fs)
        out = {
            "recon_error": vae_out["recon"],
            "kl_divergence": vae_out["kl"],
            "recon": torch.sigmoid(zr),
            "kl": torch.sigmoid(zk),
            "scorer": scorer_prob,
            "recon_kl": (w[0] * torch.sigmoid(zr) + w[1] * torch.sigmoid(zk)) / max(w[0] + w[1], _EPS),
            "fusion": fuse_scores(zr, zk, scorer_prob, w),
            "mahalanobis_distance": maha,
            "mahalanobis": torch.sigmoid(self.gaussian_z(maha)),
            "latent": vae_out["mu"],
        }
        if self.knn is not None and self.knn_z is not None:
            dist = self.knn(fs)
            out["knn_distance"] = dist
            out["knn"] = torch.sigmoid(self.knn_z(dist))
        return out

    def scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every score of images ``(B, C, H, W)``."""
        return self.scores_from_features(self.forward_features(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Raw features ``(B, D)`` → logit of the shipped score ``(B, 1)`` (its probability when ``pre_logits``)."""
        score = self.scores_from_features(features)[self.output]
        if pre_logits:
            return score.unsqueeze(1)
        p = score.clamp(_EPS, 1.0 - _EPS)
        return (torch.log(p) - torch.log1p(-p)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(B, C, H, W)`` → logit of the shipped anomaly score ``(B, 1)``."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.scorer.get_classifier()

    def describe(self) -> dict[str, Any]:
        """The card's account of the pipeline: features, projection, fusion, fitted statistics."""
        info: dict[str, Any] = {
            "encoder": {**self.encoder.describe(), "frozen": True},
            "feature_standardisation": "per-feature z-score with the training normals' mean and std",
            "projection": (
                f"fixed orthonormal {self.num_features} → {self.vae.in_dim} (seeded, not trained)"
                if self.projected
                else "none (the features are already the VAE's width)"
            ),
            "vae": {
                "layers": [self.vae.in_dim, *self.vae.hidden, self.vae.latent_dim],
                "norm_act_dropout": "LayerNorm + GELU + dropout",
                "beta": self.vae.beta,
                "decoder": "symmetric",
            },
            "scorer": {
                "n_patches": self.scorer.n_patches,
                "patch_dim": self.scorer.patch_dim,
                "d_model": self.scorer.embed.out_features,
                "depth": len(self.scorer.blocks),
                "heads": self.scorer.blocks[0].attn.num_heads if len(self.scorer.blocks) else 0,
            },
            "fusion": {
                "formula": "w0·σ(z(recon)) + w1·σ(z(KL)) + w2·scorer",
                "weights": list(self.fusion_weights),
            },
            "z_statistics": {
                "fitted_on": "training normals (Mahalanobis: their 5-fold out-of-fold distances; kNN: leave-one-out)",
                "std": "sample (ddof = 1)",
                "recon_error": self.recon_z.stats(),
                "kl_divergence": self.kl_z.stats(),
                "mahalanobis_distance": self.gaussian_z.stats(),
            },
            "output": self.output,
        }
        if self.knn_z is not None and self.knn is not None:
            info["z_statistics"]["knn_distance"] = self.knn_z.stats()
            info["knn"] = {"k": self.knn.k, "bank": int(self.knn.bank.shape[0])}
        return info


def _create(variant: dict[str, Any], pretrained: bool | str, **kwargs: Any) -> CxrAnomalyNet:
    return CxrAnomalyNet(pretrained=pretrained, **{**variant, **kwargs})


@register_net("cxr_anomaly")
def cxr_anomaly(pretrained: bool | str = False, **kwargs: Any) -> CxrAnomalyNet:
    """The generic anomaly net; every :class:`CxrAnomalyNet` argument may be given."""
    return _create({}, pretrained, **kwargs)


@register_net("cxr_anomaly_lite0")
def cxr_anomaly_lite0(pretrained: bool | str = False, **kwargs: Any) -> CxrAnomalyNet:
    """Offline default: EfficientNet-Lite0 (ImageNet, PyPI) pooled at stride 8 and 16 → 152 features → 512."""
    return _create({"backbone": LITE0_BACKBONE, "feature_indices": (2, 3)}, pretrained, **kwargs)


@register_net("cxr_anomaly_vgg16")
def cxr_anomaly_vgg16(pretrained: bool | str = False, **kwargs: Any) -> CxrAnomalyNet:
    """The design's encoder: VGG16's last conv block, GAP → 512 (ImageNet weights need ``pretrained: hub``)."""
    return _create({"backbone": "vgg16", "feature_indices": (4,)}, pretrained, **kwargs)


@register_net("cxr_anomaly_test")
def cxr_anomaly_test(pretrained: bool | str = False, **kwargs: Any) -> CxrAnomalyNet:
    """A tiny variant for tests (timm ``test_efficientnet``, small VAE and scorer): milliseconds on CPU."""
    variant = {
        "backbone": "test_efficientnet",
        "feature_indices": (2, 3),
        "vae_dim": 64,
        "vae_hidden": (64, 48),
        "latent_dim": 32,
        "n_patches": 8,
        "d_model": 16,
        "depth": 2,
        "heads": 2,
    }
    return _create(variant, pretrained, **kwargs)
