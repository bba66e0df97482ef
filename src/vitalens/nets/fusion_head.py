"""The retina fusion head: an MLP on the concatenated frozen embeddings of a fundus photograph and an OCT scan.

Why an MLP on embeddings: the two encoders are the bundled ``fundus.dr`` and ``oct.kermany4`` nets, frozen (they
were trained for their own tasks and stay exactly as their cards describe); only a small head learns to combine
their pooled features into normal vs disease. The same class with one input width is the single-modality head the
bench compares against (same budget, same pairs).

Inputs are standardised per feature inside the head (buffers fitted on the training pairs), so embeddings of very
different scales (two backbones) weigh in equally at the start of training. ``std_floor`` bounds that scaling: the
encoders' training images leave some pooled features (post-ReLU) at exactly 0, so their training std is ~0 and an
unseen image's small activation there became a z-score of 10⁴–10⁵ (measured on the bundled encoders: 69 fundus and 29
OCT features of 1,280; the validation loss exploded and the binary head's temperature hit its cap of 20). Flooring
each feature's std at ``std_floor`` × the median std of its modality (0.5: unseen |z| ≤ ~20, training |z| ≤ ~10)
keeps them comparable. ``0`` keeps the bare 1e-6 floor the bundled binary model was fitted with.

Shapes: ``forward(*embeddings)`` takes one ``(B, d_i)`` tensor per modality in ``dims`` order → logits
``(B, num_classes)``.

The multiclass variant (``groups=(5, 4)``: the fundus's DR grade 0–4 and the scan's OCT class) is two softmax heads
on one shared body, stored as one linear layer whose columns are split by ``groups`` (mathematically the same as two
layers, and one ONNX output). Why two softmaxes rather than one joint softmax over the 5 × 4 grade × class cells: on
virtual pairs the joint distribution is the pairing rule, not anatomy (grade 0 only ever meets NORMAL, so 7 of the 20
cells are empty by construction, and which disease scan meets which grade is chance); a joint head would learn that
rule from 110 training pairs spread over 13 cells. Each marginal is also exactly what ``fundus.dr`` and
``oct.kermany4`` report, so each is compared with its own single-modality analyzer.
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
        groups: sizes of independent softmax groups the logits are split into, in column order (``(5, 4)``: DR grade,
            OCT class); ``num_classes`` is then their sum. ``None``: one output group.
        std_floor: each feature's std is floored at this × the median std of its modality's features when the
            standardisation is fitted (0: 1e-6 only; see the module docstring).

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
        groups: Sequence[int] | None = None,
        std_floor: float = 0.0,
    ) -> None:
        super().__init__()
        if len(dims) != len(modalities) or not dims:
            raise InputError(f"dims {list(dims)} and modalities {list(modalities)} must match", field="dims")
        self.groups = None if groups is None else tuple(int(g) for g in groups)
        if self.groups is not None:
            if not self.groups or min(self.groups) < 2:
                raise InputError(f"each softmax group needs ≥ 2 classes, got {list(self.groups)}", field="groups")
            if num_classes not in (1, sum(self.groups)):
                raise InputError(
                    f"num_classes {num_classes} differs from the groups' {sum(self.groups)} classes", field="groups"
                )
            num_classes = sum(self.groups)
        if std_floor < 0:
            raise InputError(f"std_floor must be ≥ 0, got {std_floor}", field="std_floor")
        self.std_floor = float(std_floor)
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
        """Per-feature mean and std of the training embeddings (std floored at 1e-6, and at ``std_floor`` × the
        median std of each modality's features)."""
        x = self._concat(embeddings).double()
        std = x.std(0, unbiased=True)
        start = 0
        for d in self.dims:
            block = std[start : start + d]
            floor = max(1e-6, self.std_floor * float(block.median())) if self.std_floor > 0 else 1e-6
            std[start : start + d] = block.clamp_min(floor)
            start += d
        self.mean.copy_(x.mean(0).to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
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
