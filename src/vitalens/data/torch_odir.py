"""ODIR as a ``torch.utils.data.Dataset`` of bilateral samples (both eyes, age, target) for the fusion net.

Why separate from :mod:`vitalens.data.odir`: the adapter is torch-free and reused by tools that never train;
this module adds image decoding, the shared :class:`~vitalens.data.transforms.FundusPreprocess`, optional
augmentation and the age z-score whose statistics come from the training split only (stored in the card).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vitalens.data.odir import OdirDataset
from vitalens.data.transforms import IMAGENET_MEAN, IMAGENET_STD, FundusAugment, FundusPreprocess
from vitalens.errors import InputError

__all__ = ["BilateralOdirDataset", "age_stats", "load_rgb"]

logger = logging.getLogger(__name__)


def age_stats(ages: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (ddof=0) of ages, years.

    Call it on the *training split only* (the caller's duty) and store both in the model card. A split whose
    ages are all equal gets std 1.0 (logged), so the z-score stays finite.

    Raises:
        InputError: no age, or a non-finite one.
    """
    a = np.asarray(ages, dtype=np.float64).ravel()
    if a.size == 0:
        raise InputError("age_stats needs at least one age", field="age")
    if not np.isfinite(a).all():
        raise InputError(f"ages contain {int((~np.isfinite(a)).sum())} non-finite values", field="age")
    mean, std = float(a.mean()), float(a.std())
    if std < 1e-6:
        logger.warning("age_stats: all %d ages equal %.1f years; using std 1.0", a.size, mean)
        std = 1.0
    return mean, std


def load_rgb(path: Path) -> np.ndarray:
    """Decode one photograph to uint8 ``(H, W, 3)``."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class BilateralOdirDataset(torch.utils.data.Dataset):
    """Bilateral ODIR samples: ``{"left", "right", "age", "target", "patient_id"}``.

    Args:
        dataset: the ODIR adapter.
        indices: record indices of this split (e.g. ``patient_split(...)["train"]``).
        size: side the net sees, pixels.
        mean: per-channel mean, [0, 1] scale.
        std: per-channel std, [0, 1] scale.
        age_mean: training-split mean age, years.
        age_std: training-split age std, years (> 0).
        augment: apply :class:`FundusAugment` independently to each eye.
        seed: augmentation seed; each DataLoader worker uses ``seed + worker id``.
        cache_images: keep the cropped, resized uint8 squares in memory after first decoding (S×S×3 bytes per
            eye), so later epochs skip JPEG decoding.

    Item shapes: ``left``/``right`` float32 ``(3, size, size)``; ``age`` float32 ``(1,)`` = (age − age_mean) /
    age_std; ``target`` float32 ``(8,)``; ``patient_id`` str.
    """

    def __init__(
        self,
        dataset: OdirDataset,
        indices: Sequence[int] | np.ndarray,
        *,
        size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        age_mean: float,
        age_std: float,
        augment: bool = False,
        seed: int = 0,
        cache_images: bool = True,
    ) -> None:
        if not age_std > 0:
            raise InputError(f"age_std must be > 0 years, got {age_std}", field="age_std")
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= len(dataset)):
            raise InputError(f"indices must lie in [0, {len(dataset)}), got {idx.min()}..{idx.max()}", field="indices")
        self.dataset = dataset
        self.indices = idx
        self.preprocess = FundusPreprocess(size, mean, std)
        self.age_mean, self.age_std = float(age_mean), float(age_std)
        self.seed = int(seed)
        self.augment = FundusAugment(seed=self.seed) if augment else None
        self.cache_images = cache_images
        self._cache: dict[Path, np.ndarray] = {}
        self._worker_id: int | None = None

    def __len__(self) -> int:
        return int(self.indices.size)

    def _square(self, path: Path) -> np.ndarray:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        square = self.preprocess.square(load_rgb(path))
        if self.cache_images:
            self._cache[path] = square
        return square

    def _eye(self, path: Path) -> torch.Tensor:
        square = self._square(path)
        if self.augment is None:
            return self.preprocess.normalize(square)
        chw = torch.from_numpy(np.array(square, order="C")).permute(2, 0, 1)
        return self.preprocess.normalize(self.augment(chw))

    def _reseed_for_worker(self) -> None:
        """Give each DataLoader worker its own augmentation stream (copies would otherwise repeat it)."""
        info = torch.utils.data.get_worker_info()
        if self.augment is not None and info is not None and self._worker_id != info.id:
            self._worker_id = info.id
            self.augment.set_random_state(self.seed + info.id)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | str]:
        self._reseed_for_worker()
        record = self.dataset[int(self.indices[i])]
        age = (record.age_years - self.age_mean) / self.age_std
        return {
            "left": self._eye(record.left),
            "right": self._eye(record.right),
            "age": torch.tensor([age], dtype=torch.float32),
            "target": torch.tensor(record.labels, dtype=torch.float32),
            "patient_id": record.patient_id,
        }
