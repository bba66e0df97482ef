"""DRIVE adapter and writer: retinal vessel segmentation in the dataset's published layout.

DRIVE (Staal et al., 2004, IEEE TMI 23:501) holds 40 colour fundus photographs (565 × 584 px, 45° FOV) from a
Dutch diabetic-retinopathy screening programme, split by its authors into ``training/`` (20 images, one manual
segmentation each) and ``test/`` (20 images, a first and a second observer's segmentation), each with a mask of
the camera's field of view::

    DRIVE/
      training/images/21_training.tif     training/1st_manual/21_manual1.gif   training/mask/21_training_mask.gif
      test/images/01_test.tif             test/1st_manual/01_manual1.gif       test/2nd_manual/01_manual2.gif
                                                                               test/mask/01_test_mask.gif

Why an adapter and a writer: the training task, the bench and the synthetic twin all need the same reading of
this layout (the second observer's masks are palette GIFs with values 0/1, the first observer's 0/255 greyscale),
and the twin must be written in exactly the layout the adapter reads, so both live here. Every image is its own
patient (DRIVE gives no patient ids), so "patient-level" splits are image-level.

Example:
    >>> ds = DriveDataset(Path("DRIVE"), split="test")      # doctest: +SKIP
    >>> rec = ds[0]; rec.image_id, rec.has_second_observer   # doctest: +SKIP
    ('01', True)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = ["DRIVE_SPLITS", "DriveRecord", "DriveDataset", "read_binary_mask", "write_drive_record"]

logger = logging.getLogger(__name__)

DriveSplit = Literal["training", "test"]

#: The two splits DRIVE ships, in its own folder names.
DRIVE_SPLITS: tuple[str, ...] = ("training", "test")


def read_binary_mask(path: Path) -> np.ndarray:
    """A DRIVE mask (vessel or FOV) as a bool ``(H, W)`` array.

    The first observer's GIFs are greyscale 0/255; the second observer's are palette images whose indices are 0/1;
    converting through the palette to luminance and thresholding at half reads both the same way.
    """
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


@dataclass(frozen=True)
class DriveRecord:
    """One DRIVE image and the paths of its annotations (``manual2`` only in the test split)."""

    image_id: str
    split: str
    image_path: Path
    manual1_path: Path
    mask_path: Path
    manual2_path: Path | None = None

    @property
    def has_second_observer(self) -> bool:
        return self.manual2_path is not None

    def image(self) -> np.ndarray:
        """The photograph, uint8 RGB ``(584, 565, 3)`` in the original data."""
        with Image.open(self.image_path) as im:
            return np.asarray(im.convert("RGB"))

    def vessels(self, observer: int = 1) -> np.ndarray:
        """The manual vessel segmentation of ``observer`` (1 or 2), bool ``(H, W)``."""
        if observer == 1:
            return read_binary_mask(self.manual1_path)
        if observer == 2:
            if self.manual2_path is None:
                raise InputError(f"DRIVE {self.split} image {self.image_id} has no second observer", field="observer")
            return read_binary_mask(self.manual2_path)
        raise InputError(f"observer must be 1 or 2, got {observer}", field="observer")

    def fov(self) -> np.ndarray:
        """The field-of-view mask shipped with the image, bool ``(H, W)``."""
        return read_binary_mask(self.mask_path)


def _paths(root: Path, split: str, image_id: str) -> dict[str, Path]:
    base = root / split
    return {
        "image_path": base / "images" / f"{image_id}_{split}.tif",
        "manual1_path": base / "1st_manual" / f"{image_id}_manual1.gif",
        "mask_path": base / "mask" / f"{image_id}_{split}_mask.gif",
        "manual2_path": base / "2nd_manual" / f"{image_id}_manual2.gif",
    }


class DriveDataset:
    """The records of one DRIVE split, sorted by image id.

    Args:
        root: the ``DRIVE`` folder (holding ``training/`` and/or ``test/``).
        split: ``training`` or ``test``.

    Raises:
        FileNotFoundError: the split folder or its ``images/`` folder is missing.
        InputError: an image lacks its first-observer segmentation or its FOV mask.
    """

    def __init__(self, root: Path, split: str = "training") -> None:
        if split not in DRIVE_SPLITS:
            raise unknown_name_error("DRIVE split", split, DRIVE_SPLITS)
        self.root = Path(root)
        self.split = split
        images = self.root / split / "images"
        if not images.is_dir():
            raise FileNotFoundError(f"no DRIVE {split}/images folder under {self.root}")
        suffix = f"_{split}.tif"
        ids = sorted(p.name[: -len(suffix)] for p in images.glob(f"*{suffix}"))
        if not ids:
            raise FileNotFoundError(f"no *{suffix} image in {images}")
        records = []
        for image_id in ids:
            paths = _paths(self.root, split, image_id)
            for key in ("manual1_path", "mask_path"):
                if not paths[key].is_file():
                    raise InputError(f"DRIVE {split} image {image_id} lacks {paths[key].name}", field="data")
            manual2 = paths.pop("manual2_path")
            records.append(
                DriveRecord(
                    image_id=image_id, split=split, manual2_path=manual2 if manual2.is_file() else None, **paths
                )
            )
        self.records: list[DriveRecord] = records
        logger.debug("DRIVE %s: %d images in %s", split, len(records), self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> DriveRecord:
        return self.records[index]

    def __iter__(self) -> Iterator[DriveRecord]:
        return iter(self.records)

    @property
    def image_ids(self) -> np.ndarray:
        return np.asarray([r.image_id for r in self.records])


def _gif(mask: np.ndarray, path: Path) -> None:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"mask shape is {array.shape}, expected (H, W)", field="mask")
    Image.fromarray(np.where(array > 0, 255, 0).astype(np.uint8), mode="L").save(path)


def write_drive_record(
    root: Path,
    split: str,
    image_id: str,
    *,
    image: np.ndarray,
    vessels: np.ndarray,
    fov: np.ndarray,
    vessels_second: np.ndarray | None = None,
) -> DriveRecord:
    """Write one image and its masks in the DRIVE layout under ``root`` and return its record.

    Args:
        root: the ``DRIVE`` folder (created as needed).
        split: ``training`` or ``test``.
        image_id: DRIVE's two-digit id (``"01"``–``"40"`` in the real data).
        image: uint8 RGB ``(H, W, 3)``, saved as ``<id>_<split>.tif``.
        vessels: first observer's vessel mask ``(H, W)`` (non-zero = vessel), saved as a 0/255 GIF.
        fov: field-of-view mask ``(H, W)``.
        vessels_second: second observer's mask (test split only in the real data).

    Raises:
        InputError: an unknown split, a non-RGB image, or masks whose shape differs from the image.
    """
    if split not in DRIVE_SPLITS:
        raise unknown_name_error("DRIVE split", split, DRIVE_SPLITS)
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(f"image is {pixels.shape} {pixels.dtype}, expected uint8 (H, W, 3)", field="image")
    for name, mask in (("vessels", vessels), ("fov", fov), ("vessels_second", vessels_second)):
        if mask is not None and np.asarray(mask).shape != pixels.shape[:2]:
            raise InputError(f"{name} mask is {np.asarray(mask).shape}, image is {pixels.shape[:2]}", field=name)
    paths = _paths(Path(root), split, image_id)
    for key, path in paths.items():
        if key != "manual2_path" or vessels_second is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(paths["image_path"])
    _gif(vessels, paths["manual1_path"])
    _gif(fov, paths["mask_path"])
    manual2 = None
    if vessels_second is not None:
        _gif(vessels_second, paths["manual2_path"])
        manual2 = paths["manual2_path"]
    paths.pop("manual2_path")
    return DriveRecord(image_id=image_id, split=split, manual2_path=manual2, **paths)
