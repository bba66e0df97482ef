"""The shared shape of every single-image classification dataset adapter (APTOS, Kermany OCT, OCT-C8, MedMNIST).

Why one base: the DR, OCT and MedMNIST adapters differ only in how their published layout names classes, patients
and splits; what the training tasks, benches and galleries need from them — samples with a class index, a patient id
(so splits are patient-level), the dataset's own split where it publishes one, and the decoded image — is the same.
Each adapter also *writes* its own layout (:meth:`ImageClassSource.write`), so a synthetic twin or a feedback export
produces folders the reader reads unchanged.

Torch-free: decoding uses PIL and numpy only.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vitalens.errors import InputError

__all__ = [
    "ImageSample",
    "ImageClassSource",
    "WriteItem",
    "IMAGE_SUFFIXES",
    "decode_image",
    "file_md5",
    "encode_image",
    "check_labels",
    "class_dirs",
    "class_folder_collections",
    "OFFICIAL_SPLITS",
]

logger = logging.getLogger(__name__)

#: File suffixes the folder-layout adapters read (lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

OFFICIAL_SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ImageSample:
    """One image of a classification dataset.

    Attributes:
        sample_id: unique within the dataset (file stem, or ``<split>-<index>`` for array datasets).
        patient_id: the patient the image belongs to (the image itself where the dataset names no patient).
        label: class index into the adapter's ``labels``.
        split: the dataset's own split (``train``/``val``/``test``) where its layout publishes one, else None.
        path: the image file; None for array datasets (MedMNIST), which decode from memory.
        index: position in the array of its split (array datasets only).
    """

    sample_id: str
    patient_id: str
    label: int
    split: str | None = None
    path: Path | None = None
    index: int | None = None


@dataclass(frozen=True)
class WriteItem:
    """One image to write in a dataset's layout (what synthetic twins and feedback exports hand the writers).

    Attributes:
        image: uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB.
        label: class code (``CNV``) or grade text (``2``) in the adapter's ``labels``.
        patient_id: the patient; folder layouts that encode it in the name use it there.
        split: ``train``, ``val`` or ``test`` (layouts without splits ignore it).
        name: a file stem; the writer derives one when None.
    """

    image: np.ndarray
    label: str
    patient_id: str = ""
    split: str = "train"
    name: str | None = None


def decode_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to a uint8 array in PIL ``mode`` (``RGB`` → ``(H, W, 3)``, ``L`` → ``(H, W)``).

    Raises:
        InputError: the file cannot be decoded (names the file).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot decode image {path}: {exc}", field="image") from exc


def encode_image(image: np.ndarray, path: Path, *, quality: int = 92) -> Path:
    """Write a uint8 grey or RGB array to ``path`` (format from the suffix; JPEG at ``quality``)."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InputError(f"image is {array.shape} {array.dtype}, expected uint8 (H, W) or (H, W, 3)", field="image")
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(array).save(path, **kwargs)
    return path


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes (duplicate detection, as the datasets' own manifests use it)."""
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()


class ImageClassSource(ABC):
    """Base of the single-image classification adapters.

    Subclasses set :attr:`name`, :attr:`labels`, :attr:`label_names`, :attr:`modality`, fill ``self.samples`` in
    ``__init__`` and implement :meth:`detect` and :meth:`write`.

    Attributes:
        samples: the dataset's images in a fixed, reproducible order.
        root: what was read (a folder, or the ``.npz`` file).
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    labels: tuple[str, ...] = ()
    label_names: dict[str, str] = {}
    #: Whether the layout names patients (Kermany) or each image stands for its own patient (APTOS, OCT-C8).
    has_patient_ids: ClassVar[bool] = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.samples: list[ImageSample] = []

    # -- reading ----------------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def detect(cls, root: Path) -> bool:
        """True when ``root`` looks like this dataset's published layout (cheap: names only, no decoding)."""

    def image(self, i: int, mode: str = "RGB") -> np.ndarray:
        """Decode sample ``i`` to uint8 (``RGB`` ``(H, W, 3)`` or ``L`` ``(H, W)``)."""
        sample = self.samples[i]
        if sample.path is None:
            raise NotImplementedError(f"{type(self).__name__} keeps no files; override image()")
        return decode_image(sample.path, mode)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> ImageSample:
        return self.samples[i]

    def __iter__(self) -> Iterator[ImageSample]:
        return iter(self.samples)

    @property
    def targets(self) -> np.ndarray:
        """``(N,)`` int64 class indices."""
        return np.asarray([s.label for s in self.samples], dtype=np.int64)

    @property
    def patient_ids(self) -> np.ndarray:
        """``(N,)`` patient ids as text."""
        return np.asarray([s.patient_id for s in self.samples], dtype=object).astype(str)

    @property
    def sample_ids(self) -> np.ndarray:
        return np.asarray([s.sample_id for s in self.samples], dtype=object).astype(str)

    @property
    def official_splits(self) -> np.ndarray:
        """``(N,)`` the layout's own split per sample (``""`` where it publishes none)."""
        return np.asarray([s.split or "" for s in self.samples], dtype=object).astype(str)

    @property
    def has_official_splits(self) -> bool:
        return bool(self.samples) and all(s.split for s in self.samples)

    def class_counts(self) -> dict[str, int]:
        """Samples per class, in label order."""
        counts = np.bincount(self.targets, minlength=len(self.labels)) if self.samples else np.zeros(len(self.labels))
        return {lab: int(c) for lab, c in zip(self.labels, counts, strict=True)}

    def one_hot(self) -> np.ndarray:
        """``(N, K)`` float32 one-hot targets (the training engine's target format for every problem)."""
        eye = np.eye(len(self.labels), dtype=np.float32)
        return eye[self.targets] if self.samples else np.zeros((0, len(self.labels)), np.float32)

    def summary(self) -> dict[str, Any]:
        """Counts a person checks first: samples, patients, per class, per official split."""
        splits = self.official_splits
        return {
            "dataset": self.name,
            "root": str(self.root),
            "n_samples": len(self),
            "n_patients": int(np.unique(self.patient_ids).size) if self.samples else 0,
            "classes": self.class_counts(),
            "official_splits": {s: int((splits == s).sum()) for s in OFFICIAL_SPLITS if (splits == s).any()},
        }

    def label_index(self, label: str | int) -> int:
        """Class index of a code (``CNV``), a grade text (``"2"``) or an index; unknown ones list the valid ones."""
        text = str(label).strip()
        if text in self.labels:
            return self.labels.index(text)
        if text.isdigit() and int(text) < len(self.labels):
            return int(text)
        from vitalens._naming import unknown_name_error

        raise unknown_name_error(f"{self.name} class", text, self.labels)

    # -- writing ----------------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def write(cls, root: Path, items: Iterable[WriteItem], **kwargs: Any) -> Path:
        """Write ``items`` under ``root`` in this dataset's published layout; returns what a reader opens."""


def check_labels(items: Sequence[WriteItem], labels: Sequence[str], dataset: str) -> None:
    """Every item's label is one of ``labels`` (writers refuse to write a layout the reader would reject)."""
    bad = sorted({it.label for it in items if it.label not in labels})
    if bad:
        raise InputError(f"{dataset} labels {bad} are not among {list(labels)}", field="label")
    splits = sorted({it.split for it in items if it.split not in OFFICIAL_SPLITS})
    if splits:
        raise InputError(f"{dataset} splits {splits} are not among {list(OFFICIAL_SPLITS)}", field="split")


def class_dirs(folder: Path, labels: Sequence[str]) -> list[Path]:
    """The class folders (named exactly as a label) present in ``folder``, in label order."""
    return [folder / c for c in labels if (folder / c).is_dir()]


def class_folder_collections(root: Path, labels: Sequence[str]) -> list[tuple[Path, str | None]]:
    """Folders under ``root`` that hold ``<CLASS>/`` folders, each with the split its name gives (None if none).

    ``root/train|val|test/<CLASS>/`` (a published split layout) wins; else ``root/<CLASS>/``; else every
    sub-folder is searched the same way (several copies side by side), in sorted order.
    """
    root = Path(root)
    splits: list[tuple[Path, str | None]] = [(root / s, s) for s in OFFICIAL_SPLITS if class_dirs(root / s, labels)]
    if splits:
        return splits
    if class_dirs(root, labels):
        return [(root, None)]
    nested: list[tuple[Path, str | None]] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in labels):
        nested.extend(class_folder_collections(child, labels))
    return nested
