"""COVID-19 Radiography Database adapter: ``<Class>/images/*.png`` read into records with an anomaly label.

Why an adapter of its own: the database (Chowdhury et al. 2020; Rahman et al. 2021; Kaggle
``tawsifurrahman/covid19-radiography-database``) is published as one folder per class — ``COVID``,
``Lung_Opacity``, ``Normal``, ``Viral Pneumonia`` — each with ``images/`` (and ``masks/``, unused here) holding
``<Class>-<n>.png``. The Kaggle download nests them under ``COVID-19_Radiography_Dataset/``, and the first
releases had no ``images/`` level (``<Class>/*.png``); all three are read into the same :class:`CxrRecord`.

The anomaly task reads **Normal as 0 and every other class as 1**; the class name travels with each record so
benches report COVID and viral pneumonia apart.

The database publishes no patient identifiers, so every image is its own unit: splits are image-level, and
two radiographs of one patient may fall into different splits (a limitation every card of a model trained on it
states).

The writer :func:`write_covid_radiography` produces exactly this layout (grayscale PNG, the originals' mode); the
synthetic twin and tests use it.

Example:
    >>> ds = CovidRadiographyDataset(Path("COVID-19_Radiography_Dataset"))    # doctest: +SKIP
    >>> ds.anomaly.mean(), ds.class_counts()                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = [
    "CXR_CLASSES",
    "CXR_NORMAL",
    "COVID_RADIOGRAPHY_DIRNAME",
    "CxrRecord",
    "CovidRadiographyDataset",
    "find_covid_radiography_root",
    "is_covid_radiography_root",
    "write_covid_radiography",
]

logger = logging.getLogger(__name__)

#: The database's four classes (folder names, spelled as published); Normal first, as the anomaly task reads it.
CXR_CLASSES: tuple[str, ...] = ("Normal", "COVID", "Lung_Opacity", "Viral Pneumonia")
CXR_NORMAL = "Normal"
#: The top folder of the Kaggle download.
COVID_RADIOGRAPHY_DIRNAME = "COVID-19_Radiography_Dataset"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NUMBER = re.compile(r"(\d+)\D*$")


@dataclass(frozen=True)
class CxrRecord:
    """One radiograph: its id (file stem, unique over the database), path, class and anomaly label."""

    image_id: str
    path: Path
    cls: str

    @property
    def anomaly(self) -> int:
        """1 for every class but Normal."""
        return int(self.cls != CXR_NORMAL)


def _class_dirs(root: Path) -> dict[str, Path]:
    return {c: root / c for c in CXR_CLASSES if (root / c).is_dir()}


def is_covid_radiography_root(root: Path) -> bool:
    """True when ``root`` (or its ``COVID-19_Radiography_Dataset/``) holds a Normal folder and one more class."""
    try:
        find_covid_radiography_root(root)
    except InputError:
        return False
    return True


def find_covid_radiography_root(root: Path) -> Path:
    """The folder holding the class folders: ``root`` itself or its ``COVID-19_Radiography_Dataset/``.

    Raises:
        InputError: neither holds a ``Normal`` folder plus at least one anomaly class.
    """
    root = Path(root)
    for candidate in (root, root / COVID_RADIOGRAPHY_DIRNAME):
        dirs = _class_dirs(candidate)
        if CXR_NORMAL in dirs and len(dirs) >= 2:
            return candidate
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise InputError(
        f"{root} is not a COVID-19 Radiography Database folder: expected class folders "
        f"{', '.join(CXR_CLASSES)} (Normal and at least one other), each with images/*.png; found {found or 'nothing'}",
        field="data",
    )


def _image_files(class_dir: Path) -> list[Path]:
    folder = class_dir / "images" if (class_dir / "images").is_dir() else class_dir
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def _natural_key(path: Path) -> tuple[str, int]:
    """``Normal-9`` before ``Normal-10`` (the database numbers files without zero padding)."""
    match = _NUMBER.search(path.stem)
    if match is None:
        return (path.stem, -1)
    return (path.stem[: match.start(1)], int(match.group(1)))


class CovidRadiographyDataset(Sequence[CxrRecord]):
    """The database's radiographs in a fixed order (class order of :data:`CXR_CLASSES`, then file number).

    Args:
        root: the dataset folder (or the folder holding ``COVID-19_Radiography_Dataset/``).
        classes: the classes to read (default every one present); a class asked for but absent is an error.

    Attributes:
        root: the resolved folder holding the class folders.
        records: one :class:`CxrRecord` per image.
        classes: the classes read, in :data:`CXR_CLASSES` order.
    """

    def __init__(self, root: Path, classes: Sequence[str] | None = None) -> None:
        self.root = find_covid_radiography_root(Path(root))
        present = _class_dirs(self.root)
        wanted = list(present) if classes is None else list(classes)
        for cls in wanted:
            if cls not in CXR_CLASSES:
                raise unknown_name_error("COVID-19 Radiography class", cls, CXR_CLASSES)
            if cls not in present:
                raise InputError(f"class folder '{cls}' is missing from {self.root}", field="data")
        self.classes = [c for c in CXR_CLASSES if c in wanted]
        records: list[CxrRecord] = []
        for cls in self.classes:
            files = _image_files(present[cls])
            if not files:
                logger.warning("class folder %s holds no images", present[cls])
            records.extend(CxrRecord(image_id=f.stem, path=f, cls=cls) for f in files)
        ids = Counter(r.image_id for r in records)
        dupes = [i for i, n in ids.items() if n > 1]
        if dupes:
            raise InputError(f"image ids occur in more than one class folder: {dupes[:5]}", field="data")
        if not records:
            raise InputError(f"no images under {self.root}", field="data")
        self.records = records
        logger.info("COVID-19 Radiography %s: %s", self.root, dict(self.class_counts()))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> CxrRecord:  # type: ignore[override]
        return self.records[index]

    def __iter__(self) -> Iterator[CxrRecord]:
        return iter(self.records)

    @property
    def anomaly(self) -> np.ndarray:
        """``(N,)`` int: 0 Normal, 1 any other class."""
        return np.asarray([r.anomaly for r in self.records], dtype=int)

    @property
    def image_ids(self) -> np.ndarray:
        return np.asarray([r.image_id for r in self.records])

    @property
    def class_names(self) -> np.ndarray:
        return np.asarray([r.cls for r in self.records])

    def class_counts(self) -> Counter[str]:
        return Counter(r.cls for r in self.records)


def write_covid_radiography(
    root: Path, images: Iterable[tuple[str, np.ndarray]], *, start: int = 1, nested: bool = False
) -> Path:
    """Write radiographs in the database's layout: ``<root>/<Class>/images/<Class>-<n>.png`` (grayscale PNG).

    Args:
        root: output folder (created).
        images: ``(class, image)`` pairs; ``image`` uint8 ``(H, W)`` or ``(H, W, 3)`` (saved as luminance).
        start: number of the first image of each class.
        nested: write under ``root/COVID-19_Radiography_Dataset/`` as the Kaggle download does.

    Returns:
        The folder holding the class folders.

    Raises:
        UnknownNameError: a class that is not one of :data:`CXR_CLASSES`.
        InputError: an image that is not uint8 2-D or RGB.
    """
    from PIL import Image

    base = Path(root) / COVID_RADIOGRAPHY_DIRNAME if nested else Path(root)
    counters: dict[str, int] = {}
    for cls, image in images:
        if cls not in CXR_CLASSES:
            raise unknown_name_error("COVID-19 Radiography class", cls, CXR_CLASSES)
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
            raise InputError(f"image of class {cls} is {array.dtype} {array.shape}; expected uint8 (H, W[, 3])")
        folder = base / cls / "images"
        folder.mkdir(parents=True, exist_ok=True)
        n = counters.get(cls, start)
        counters[cls] = n + 1
        pil = Image.fromarray(array).convert("L")
        pil.save(folder / f"{cls}-{n}.png", format="PNG")
    return base
