"""A single-image classification adapter as a ``torch.utils.data.Dataset`` (DR grade, OCT class, MedMNIST).

Why separate from the adapters: they are torch-free and reused by tools that never train; this adds decoding
through the card's :class:`~vitalens.data.image_preprocess.ImagePreprocess`, optional augmentation with its own
generator (:class:`~vitalens.data.transforms.FundusAugment`: flips, rotation, random resized crop and colour
jitter through ``torchvision.transforms.v2``), and an in-memory cache of the preprocessed squares.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from vitalens.data._image_source import ImageClassSource
from vitalens.data.image_preprocess import ImagePreprocess
from vitalens.data.transforms import FundusAugment
from vitalens.errors import InputError

__all__ = ["ImageClassTorchDataset"]

logger = logging.getLogger(__name__)


class ImageClassTorchDataset(torch.utils.data.Dataset):
    """Items ``{"image" (3, S, S) float32, "target" (K,) one-hot float32, "sample_id", "patient_id"}``.

    Args:
        source: the adapter.
        indices: sample indices of this split.
        preprocess: the deterministic pipeline (the card's).
        augment: random augmentation of the uint8 square, or None.
        seed: augmentation seed; each DataLoader worker uses ``seed + worker id``.
        cache_images: keep the preprocessed uint8 squares (S·S·3 bytes each) after first decoding.
    """

    def __init__(
        self,
        source: ImageClassSource,
        indices: Sequence[int] | np.ndarray,
        *,
        preprocess: ImagePreprocess,
        augment: FundusAugment | None = None,
        seed: int = 0,
        cache_images: bool = True,
    ) -> None:
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= len(source)):
            raise InputError(f"indices must lie in [0, {len(source)}), got {idx.min()}..{idx.max()}", field="indices")
        self.source = source
        self.indices = idx
        self.preprocess = preprocess
        self.augment = augment
        self.seed = int(seed)
        self.cache_images = cache_images
        self._cache: dict[int, np.ndarray] = {}
        self._eye = np.eye(len(source.labels), dtype=np.float32)
        self._worker_id: int | None = None

    def __len__(self) -> int:
        return int(self.indices.size)

    def square(self, i: int) -> np.ndarray:
        """The preprocessed uint8 ``(S, S, 3)`` of item ``i`` (before augmentation and normalisation)."""
        j = int(self.indices[i])
        cached = self._cache.get(j)
        if cached is not None:
            return cached
        square = self.preprocess.square(self.source.image(j))
        if self.cache_images:
            self._cache[j] = square
        return square

    def _reseed_for_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if self.augment is not None and info is not None and self._worker_id != info.id:
            self._worker_id = info.id
            self.augment.set_random_state(self.seed + info.id)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | str]:
        self._reseed_for_worker()
        sample = self.source[int(self.indices[i])]
        square = self.square(i)
        if self.augment is None:
            image = self.preprocess.normalize(square)
        else:
            chw = torch.from_numpy(np.array(square, order="C")).permute(2, 0, 1)
            image = self.preprocess.normalize(self.augment(chw))
        return {
            "image": image,
            "target": torch.from_numpy(self._eye[sample.label]),
            "sample_id": sample.sample_id,
            "patient_id": sample.patient_id,
        }
