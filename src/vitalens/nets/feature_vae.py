"""Stage 2 of the chest X-ray anomaly design: a VAE on the frozen encoder's features, trained on normals only.

Why a VAE on features (not pixels): it learns the manifold of *normal* image descriptions; an abnormal radiograph's
features reconstruct worse (reconstruction error) and sit further from the prior (KL term), and both are anomaly
scores. The design fixes the architecture: 512 → 512 → 384 → 256-d latent, each hidden layer Linear → LayerNorm →
GELU → dropout 0.1, a symmetric decoder (256 → 384 → 512 → 512), loss = MSE + β·KL with β = 0.001.

Scores per sample (eval mode, the posterior mean as the code):
    recon error  = mean over features of (x − decode(μ))²
    KL           = −½ Σ (1 + log σ² − μ² − σ²)

Shapes: ``x`` ``(B, in_dim)``; ``mu``/``logvar`` ``(B, latent_dim)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vitalens.nets._layers import get_act

__all__ = ["FeatureVAE", "kl_divergence", "reconstruction_error", "vae_loss"]

logger = logging.getLogger(__name__)


def _mlp(widths: Sequence[int], act: str | Callable[..., nn.Module], dropout: float) -> nn.Sequential:
    """Linear → LayerNorm → act → dropout for each consecutive pair of ``widths``."""
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(w_in, w_out), nn.LayerNorm(w_out), get_act(act), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, summed over latent dimensions: ``(B,)``."""
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def reconstruction_error(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample over the feature dimension: ``(B,)``."""
    return (x - recon).pow(2).mean(dim=1)


def vae_loss(
    x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch mean of ``recon error + β·KL``; returns ``(loss, mean recon error, mean KL)``."""
    rec = reconstruction_error(x, recon).mean()
    kl = kl_divergence(mu, logvar).mean()
    return rec + beta * kl, rec, kl


class FeatureVAE(nn.Module):
    """The design's feature VAE (defaults are the design's numbers).

    Args:
        in_dim: feature width (512: VGG16's GAP, or the projection of another encoder's features).
        hidden: encoder hidden widths (the decoder mirrors them).
        latent_dim: latent size (256; the scorer cuts it into patches).
        dropout: after every hidden layer.
        act: hidden activation.
        beta: weight of the KL term in :meth:`loss`.

    Example:
        >>> vae = FeatureVAE()
        >>> recon, mu, logvar = vae(torch.randn(4, 512))
        >>> recon.shape, mu.shape
        (torch.Size([4, 512]), torch.Size([4, 256]))
    """

    def __init__(
        self,
        in_dim: int = 512,
        hidden: Sequence[int] = (512, 384),
        latent_dim: int = 256,
        dropout: float = 0.1,
        act: str | Callable[..., nn.Module] = "gelu",
        beta: float = 1e-3,
    ) -> None:
        super().__init__()
        self.in_dim, self.latent_dim, self.beta = int(in_dim), int(latent_dim), float(beta)
        self.hidden = tuple(int(h) for h in hidden)
        self.encoder = _mlp((self.in_dim, *self.hidden), act, dropout)
        self.to_mu = nn.Linear(self.hidden[-1], self.latent_dim)
        self.to_logvar = nn.Linear(self.hidden[-1], self.latent_dim)
        back = tuple(reversed(self.hidden))
        self.decoder_body = _mlp((self.latent_dim, *back), act, dropout)
        self.decoder_out = nn.Linear(back[-1], self.in_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, in_dim)`` → ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_out(self.decoder_body(z))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """A posterior sample while training; the mean in eval mode (deterministic scores)."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` → ``(reconstruction, mu, logvar)``."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, recon error, KL)`` batch means with this VAE's β."""
        recon, mu, logvar = self(x)
        return vae_loss(x, recon, mu, logvar, self.beta)

    def scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample ``recon`` error and ``kl`` (and ``mu``), with the posterior mean as the code."""
        mu, logvar = self.encode(x)
        recon = self.decode(mu)
        return {"recon": reconstruction_error(x, recon), "kl": kl_divergence(mu, logvar), "mu": mu}
