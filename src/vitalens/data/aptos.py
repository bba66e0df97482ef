"""APTOS 2019 Blindness Detection adapter: ``train.csv`` (``id_code,diagnosis``) + ``train_images/<id_code>.png``.

Why an adapter of its own: APTOS grades diabetic retinopathy on the international 0–4 scale (ICDR: no DR, mild,
moderate, severe non-proliferative, proliferative) from one photograph; it names no patient, so each image stands
for its own patient (a limitation the card states). Copies in circulation often hold the whole label file but only
some images (the shared sample: 3,662 rows, 150 images); rows without an image are skipped and counted, never
silently. ``test.csv`` (no labels) is ignored.

Example:
    >>> ds = AptosDataset(Path("aptos2019"))      # doctest: +SKIP
    >>> ds.class_counts()                         # doctest: +SKIP
    {'0': 30, '1': 30, '2': 30, '3': 30, '4': 30}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from vitalens.data._image_source import (
    IMAGE_SUFFIXES,
    ImageClassSource,
    ImageSample,
    WriteItem,
    check_labels,
    encode_image,
)
from vitalens.errors import InputError

__all__ = ["AptosDataset", "DR_GRADES", "DR_GRADE_NAMES", "REFERABLE_DR_MIN_GRADE"]

logger = logging.getLogger(__name__)

#: ICDR diabetic-retinopathy grades, the output order of every DR model.
DR_GRADES: tuple[str, ...] = ("0", "1", "2", "3", "4")
DR_GRADE_NAMES: dict[str, str] = {
    "0": "No DR",
    "1": "Mild non-proliferative DR",
    "2": "Moderate non-proliferative DR",
    "3": "Severe non-proliferative DR",
    "4": "Proliferative DR",
}
#: Referable DR is moderate NPDR or worse (ICDR grade ≥ 2), the usual screening referral line.
REFERABLE_DR_MIN_GRADE = 2

LABEL_FILE = "train.csv"
IMAGE_DIR = "train_images"


class AptosDataset(ImageClassSource):
    """APTOS 2019 training images with their DR grade.

    Args:
        root: the folder holding ``train.csv`` and ``train_images/``.
        require_images: skip rows whose image is missing (True), or keep them (False: only for label statistics).

    Raises:
        FileNotFoundError: no ``train.csv`` under ``root``.
        InputError: missing columns or a grade outside 0–4.
    """

    name = "APTOS 2019"
    modality = "fundus"
    labels = DR_GRADES
    label_names = DR_GRADE_NAMES

    def __init__(self, root: Path, *, require_images: bool = True) -> None:
        super().__init__(root)
        sheet = self.root / LABEL_FILE
        if not sheet.is_file():
            raise FileNotFoundError(f"APTOS root {self.root} has no {LABEL_FILE} (id_code,diagnosis)")
        frame = pd.read_csv(sheet, dtype={"id_code": str})
        missing = {"id_code", "diagnosis"} - set(frame.columns)
        if missing:
            raise InputError(f"{sheet.name} lacks columns {sorted(missing)}; expected id_code,diagnosis", field="sheet")
        grades = pd.to_numeric(frame["diagnosis"], errors="coerce")
        bad = ~grades.isin(range(len(DR_GRADES)))
        if bad.any():
            row = frame.loc[bad].iloc[0]
            raise InputError(
                f"{sheet.name}: diagnosis of {row['id_code']} is {str(row['diagnosis'])!r}, expected a grade 0–4",
                field="sheet",
            )
        images = self._index_images(self.root / IMAGE_DIR)
        skipped = 0
        for code, grade in zip(frame["id_code"].astype(str).str.strip(), grades.astype(int), strict=True):
            path = images.get(code)
            if path is None and require_images:
                skipped += 1
                continue
            self.samples.append(ImageSample(sample_id=code, patient_id=code, label=int(grade), path=path))
        if skipped:
            logger.info(
                "APTOS: %d of %d rows of %s have no image in %s; skipped", skipped, len(frame), sheet, IMAGE_DIR
            )
        if not self.samples:
            raise InputError(f"APTOS root {self.root}: no labelled image found in {IMAGE_DIR}/", field="data")

    @staticmethod
    def _index_images(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}

    @classmethod
    def detect(cls, root: Path) -> bool:
        root = Path(root)
        return (root / LABEL_FILE).is_file() and (root / IMAGE_DIR).is_dir()

    @classmethod
    def write(cls, root: Path, items: Iterable[WriteItem], **kwargs: Any) -> Path:
        """Write ``train.csv`` and ``train_images/<id_code>.png`` (the competition's layout; splits are ignored).

        Each item's ``name`` (else ``patient_id``) is the ``id_code``; ``label`` is the grade text ``"0"``–``"4"``.
        """
        items = list(items)
        check_labels(items, DR_GRADES, cls.name)
        root = Path(root)
        rows = []
        for i, item in enumerate(items):
            code = item.name or item.patient_id or f"{i:012x}"
            encode_image(item.image, root / IMAGE_DIR / f"{code}.png")
            rows.append({"id_code": code, "diagnosis": int(item.label)})
        if len({r["id_code"] for r in rows}) != len(rows):
            raise InputError("APTOS id_code values must be unique", field="name")
        pd.DataFrame(rows, columns=["id_code", "diagnosis"]).to_csv(root / LABEL_FILE, index=False)
        return root
