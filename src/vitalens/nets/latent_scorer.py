"""Stage 3 of the chest X-ray anomaly design: a small Transformer that scores the VAE latent.

Why a Transformer on a vector: the design cuts the 256-d latent into 8 "patches" of 32, embeds each to
d_model = 128, prepends a learned CLS token, adds learned position embeddings, runs 6 pre-norm encoder layers with
8 heads, and reads the anomaly logit from the CLS token (→ sigmoid). The attention of the CLS token over the 8
latent patches in the last layer says which parts of the latent code drove the score; it is *not* a spatial map
(latent patches are not image regions), and the analyzer shows it as such.

The blocks are written out (LayerNorm → multi-head attention → residual → LayerNorm → GELU MLP → residual) rather
than using ``nn.TransformerEncoderLayer`` so the CLS attention weights can be read without hooks into PyTorch's
fused fast path.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from vitalens.errors import InputError

__all__ = ["LatentTransformerScorer"]

logger = logging.getLogger(__name__)


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        hidden = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, need_weights=need_weights, average_attn_weights=True)
        x = x + out
        x = x + self.mlp(self.norm2(x))
        return x, weights


class LatentTransformerScorer(nn.Module):
    """Latent ``(B, latent_dim)`` → anomaly logit ``(B,)``.

    Args:
        latent_dim: width of the latent (256).
        n_patches: patches the latent is cut into (8 → 32 values each).
        d_model: token width (128).
        depth: encoder layers (6).
        heads: attention heads (8).
        mlp_ratio: MLP hidden width / d_model.
        dropout: attention and MLP dropout.

    Example:
        >>> scorer = LatentTransformerScorer()
        >>> scorer(torch.randn(3, 256)).shape, scorer.cls_attention(torch.randn(3, 256)).shape
        (torch.Size([3]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        latent_dim: int = 256,
        n_patches: int = 8,
        d_model: int = 128,
        depth: int = 6,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if latent_dim % n_patches:
            raise InputError(f"latent_dim {latent_dim} is not divisible by n_patches {n_patches}", field="n_patches")
        if d_model % heads:
            raise InputError(f"d_model {d_model} is not divisible by heads {heads}", field="heads")
        self.latent_dim, self.n_patches = int(latent_dim), int(n_patches)
        self.patch_dim = self.latent_dim // self.n_patches
        self.embed = nn.Linear(self.patch_dim, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_patches + 1, d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(_Block(d_model, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def _tokens(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InputError(f"expected a latent (B, {self.latent_dim}), got {tuple(z.shape)}", field="latent")
        patches = z.reshape(z.shape[0], self.n_patches, self.patch_dim)
        tokens = torch.cat([self.cls_token.expand(z.shape[0], -1, -1), self.embed(patches)], dim=1)
        return tokens + self.pos_embed

    def forward_features(self, z: torch.Tensor, *, return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised CLS token ``(B, d_model)`` and, when asked, the last layer's CLS attention ``(B, n_patches)``
        (head-averaged, over the patch tokens only, renormalised to sum to 1); zeros otherwise."""
        x = self._tokens(z)
        weights: torch.Tensor | None = None
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            x, w = block(x, need_weights=return_attention and last)
            if w is not None:
                weights = w
        cls = self.norm(x[:, 0])
        if weights is None:
            return cls, torch.zeros(z.shape[0], self.n_patches, device=z.device, dtype=z.dtype)
        att = weights[:, 0, 1:]
        return cls, att / att.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latent → anomaly logit ``(B,)`` (sigmoid it for the design's "ViT score")."""
        cls, _ = self.forward_features(z)
        return self.head(cls).squeeze(1)

    def cls_attention(self, z: torch.Tensor) -> torch.Tensor:
        """The CLS token's attention over the latent patches in the last layer, ``(B, n_patches)``, rows sum to 1."""
        _, att = self.forward_features(z, return_attention=True)
        return att

    def get_classifier(self) -> nn.Module:
        return self.head
