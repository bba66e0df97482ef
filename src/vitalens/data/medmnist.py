"""MedMNIST v2 ``.npz`` adapter: RetinaMNIST, OCTMNIST and PneumoniaMNIST at 28, 64, 128 or 224 px, official splits.

Why an adapter of its own: MedMNIST ships each dataset as one NumPy archive with ``{train,val,test}_images`` and
``{train,val,test}_labels``; its published tables (Yang et al., Sci. Data 10:41, 2023) are computed on those exact
splits, so a comparable figure must use them. The flag (``retinamnist``…) and size come from the file name
(``retinamnist_128.npz``; no suffix is 28 px) and are checked against the arrays. MedMNIST publishes no patient ids
(its splits are patient-level by construction where the source data allowed), so each image is its own patient.

Labels follow MedMNIST's ``INFO`` (``medmnist/info.py``): RetinaMNIST the DeepDRiD DR grades 0–4, OCTMNIST the
Kermany classes in Kermany's order, PneumoniaMNIST normal / pneumonia.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.data._image_source import OFFICIAL_SPLITS, ImageClassSource, ImageSample, WriteItem
from vitalens.errors import InputError

__all__ = ["MedMnistDataset", "MEDMNIST_FLAGS", "MedMnistFlag", "MEDMNIST_SIZES", "medmnist_file_name"]

logger = logging.getLogger(__name__)

MEDMNIST_SIZES: tuple[int, ...] = (28, 64, 128, 224)


@dataclass(frozen=True)
class MedMnistFlag:
    """One MedMNIST 2D dataset: its labels, modality and channel count."""

    flag: str
    title: str
    modality: str
    labels: tuple[str, ...]
    label_names: dict[str, str]
    channels: int


MEDMNIST_FLAGS: dict[str, MedMnistFlag] = {
    "retinamnist": MedMnistFlag(
        "retinamnist",
        "RetinaMNIST",
        "fundus",
        ("0", "1", "2", "3", "4"),
        {
            "0": "No DR",
            "1": "Mild non-proliferative DR",
            "2": "Moderate non-proliferative DR",
            "3": "Severe non-proliferative DR",
            "4": "Proliferative DR",
        },
        3,
    ),
    "octmnist": MedMnistFlag(
        "octmnist",
        "OCTMNIST",
        "oct",
        ("CNV", "DME", "DRUSEN", "NORMAL"),
        {
            "CNV": "Choroidal neovascularisation",
            "DME": "Diabetic macular oedema",
            "DRUSEN": "Drusen (early AMD)",
            "NORMAL": "Normal retina",
        },
        1,
    ),
    "pneumoniamnist": MedMnistFlag(
        "pneumoniamnist",
        "PneumoniaMNIST",
        "cxr",
        ("normal", "pneumonia"),
        {"normal": "Normal chest X-ray", "pneumonia": "Pneumonia"},
        1,
    ),
}

_FILE = re.compile(r"^(?P<flag>[a-z0-9]+?)(?:_(?P<size>\d+))?\.npz$")


def medmnist_file_name(flag: str, size: int = 28) -> str:
    """The official file name: ``retinamnist.npz`` at 28 px, ``retinamnist_128.npz`` otherwise."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _find_npz(root: Path, flag: str | None, size: int | None) -> Path:
    if root.is_file():
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"MedMNIST path {root} does not exist")
    candidates = []
    for path in sorted(root.glob("*.npz")):
        m = _FILE.match(path.name)
        if m and m["flag"] in MEDMNIST_FLAGS:
            f, s = m["flag"], int(m["size"] or 28)
            if (flag is None or f == flag) and (size is None or s == size):
                candidates.append(path)
    if len(candidates) == 1:
        return candidates[0]
    what = f"flag {flag or 'any'}, size {size or 'any'}"
    if not candidates:
        raise FileNotFoundError(
            f"no MedMNIST .npz ({what}) in {root}; expected e.g. {medmnist_file_name('retinamnist')}"
        )
    names = ", ".join(p.name for p in candidates)
    raise InputError(f"several MedMNIST files match ({what}) in {root}: {names}; name one", field="data")


class MedMnistDataset(ImageClassSource):
    """One MedMNIST ``.npz`` file read into memory, with its official splits.

    Args:
        root: the ``.npz`` file, or a folder holding exactly one matching file.
        flag: ``retinamnist``, ``octmnist`` or ``pneumoniamnist`` (default: from the file name).
        size: 28, 64, 128 or 224 (default: from the file name, checked against the arrays).

    Raises:
        FileNotFoundError: no matching file.
        InputError: unknown flag, missing keys, or arrays that disagree with the name, labels out of range.
    """

    name = "MedMNIST v2"
    has_patient_ids = False

    def __init__(self, root: Path, *, flag: str | None = None, size: int | None = None) -> None:
        path = _find_npz(Path(root), flag, size)
        super().__init__(path)
        m = _FILE.match(path.name)
        name_flag = m["flag"] if m else None
        flag = flag or name_flag
        if flag not in MEDMNIST_FLAGS:
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("MedMNIST flag", str(flag), MEDMNIST_FLAGS)
        self.flag = MEDMNIST_FLAGS[flag]
        self.name = f"{self.flag.title} (MedMNIST v2)"
        self.modality = self.flag.modality
        self.labels = self.flag.labels
        self.label_names = self.flag.label_names
        with np.load(path) as archive:
            missing = [f"{s}_{k}" for s in OFFICIAL_SPLITS for k in ("images", "labels") if f"{s}_{k}" not in archive]
            if missing:
                raise InputError(f"{path.name} lacks arrays {missing}", field="data")
            self._images = {s: np.asarray(archive[f"{s}_images"]) for s in OFFICIAL_SPLITS}
            labels = {s: np.asarray(archive[f"{s}_labels"]).reshape(-1) for s in OFFICIAL_SPLITS}
        sides = {int(a.shape[1]) for a in self._images.values() if a.size}
        self.size = sides.pop() if len(sides) == 1 else 0
        expected = size or (int(m["size"] or 28) if m else None)
        if self.size not in MEDMNIST_SIZES or (expected is not None and self.size != expected):
            raise InputError(
                f"{path.name}: images are {self.size} px, expected {expected or MEDMNIST_SIZES}", field="data"
            )
        for split in OFFICIAL_SPLITS:
            y = labels[split]
            if y.size != len(self._images[split]):
                raise InputError(f"{path.name}: {split} has {len(self._images[split])} images, {y.size} labels")
            if y.size and (y.min() < 0 or y.max() >= len(self.labels)):
                raise InputError(f"{path.name}: {split} labels outside 0–{len(self.labels) - 1}", field="data")
            for i, label in enumerate(y.astype(int)):
                sid = f"{split}-{i}"
                self.samples.append(ImageSample(sample_id=sid, patient_id=sid, label=int(label), split=split, index=i))
        logger.info(
            "MedMNIST %s %d px: %s", self.flag.flag, self.size, {s: len(self._images[s]) for s in OFFICIAL_SPLITS}
        )

    def image(self, i: int, mode: str = "RGB") -> np.ndarray:
        sample = self.samples[i]
        array = self._images[str(sample.split)][int(sample.index or 0)]
        if mode == "L":
            return array if array.ndim == 2 else _grey(array)
        if mode == "RGB":
            return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array
        raise InputError(f"mode {mode!r} not supported; use RGB or L", field="mode")

    @classmethod
    def detect(cls, root: Path) -> bool:
        root = Path(root)
        if root.is_file():
            return root.suffix == ".npz"
        return root.is_dir() and any(
            (m := _FILE.match(p.name)) is not None and m["flag"] in MEDMNIST_FLAGS for p in root.glob("*.npz")
        )

    @classmethod
    def write(cls, root: Path, items: Iterable[WriteItem], *, flag: str = "retinamnist", **kwargs: Any) -> Path:
        """Write ``<root>/<flag>[_<size>].npz`` with the six official arrays (all images must share one size)."""
        if flag not in MEDMNIST_FLAGS:
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("MedMNIST flag", flag, MEDMNIST_FLAGS)
        info = MEDMNIST_FLAGS[flag]
        items = list(items)
        from vitalens.data._image_source import check_labels

        check_labels(items, info.labels, info.title)
        sides = {it.image.shape[0] for it in items} | {it.image.shape[1] for it in items}
        if len(sides) != 1 or next(iter(sides)) not in MEDMNIST_SIZES:
            raise InputError(f"MedMNIST images must be square at one of {MEDMNIST_SIZES} px, got {sorted(sides)}")
        size = sides.pop()
        arrays: dict[str, np.ndarray] = {}
        for split in OFFICIAL_SPLITS:
            chosen = [it for it in items if it.split == split]
            shape = (size, size) if info.channels == 1 else (size, size, 3)
            imgs = [(_grey(it.image) if info.channels == 1 and it.image.ndim == 3 else it.image) for it in chosen]
            arrays[f"{split}_images"] = np.stack(imgs).astype(np.uint8) if imgs else np.zeros((0, *shape), np.uint8)
            arrays[f"{split}_labels"] = np.asarray(
                [[info.labels.index(it.label)] for it in chosen], dtype=np.uint8
            ).reshape(-1, 1)
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        path = root / medmnist_file_name(flag, size)
        np.savez_compressed(path, **arrays)
        return path


def _grey(rgb: np.ndarray) -> np.ndarray:
    lum = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(lum), 0, 255).astype(np.uint8)
