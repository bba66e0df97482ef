"""The retina fusion head: an MLP on the concatenated frozen embeddings of a fundus photograph and an OCT scan.

Why an MLP on embeddings: the two encoders are the bundled ``fundus.dr`` and ``oct.kermany4`` nets, frozen (they
were trained for their own tasks and stay exactly as their cards describe); only a small head learns to combine
their pooled features into normal vs disease. The same class with one input width is the single-modality head the
bench compares against (same budget, same pairs).

Inputs are standardised per feature inside the head (buffers fitted on the training pairs), so embeddings of very
different scales (two backbones) weigh in equally at the start of training.

Shapes: ``forward(*embeddings)`` takes one ``(B, d_i)`` tensor per modality in ``dims`` order → logits
``(B, num_classes)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.nets._layers import get_act
from vitalens.nets._registry import register_net

__all__ = ["EmbeddingFusionHead", "retina_fusion_mlp", "retina_fusion_test"]

logger = logging.getLogger(__name__)


class EmbeddingFusionHead(nn.Module):
    """Concatenate per-modality embeddings → standardise → MLP → logits.

    Args:
        dims: embedding width of each modality, in input order (``(fundus, oct)``).
        hidden: hidden widths of the MLP.
        dropout: after every hidden layer (and on the input).
        num_classes: logits out (1: disease vs normal).
        act: hidden activation.
        modalities: names of the inputs, for the card and error messages.

    Example:
        >>> head = EmbeddingFusionHead((1280, 1280))
        >>> head(torch.randn(2, 1280), torch.randn(2, 1280)).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        dims: Sequence[int] = (1280, 1280),
        hidden: Sequence[int] = (256, 64),
        dropout: float = 0.2,
        num_classes: int = 1,
        act: str = "gelu",
        modalities: Sequence[str] = ("fundus", "oct"),
    ) -> None:
        super().__init__()
        if len(dims) != len(modalities) or not dims:
            raise InputError(f"dims {list(dims)} and modalities {list(modalities)} must match", field="dims")
        self.dims = tuple(int(d) for d in dims)
        self.modalities = tuple(str(m) for m in modalities)
        width = sum(self.dims)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        prev = width
        for h in hidden:
            layers += [nn.Linear(prev, int(h)), get_act(act), nn.Dropout(dropout)]
            prev = int(h)
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(prev, num_classes)
        self.num_classes = num_classes

    def _concat(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(embeddings) != len(self.dims):
            raise InputError(f"expected {len(self.dims)} embeddings ({', '.join(self.modalities)})", field="inputs")
        for name, e, d in zip(self.modalities, embeddings, self.dims, strict=True):
            if e.ndim != 2 or e.shape[1] != d:
                raise InputError(f"{name} embedding is {tuple(e.shape)}, expected (B, {d})", field=name)
        return torch.cat(list(embeddings), dim=1)

    @torch.no_grad()
    def fit_standardisation(self, *embeddings: torch.Tensor) -> EmbeddingFusionHead:
        """Per-feature mean and std of the training embeddings (std floored at 1e-6)."""
        x = self._concat(embeddings).double()
        self.mean.copy_(x.mean(0).to(self.mean.dtype))
        self.std.copy_(x.std(0, unbiased=True).clamp_min(1e-6).to(self.std.dtype))
        return self

    def forward_features(self, *embeddings: torch.Tensor) -> torch.Tensor:
        return self.body((self._concat(embeddings) - self.mean) / self.std)

    def forward(self, *embeddings: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(*embeddings))

    def get_classifier(self) -> nn.Module:
        return self.classifier


def _create(variant: dict[str, Any], pretrained: bool | str, **kwargs: Any) -> EmbeddingFusionHead:
    if pretrained not in (False, None, "none"):
        raise InputError("the fusion head has no pretrained weights (its encoders are the bundled models)")
    return EmbeddingFusionHead(**{**variant, **kwargs})


@register_net("retina_fusion_mlp")
def retina_fusion_mlp(pretrained: bool | str = False, **kwargs: Any) -> EmbeddingFusionHead:
    """The fusion head: 2 hidden layers (256, 64), GELU, dropout 0.2; pass ``dims`` of the two encoders."""
    return _create({}, pretrained, **kwargs)


@register_net("retina_fusion_test")
def retina_fusion_test(pretrained: bool | str = False, **kwargs: Any) -> EmbeddingFusionHead:
    """A tiny head for tests."""
    return _create({"hidden": (16,)}, pretrained, **kwargs)
