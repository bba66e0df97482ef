"""PneumoniaMNIST (MedMNIST v2) reader: the official ``pneumoniamnist[_SIZE].npz`` into its published splits.

Why a small reader here: the chest X-ray anomaly task needs only this one MedMNIST file (normal 0, pneumonia 1;
Yang et al. 2023, from the Kermany et al. 2018 paediatric radiographs). A general MedMNIST adapter is being
written for the retina tasks; when it lands this reader should become a thin call into it.

The file holds ``{train,val,test}_images`` — uint8 ``(N, S, S)`` with ``S`` 28 (or 64/128/224 for the larger
releases) — and ``{train,val,test}_labels`` ``(N, 1)``. The official split is kept as published. MedMNIST
publishes no patient ids, so units are images.

The writer :func:`write_pneumoniamnist` writes the same keys (the synthetic twin and tests use it).

Example:
    >>> pm = PneumoniaMnist(Path("pneumoniamnist.npz"))     # doctest: +SKIP
    >>> pm.split("test").images.shape, pm.split("test").labels.mean()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = [
    "PNEUMONIAMNIST_FILE",
    "PNEUMONIAMNIST_LABELS",
    "MEDMNIST_SPLITS",
    "PneumoniaMnistSplit",
    "PneumoniaMnist",
    "find_pneumoniamnist_file",
    "write_pneumoniamnist",
]

logger = logging.getLogger(__name__)

PNEUMONIAMNIST_FILE = "pneumoniamnist.npz"
#: Label index → name, as MedMNIST's INFO for pneumoniamnist.
PNEUMONIAMNIST_LABELS: dict[int, str] = {0: "normal", 1: "pneumonia"}
MEDMNIST_SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class PneumoniaMnistSplit:
    """One published split: ``images`` uint8 ``(N, S, S)``, ``labels`` int ``(N,)`` (0 normal, 1 pneumonia)."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_ids(self) -> np.ndarray:
        """``<split>-<index>``: the index inside the published split (MedMNIST has no other id)."""
        return np.asarray([f"{self.name}-{i}" for i in range(len(self))])


def find_pneumoniamnist_file(path: Path) -> Path:
    """``path`` itself when it is a ``.npz``, else ``pneumoniamnist*.npz`` inside the folder ``path``.

    Raises:
        InputError: no such file.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return path
    if path.is_dir():
        exact = path / PNEUMONIAMNIST_FILE
        if exact.is_file():
            return exact
        found = sorted(path.glob("pneumoniamnist*.npz"))
        if found:
            return found[0]
    raise InputError(f"no PneumoniaMNIST file at {path} (expected {PNEUMONIAMNIST_FILE})", field="data")


class PneumoniaMnist:
    """The three published splits of one PneumoniaMNIST file.

    Raises:
        InputError: not a valid ``.npz``, a missing key, mismatched lengths, labels other than 0/1, images that
            are not uint8 square.
    """

    def __init__(self, path: Path) -> None:
        self.path = find_pneumoniamnist_file(path)
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(f"{self.path} is not a readable .npz file: {exc}", field="data") from exc
        self._splits: dict[str, PneumoniaMnistSplit] = {}
        for split in MEDMNIST_SPLITS:
            for key in (f"{split}_images", f"{split}_labels"):
                if key not in data:
                    raise InputError(f"{self.path} has no '{key}' (keys: {sorted(data)})", field="data")
            images = data[f"{split}_images"]
            labels = np.asarray(data[f"{split}_labels"]).reshape(-1).astype(int)
            if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
                raise InputError(
                    f"{self.path} {split}_images is {images.dtype} {images.shape}; expected uint8 (N, S, S)",
                    field="data",
                )
            if images.shape[0] != labels.shape[0]:
                raise InputError(
                    f"{self.path}: {images.shape[0]} {split} images but {labels.shape[0]} labels", field="data"
                )
            if labels.size and not set(np.unique(labels)) <= set(PNEUMONIAMNIST_LABELS):
                raise InputError(f"{self.path} {split}_labels hold {sorted(set(labels))}; expected 0/1", field="data")
            self._splits[split] = PneumoniaMnistSplit(split, images, labels)
        logger.info(
            "PneumoniaMNIST %s: %s",
            self.path.name,
            {s: (len(v), int(v.labels.sum())) for s, v in self._splits.items()},
        )

    @property
    def image_size(self) -> int:
        return int(self._splits["train"].images.shape[1])

    def split(self, name: str) -> PneumoniaMnistSplit:
        if name not in self._splits:
            raise unknown_name_error("split", name, MEDMNIST_SPLITS)
        return self._splits[name]


def write_pneumoniamnist(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write ``{split: (images (N, S, S) uint8, labels (N,))}`` with MedMNIST's keys (labels as ``(N, 1)`` uint8).

    Raises:
        InputError: a split missing, or images/labels that do not fit.
    """
    arrays: dict[str, np.ndarray] = {}
    for split in MEDMNIST_SPLITS:
        if split not in splits:
            raise InputError(f"write_pneumoniamnist needs the splits {MEDMNIST_SPLITS}; '{split}' is missing")
        images, labels = np.asarray(splits[split][0]), np.asarray(splits[split][1]).reshape(-1)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[0] != labels.shape[0]:
            raise InputError(f"{split}: images {images.dtype} {images.shape} and {labels.shape[0]} labels do not fit")
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.astype(np.uint8).reshape(-1, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path
