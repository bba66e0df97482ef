"""Frozen-trunk features of the ODIR photographs: one pooled encoder vector per patient, eye and view, cached.

Why: on a shared 2-core CPU a fine-tuned bilateral EfficientNet costs minutes per epoch, so a 5-fold CV with several
levers does not fit in half an hour. With the ImageNet trunk frozen, every image goes through it once per view
(identity, flips, and for "strong" augmentation small rotations and brightness/contrast changes); the fusion head,
the age MLP and the per-eye auxiliary head then train on the cached vectors in seconds, and a training-time
augmentation is a random view per eye, test-time augmentation the mean over the flip views. The same frozen trunk
and head load into :class:`~vitalens.nets.bilateral.BilateralFusionNet`, so the bundled model computes exactly
these features at inference.

The cache is one ``.npy`` per view, keyed by the backbone, weights, size, view, pooled stages and the images' names,
sizes and mtimes; a changed image invalidates it.

Multi-stage pooling (``pool_stages``): small lesions (drusen, microaneurysms, haemorrhages) are a few pixels at 256 px
and are mostly averaged away by the stride-32 ``conv_head`` vector, so the outputs of chosen intermediate encoder
blocks (``encoder.blocks[k]``, e.g. the stride-16 and stride-32 stages) can be global-average pooled and appended
to it. The leading ``num_features`` columns stay the encoder's own pooled vector, so the default ``()`` gives (and
caches under the same key) exactly the vectors the bundled net computes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitalens.data.odir import OdirDataset

__all__ = ["VIEWS", "FLIP_VIEWS", "STRONG_VIEWS", "EyeFeatures", "view_transform", "extract_features"]

logger = logging.getLogger(__name__)

#: The flips (the test-time augmentation set); a fundus is a fundus mirrored or upside down.
FLIP_VIEWS: tuple[str, ...] = ("id", "hflip", "vflip", "rot180")
#: Flips plus small rotations and photometric changes: the "strong augmentation" training set.
STRONG_VIEWS: tuple[str, ...] = (*FLIP_VIEWS, "rot+15", "rot-15", "bright", "dark", "contrast+", "contrast-")
VIEWS: tuple[str, ...] = STRONG_VIEWS


def view_transform(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The deterministic transform of a view on a uint8 ``(3, S, S)`` square (before normalisation)."""
    from torchvision.transforms.v2 import functional as tf

    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "id": lambda x: x,
        "hflip": tf.horizontal_flip,
        "vflip": tf.vertical_flip,
        "rot180": lambda x: torch.flip(x, dims=(-2, -1)),
        "rot+15": lambda x: tf.rotate(x, 15.0),
        "rot-15": lambda x: tf.rotate(x, -15.0),
        "bright": lambda x: tf.adjust_brightness(x, 1.2),
        "dark": lambda x: tf.adjust_brightness(x, 0.8),
        "contrast+": lambda x: tf.adjust_contrast(x, 1.25),
        "contrast-": lambda x: tf.adjust_contrast(x, 0.8),
    }
    if name not in table:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("feature view", name, list(table))
    return table[name]


@dataclass
class EyeFeatures:
    """Cached pooled features: ``feats[i, eye, view]`` for patient ``i`` (eye 0 left, 1 right)."""

    feats: np.ndarray
    patient_ids: list[str]
    views: tuple[str, ...]
    backbone: str
    pretrained: str
    size: int
    #: the ``encoder.blocks`` whose pooled outputs follow the encoder's vector (see :func:`extract_features`)
    pool_stages: tuple[int, ...] = ()

    def view_index(self, names: Sequence[str]) -> list[int]:
        missing = [n for n in names if n not in self.views]
        if missing:
            raise ValueError(f"views {missing} were not extracted; have {list(self.views)}")
        return [self.views.index(n) for n in names]


def _cache_key(
    dataset: OdirDataset, backbone: str, pretrained: bool | str, size: int, view: str, pool_stages: tuple[int, ...] = ()
) -> str:
    # the default's key is the one from before pool_stages existed, so caches written then stay valid
    parts: list[object] = [backbone, str(pretrained), size, view]
    if pool_stages:
        parts.append(list(pool_stages))
    h = hashlib.sha256(json.dumps(parts).encode())
    for r in dataset.records:
        for p in (r.left, r.right):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)};".encode())
    return h.hexdigest()[:16]


def _cache_path(
    cache_dir: Path,
    dataset: OdirDataset,
    backbone: str,
    pretrained: bool | str,
    size: int,
    view: str,
    pool_stages: tuple[int, ...] = (),
) -> Path:
    key = _cache_key(dataset, backbone, pretrained, size, view, pool_stages)
    stages = f"-s{'.'.join(str(k) for k in pool_stages)}" if pool_stages else ""
    return Path(cache_dir) / f"odir-{backbone}-{str(pretrained).lower()}-{size}-{view}{stages}-{key}.npy"


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    logger.info("ODIR features cached at %s", path)


def _encoder(backbone: str, pretrained: bool | str) -> tuple[torch.nn.Module, tuple[float, ...], tuple[float, ...]]:
    from vitalens.nets.bilateral import BilateralFusionNet
    from vitalens.nets.pretrained import normalization_for

    net = BilateralFusionNet(backbone, pretrained=pretrained)
    mean, std = normalization_for(backbone, pretrained)
    return net.eval(), mean, std


def extract_features(
    dataset: OdirDataset,
    *,
    backbone: str = "efficientnet_lite0",
    pretrained: bool | str = "lite0",
    size: int = 256,
    views: Sequence[str] = FLIP_VIEWS,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    pool_stages: Sequence[int] = (),
) -> EyeFeatures:
    """Pooled features of every patient's two eyes under every view, shape ``(N, 2, V, F)``, from the frozen trunk.

    Preprocessing is the card's (:class:`~vitalens.data.transforms.FundusPreprocess`: border crop, square, resize,
    the weights' normalisation), so these are the vectors the bundled net's encoder computes at inference.

    Args:
        dataset: the ODIR adapter.
        backbone: timm name of the encoder.
        pretrained: its weights (``lite0``/``lite1``/``lite2`` offline ImageNet, or ``none`` for a random trunk).
        size: side the encoder sees, px.
        views: names of :func:`view_transform`.
        cache_dir: where the ``.npy`` files are read from and written to; ``None`` computes without caching.
        batch_size: images per forward pass.
        pool_stages: indices ``k`` of ``encoder.blocks[k]`` whose outputs are global-average pooled and appended,
            in this order, after the encoder's pooled vector (``F = num_features + Σ channels``). ``()`` (the
            default) is the encoder's vector alone. With stages, the leading columns are also cached under the
            default key, so a later default call costs nothing.

    Raises:
        ValueError: a stage index the encoder has no block for, or an encoder without ``blocks``.

    Example:
        >>> feats = extract_features(dataset, pool_stages=(4, 6), cache_dir=Path("runs/cache"))  # doctest: +SKIP
        >>> feats.feats.shape  # Lite0: 1280 + 112 (stride 16) + 320 (stride 32)
        (304, 2, 2, 1712)
    """

    views = tuple(views)
    stages = tuple(int(k) for k in pool_stages)
    for v in views:
        view_transform(v)  # an unknown view fails before any work
    ids = [r.patient_id for r in dataset.records]
    per_view: dict[str, np.ndarray] = {}
    paths: dict[str, Path] = {}
    for v in views:
        if cache_dir is None:
            continue
        paths[v] = _cache_path(cache_dir, dataset, backbone, pretrained, size, v, stages)
        if paths[v].is_file():
            per_view[v] = np.load(paths[v], allow_pickle=False)
            logger.info("ODIR features (%s) from cache %s", v, paths[v])
    todo = [v for v in views if v not in per_view]
    if todo:
        computed, num_features = _compute(dataset, backbone, pretrained, size, todo, batch_size, stages)
        for v, arr in computed.items():
            per_view[v] = arr
            if v in paths and cache_dir is not None:
                _save(paths[v], arr)
                plain = _cache_path(cache_dir, dataset, backbone, pretrained, size, v)
                if stages and not plain.is_file():
                    _save(plain, np.ascontiguousarray(arr[:, :, :num_features]))
    feats = np.stack([per_view[v] for v in views], axis=2)  # (N, 2, V, F)
    return EyeFeatures(feats, ids, views, backbone, str(pretrained), size, stages)


def _stage_hooks(net: torch.nn.Module, stages: tuple[int, ...], store: dict[int, torch.Tensor]) -> list[Any]:
    """Forward hooks that put the global-average pool of ``encoder.blocks[k]``'s output in ``store[k]``."""
    blocks = getattr(net.encoder, "blocks", None)  # type: ignore[union-attr]
    if blocks is None:
        raise ValueError(f"pool_stages needs an encoder with `blocks`; {type(net.encoder).__name__} has none")
    bad = [k for k in stages if not 0 <= k < len(blocks)]
    if bad:
        raise ValueError(f"pool_stages {bad} out of range: the encoder has blocks 0..{len(blocks) - 1}")

    def hook(k: int) -> Callable[..., None]:
        def grab(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            store[k] = output.mean(dim=(-2, -1))

        return grab

    return [blocks[k].register_forward_hook(hook(k)) for k in stages]


def _compute(
    dataset: OdirDataset,
    backbone: str,
    pretrained: bool | str,
    size: int,
    views: Sequence[str],
    batch_size: int,
    stages: tuple[int, ...] = (),
) -> tuple[dict[str, np.ndarray], int]:
    """``{view: (N, 2, F)}`` through the frozen encoder, every image decoded once for all views, and the width of
    the encoder's own pooled vector (the leading columns)."""
    from vitalens.data.torch_odir import load_rgb
    from vitalens.data.transforms import FundusPreprocess, ToNormalizedTensor

    net, mean, std = _encoder(backbone, pretrained)
    prep = FundusPreprocess(size, mean, std)
    norm = ToNormalizedTensor(mean, std)
    transforms = [view_transform(v) for v in views]
    files = [p for r in dataset.records for p in (r.left, r.right)]
    pooled: dict[int, torch.Tensor] = {}
    handles = _stage_hooks(net, stages, pooled) if stages else []
    out: np.ndarray | None = None
    num_features = int(net.num_features)
    try:
        with torch.inference_mode():
            for start in range(0, len(files), batch_size):
                chunk = files[start : start + batch_size]
                squares = [
                    torch.from_numpy(np.array(prep.square(load_rgb(p)), order="C")).permute(2, 0, 1) for p in chunk
                ]
                for v, transform in enumerate(transforms):
                    batch = torch.stack([norm(transform(s).contiguous()) for s in squares])
                    parts = [net.encode(batch), *(pooled[k] for k in stages)]
                    feats = torch.cat(parts, dim=1).numpy().astype(np.float32)
                    if out is None:
                        out = np.zeros((len(files), len(views), feats.shape[1]), dtype=np.float32)
                    out[start : start + len(chunk), v] = feats
                logger.info("ODIR features: %d/%d images", min(start + batch_size, len(files)), len(files))
    finally:
        for h in handles:
            h.remove()
    if out is None:
        raise ValueError("no ODIR image to extract features from")
    both = out.reshape(len(dataset.records), 2, len(views), -1)
    return {v: np.ascontiguousarray(both[:, :, j]) for j, v in enumerate(views)}, num_features
