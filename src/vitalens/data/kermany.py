"""Kermany OCT2017 adapter: ``train|test/<CLASS>/<CLASS>-<patient>-<n>.jpeg`` (CNV, DME, DRUSEN, NORMAL).

Why an adapter of its own: the file name carries the patient id, so splits can (and must) be patient-level — one
patient's B-scans in both train and test inflate every figure. The published archive has ``train/`` and ``test/``
(some copies add ``val/``); copies in circulation also come as bare ``<CLASS>/`` folders or as several such
collections side by side (the shared sample: ``kermany_oct2017_samples/`` and ``kermany_oct2017_more/``), and
all of them are read. Kermany re-uses file names across its splits for *different* images and holds byte-identical
duplicates, so samples are identified by their relative path and exact duplicates are dropped (by MD5, logged).

Reference: Kermany D.S. et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep
Learning", Cell 172(5):1122–1131, 2018; data: Mendeley doi:10.17632/rscbjbr9sj.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.data._image_source import (
    IMAGE_SUFFIXES,
    ImageClassSource,
    ImageSample,
    WriteItem,
    check_labels,
    class_dirs,
    class_folder_collections,
    encode_image,
    file_md5,
)
from vitalens.errors import InputError

__all__ = ["KermanyOctDataset", "KERMANY_LABELS", "KERMANY_LABEL_NAMES", "parse_kermany_name"]

logger = logging.getLogger(__name__)

KERMANY_LABELS: tuple[str, ...] = ("CNV", "DME", "DRUSEN", "NORMAL")
KERMANY_LABEL_NAMES: dict[str, str] = {
    "CNV": "Choroidal neovascularisation",
    "DME": "Diabetic macular oedema",
    "DRUSEN": "Drusen (early AMD)",
    "NORMAL": "Normal retina",
}

_NAME = re.compile(r"^(?P<cls>[A-Z]+)-(?P<patient>\d+)-(?P<n>\d+)$")


def parse_kermany_name(stem: str) -> tuple[str, str, int] | None:
    """``"CNV-103044-5"`` → ``("CNV", "103044", 5)``; None for a name outside the convention."""
    match = _NAME.match(stem)
    if match is None:
        return None
    return match["cls"], match["patient"], int(match["n"])


class KermanyOctDataset(ImageClassSource):
    """Kermany OCT2017 B-scans with class and patient id.

    Args:
        root: the OCT2017 folder (``train/``, ``test/``…), a folder of class folders, or a folder of such folders.
        dedupe: drop byte-identical copies of an image (the first one in sorted path order is kept).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        InputError: no class folder anywhere under ``root``.
    """

    name = "Kermany OCT2017"
    modality = "oct"
    labels = KERMANY_LABELS
    label_names = KERMANY_LABEL_NAMES
    has_patient_ids = True

    def __init__(self, root: Path, *, dedupe: bool = True) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Kermany OCT root {self.root} is not a folder")
        collections = class_folder_collections(self.root, self.labels)
        if not collections:
            raise InputError(
                f"no Kermany layout under {self.root}: expected train|test/<CLASS>/ or <CLASS>/ folders with "
                f"CLASS in {list(self.labels)}",
                field="data",
            )
        seen: dict[str, str] = {}
        dropped = unnamed = 0
        for folder, split in collections:
            for class_dir in class_dirs(folder, self.labels):
                label = self.labels.index(class_dir.name)
                for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                    rel = path.relative_to(self.root).as_posix()
                    if dedupe:
                        digest = file_md5(path)
                        if digest in seen:
                            dropped += 1
                            logger.debug("Kermany: %s duplicates %s; dropped", rel, seen[digest])
                            continue
                        seen[digest] = rel
                    parsed = parse_kermany_name(path.stem)
                    if parsed is None:
                        unnamed += 1
                        patient = f"unnamed:{rel}"
                    else:
                        if parsed[0] != class_dir.name:
                            logger.warning("Kermany: %s is named %s but lies in %s/", rel, parsed[0], class_dir.name)
                        patient = parsed[1]
                    self.samples.append(
                        ImageSample(sample_id=rel, patient_id=patient, label=label, split=split, path=path)
                    )
        if dropped:
            logger.info("Kermany: %d byte-identical duplicate images dropped", dropped)
        if unnamed:
            logger.info("Kermany: %d images outside the CLASS-patient-n naming; each is its own patient", unnamed)
        self._check_patients_single_split()

    def _check_patients_single_split(self) -> None:
        """A patient in two official splits would leak; say so (the published archive has a few)."""
        if not self.has_official_splits:
            return
        ids, splits = self.patient_ids, self.official_splits
        leaking = [p for p in np.unique(ids) if np.unique(splits[ids == p]).size > 1]
        if leaking:
            logger.warning(
                "Kermany: %d patients have B-scans in more than one official split (e.g. %s)", len(leaking), leaking[0]
            )

    @classmethod
    def detect(cls, root: Path) -> bool:
        from vitalens.data.octc8 import OctC8Dataset

        root = Path(root)
        if not root.is_dir() or OctC8Dataset.detect(root):  # OCT-C8 has Kermany's four classes among its eight
            return False
        return bool(class_folder_collections(root, cls.labels))

    @classmethod
    def write(cls, root: Path, items: Iterable[WriteItem], *, with_splits: bool = True, **kwargs: Any) -> Path:
        """Write ``<split>/<CLASS>/<CLASS>-<patient>-<n>.jpeg`` (``<CLASS>/…`` when ``with_splits`` is False).

        ``n`` counts each patient's images from 1 in item order; an item's ``name`` overrides the file stem.
        """
        items = list(items)
        check_labels(items, KERMANY_LABELS, cls.name)
        root = Path(root)
        counters: dict[tuple[str, str], int] = {}
        for item in items:
            if not item.patient_id.isdigit() and item.name is None:
                raise InputError(f"Kermany patient ids are digits, got {item.patient_id!r}", field="patient_id")
            key = (item.label, item.patient_id)
            counters[key] = counters.get(key, 0) + 1
            stem = item.name or f"{item.label}-{item.patient_id}-{counters[key]}"
            folder = root / item.split / item.label if with_splits else root / item.label
            image = item.image if item.image.ndim == 2 else _to_grey(item.image)
            encode_image(image, folder / f"{stem}.jpeg")
        return root


def _to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of an RGB uint8 array (OCT scans are stored grey, as Kermany's are)."""
    lum = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(lum), 0, 255).astype(np.uint8)
