"""Torch dataset of chest radiographs from either layout (files of the COVID-19 Radiography Database, arrays of a
MedMNIST ``.npz``), with the deterministic :class:`~vitalens.data.cxr_transforms.CxrPreprocess`.

Why one dataset for both: the anomaly pipeline only needs "an image, is it abnormal, which class, which id";
where the pixels come from (a PNG path or a row of an array) is the adapter's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vitalens.data.cxr_transforms import CxrAugment, CxrPreprocess, to_grayscale

__all__ = ["CxrSample", "CxrImageDataset", "read_cxr_image"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CxrSample:
    """One radiograph: a file path or a uint8 array, its anomaly target (0/1), id and source class name."""

    source: Path | np.ndarray
    target: int
    image_id: str
    cls: str


def read_cxr_image(source: Path | np.ndarray) -> np.ndarray:
    """uint8 grayscale ``(H, W)`` from a path (any PIL format) or an array."""
    if isinstance(source, np.ndarray):
        return to_grayscale(source)
    with Image.open(source) as im:
        return to_grayscale(im.convert("L"))


class CxrImageDataset(Dataset[dict[str, Any]]):
    """Items ``{"image": (3, S, S) float32, "target": (1,) float32, "image_id": str, "cls": str}``.

    Args:
        samples: the radiographs, in order.
        preprocess: the card's preprocessing.
        pixel_transform: optional uint8 ``(H, W)`` → uint8 ``(H, W)`` step before preprocessing
            (e.g. :class:`~vitalens.data.cxr_transforms.SyntheticOpacity`).
        augment: optional :class:`CxrAugment` on the uint8 square.
    """

    def __init__(
        self,
        samples: Sequence[CxrSample],
        preprocess: CxrPreprocess,
        *,
        pixel_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        augment: CxrAugment | None = None,
    ) -> None:
        self.samples = list(samples)
        self.preprocess = preprocess
        self.pixel_transform = pixel_transform
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> np.ndarray:
        """``(N, 1)`` int anomaly targets."""
        return np.asarray([[s.target] for s in self.samples], dtype=int).reshape(-1, 1)

    @property
    def classes(self) -> np.ndarray:
        return np.asarray([s.cls for s in self.samples])

    @property
    def image_ids(self) -> np.ndarray:
        return np.asarray([s.image_id for s in self.samples])

    def subset(self, mask: np.ndarray) -> CxrImageDataset:
        """The samples where ``mask`` is true, same transforms."""
        keep = [s for s, m in zip(self.samples, np.asarray(mask, dtype=bool), strict=True) if m]
        return CxrImageDataset(keep, self.preprocess, pixel_transform=self.pixel_transform, augment=self.augment)

    def with_transforms(
        self,
        *,
        pixel_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        augment: CxrAugment | None = None,
    ) -> CxrImageDataset:
        """The same samples with other random steps."""
        return CxrImageDataset(self.samples, self.preprocess, pixel_transform=pixel_transform, augment=augment)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        gray = read_cxr_image(sample.source)
        if self.pixel_transform is not None:
            gray = self.pixel_transform(gray)
        square = self.preprocess.square(gray)
        if self.augment is not None:
            chw = self.augment(torch.from_numpy(np.array(square)).permute(2, 0, 1))  # a writable copy
            image = self.preprocess.normalize(chw.contiguous())
        else:
            image = self.preprocess.normalize(square)
        return {
            "image": image,
            "target": torch.tensor([float(sample.target)]),
            "image_id": sample.image_id,
            "cls": sample.cls,
        }
