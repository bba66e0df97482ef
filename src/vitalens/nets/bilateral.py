"""Bilateral fundus fusion net (the EYE HEART CONNECTION design): both eyes + age → ODIR condition logits.

Why one shared encoder: the left and right fundus are the same kind of image, so one timm encoder sees both
(half the weights, twice the data per weight); a small age MLP adds the strongest non-image risk factor; a
3-layer head fuses ``[left, right, age]`` features into ``num_classes`` logits (8 ODIR labels).

The surface is the uniform one explainers rely on (timm style): ``forward_features`` (one eye's feature map),
``encode`` (pooled), ``forward_head``, ``get_classifier`` and ``target_layer`` (dotted path of the encoder module
whose output is the final feature map, found by probing the encoder, so no architecture is special-cased).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vitalens.errors import ArtifactError
from vitalens.nets._encoder import TimmEncoderMixin, find_feature_map_layer
from vitalens.nets._layers import get_act
from vitalens.nets._onnx import OnnxInput, OnnxSignature
from vitalens.nets._registry import register_net
from vitalens.nets.pretrained import LITE0_BACKBONE, create_backbone

__all__ = [
    "BilateralFusionNet",
    "derive_normal_logit",
    "fusion_layers",
    "find_feature_map_layer",
    "odir_bilateral",
    "odir_lite0",
    "odir_b4",
    "odir_test",
]

logger = logging.getLogger(__name__)


def fusion_layers(
    num_features: int,
    age_dim: int,
    head_hidden: tuple[int, int],
    drop_rate: float,
    act: str | Callable[..., nn.Module],
    num_classes: int,
) -> tuple[nn.Sequential, nn.Sequential, nn.Linear]:
    """The age MLP, the 2-hidden-layer fusion of ``[left, right, age]`` and the classifier of one fusion head.

    One builder for the net and for heads trained on cached features (:mod:`vitalens.training.odir_heads`), so a
    head's ``state_dict`` loads into the net unchanged.
    """
    h1, h2 = head_hidden
    age_mlp = nn.Sequential(
        nn.Linear(1, age_dim), get_act(act, inplace=True), nn.Linear(age_dim, age_dim), get_act(act, inplace=True)
    )
    fusion = nn.Sequential(
        nn.Linear(2 * num_features + age_dim, h1),
        get_act(act, inplace=True),
        nn.Dropout(drop_rate),
        nn.Linear(h1, h2),
        get_act(act, inplace=True),
        nn.Dropout(drop_rate),
    )
    return age_mlp, fusion, nn.Linear(h2, num_classes)


def derive_normal_logit(logits: torch.Tensor, normal_index: int = 0) -> torch.Tensor:
    """Logits with column ``normal_index`` replaced by the logit of "no other label": P(N) = Π_k≠N (1 − p_k).

    Why: ODIR's N is structural (a patient is normal when no other label applies), so a separately learned N can
    contradict the other seven; deriving it keeps the eight outputs coherent and lets N's gradient train them.
    Computed in log space (log P(N) = −Σ softplus(z_k)), finite for any input.
    """
    others = torch.cat([logits[:, :normal_index], logits[:, normal_index + 1 :]], dim=1)
    log_p = (-nn.functional.softplus(others).sum(dim=1)).clamp(max=-1e-6)
    normal = log_p - torch.log(-torch.expm1(log_p))
    return torch.cat([logits[:, :normal_index], normal[:, None], logits[:, normal_index + 1 :]], dim=1)


class BilateralFusionNet(TimmEncoderMixin, nn.Module):
    """One shared timm encoder for both eyes, an age MLP, and a 3-layer fusion head.

    Args:
        backbone: timm model name of the encoder (``efficientnet_lite0``, ``efficientnet_b4``, ``resnet18``...).
        pretrained: encoder weights: ``False`` random, ``True``/``"lite0"`` offline ImageNet Lite0 (Lite0 only),
            ``"hub"`` timm download (see :mod:`vitalens.nets.pretrained`).
        num_classes: logits out (8 ODIR labels N, D, G, C, A, H, M, O).
        in_chans: image channels.
        age_dim: width of the age embedding (2-layer MLP from the 1 normalised age value).
        head_hidden: widths of the two hidden layers of the fusion head.
        drop_rate: dropout after each of the two hidden layers of the head.
        act: activation of the age MLP and head (name or callable, :func:`vitalens.nets._layers.get_act`).
        backbone_kwargs: extra timm arguments for the encoder (``drop_path_rate``...).
        derived_normal: output column ``normal_index`` is "no other label" (:func:`derive_normal_logit`) instead of
            a learned logit.
        normal_index: the N column (ODIR order N, D, G, C, A, H, M, O: 0).
        n_heads: fusion heads (age MLP + fusion + classifier) on the one shared encoder whose logits are averaged:
            an ensemble of fold models trained on a frozen trunk costs one encoder pass (the first head keeps the
            single-head parameter names, so one-head artifacts load unchanged).

    Shapes: ``left``/``right`` (B, in_chans, H, W) float, normalised as the card says; ``age`` (B,) or (B, 1)
    normalised years; logits (B, num_classes).

    Example:
        >>> net = BilateralFusionNet("test_efficientnet", head_hidden=(32, 16), age_dim=8)
        >>> net(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.zeros(2)).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        backbone: str = LITE0_BACKBONE,
        pretrained: bool | str = False,
        num_classes: int = 8,
        in_chans: int = 3,
        age_dim: int = 32,
        head_hidden: Sequence[int] = (512, 128),
        drop_rate: float = 0.3,
        act: str | Callable[..., nn.Module] = "relu",
        backbone_kwargs: dict[str, Any] | None = None,
        derived_normal: bool = False,
        normal_index: int = 0,
        n_heads: int = 1,
    ) -> None:
        super().__init__()
        if n_heads < 1:
            raise ValueError(f"n_heads must be >= 1, got {n_heads}")
        if len(head_hidden) != 2:
            raise ValueError(f"head_hidden needs 2 widths (3-layer head), got {tuple(head_hidden)}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.encoder = create_backbone(
            backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans, **(backbone_kwargs or {})
        )
        self.num_features = int(self.encoder.num_features)
        h1, h2 = (int(h) for h in head_hidden)
        self.head_hidden = (h1, h2)
        self.age_mlp, self.fusion, self.classifier = fusion_layers(
            self.num_features, age_dim, (h1, h2), drop_rate, act, num_classes
        )
        self.extra_heads = nn.ModuleList()
        for _ in range(int(n_heads) - 1):
            layers = fusion_layers(self.num_features, age_dim, (h1, h2), drop_rate, act, num_classes)
            self.extra_heads.append(nn.ModuleDict(dict(zip(("age_mlp", "fusion", "classifier"), layers, strict=True))))
        self.derived_normal = bool(derived_normal)
        self.normal_index = int(normal_index)
        self._target_layer: str | None = None

    # -- the uniform surface (``target_layer``, ``encoder_stages``, ``freeze_encoder`` from the mixin) ------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """One eye (B, in_chans, H, W) → encoder feature map (B, C, h, w)."""
        return self.encoder.forward_features(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """One eye (B, in_chans, H, W) → pooled features (B, num_features)."""
        return self.encoder.forward_head(self.encoder.forward_features(x), pre_logits=True)

    def _pooled(self, feat: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_head(feat, pre_logits=True) if feat.ndim > 2 else feat

    def forward_head(
        self, left_feat: torch.Tensor, right_feat: torch.Tensor, age: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor:
        """Fuse both eyes' features and age into logits (B, num_classes), or (B, head_hidden[1]) if ``pre_logits``.

        ``left_feat``/``right_feat`` are pooled (B, F) or feature maps (B, C, h, w) (pooled here).
        """
        age = age.reshape(-1, 1).to(dtype=left_feat.dtype)
        fused = torch.cat([self._pooled(left_feat), self._pooled(right_feat), self.age_mlp(age)], dim=1)
        hidden = self.fusion(fused)
        if pre_logits:
            return hidden
        logits = self.classifier(hidden)
        if len(self.extra_heads):
            left_p, right_p = self._pooled(left_feat), self._pooled(right_feat)
            for head in self.extra_heads:
                joined = torch.cat([left_p, right_p, head["age_mlp"](age)], dim=1)
                logits = logits + head["classifier"](head["fusion"](joined))
            logits = logits / (1 + len(self.extra_heads))
        return derive_normal_logit(logits, self.normal_index) if self.derived_normal else logits

    def forward(self, left: torch.Tensor, right: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """Left eye, right eye (B, in_chans, H, W) and normalised age (B,) or (B, 1) → logits (B, num_classes)."""
        if left.shape[0] != right.shape[0]:
            raise ValueError(f"left has batch {left.shape[0]}, right has {right.shape[0]}: they must match")
        both = self.encode(torch.cat([left, right], dim=0)) if left.shape[1:] == right.shape[1:] else None
        if both is None:
            left_feat, right_feat = self.encode(left), self.encode(right)
        else:
            # halves, not split(left.shape[0]): a traced split bakes the export batch into the ONNX graph
            left_feat, right_feat = both.chunk(2, dim=0)
        return self.forward_head(left_feat, right_feat, age)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def onnx_signature(self, card: Any) -> OnnxSignature:
        """Three inputs in ``forward`` order: both eyes ``(B, in_chans, H, W)`` at the card's size and the
        normalised age ``(B, 1)``, named as the card's ``input.extra.inputs`` (``fundus_left``, ``fundus_right``,
        ``age``); only the batch is free (the encoder runs both eyes as one batch, so they share one size)."""
        if card.input.size is None:
            raise ArtifactError(f"card {card.name} has no input size; cannot size the fundus inputs")
        names = [str(n) for n in card.input.extra.get("inputs") or ()]
        if len(names) != 3:
            names = ["left", "right", "age"]
        eye = (1, self.in_chans, *(int(s) for s in card.input.size))
        return OnnxSignature(inputs=(OnnxInput(names[0], eye), OnnxInput(names[1], eye), OnnxInput(names[2], (1, 1))))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer with ``num_classes`` outputs (the encoder, age MLP and hidden layers are kept)."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden[1], num_classes)


def _create(variant: dict[str, Any], pretrained: bool | str, **kwargs: Any) -> BilateralFusionNet:
    return BilateralFusionNet(pretrained=pretrained, **{**variant, **kwargs})


@register_net("odir_bilateral")
def odir_bilateral(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """The generic bilateral fusion net; every :class:`BilateralFusionNet` argument may be given."""
    return _create({}, pretrained, **kwargs)


@register_net("odir_lite0")
def odir_lite0(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """EfficientNet-Lite0 encoder; ``pretrained=True``/"lite0" loads the offline ImageNet weights."""
    return _create({"backbone": LITE0_BACKBONE}, pretrained, **kwargs)


@register_net("odir_b4")
def odir_b4(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """EfficientNet-B4 encoder, the seed design (random init offline; ``pretrained="hub"`` where allowed)."""
    return _create({"backbone": "efficientnet_b4"}, pretrained, **kwargs)


@register_net("odir_test")
def odir_test(pretrained: bool | str = False, **kwargs: Any) -> BilateralFusionNet:
    """A tiny net for tests and smoke runs (timm ``test_efficientnet``): milliseconds on CPU."""
    return _create({"backbone": "test_efficientnet", "age_dim": 8, "head_hidden": (32, 16)}, pretrained, **kwargs)
