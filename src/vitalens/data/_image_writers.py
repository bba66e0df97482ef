"""Writers of the single-image layouts (APTOS, Kermany, OCT-C8, MedMNIST) for reviewed studies.

Why shared: every single-image analyzer's reviewed record carries one class per image — the positive class code
among the adapter's labels, study-level (``record.labels``) or per input slot (``record.labels_by_input``, one eye)
— and the writers differ only in the layout they hand the images to (each adapter's own ``write``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.data._adapters import DatasetWriter, ExportRecord, SkipRecord
from vitalens.data._image_source import ImageClassSource, WriteItem
from vitalens.data.ptbxl_adapter import stable_number

__all__ = ["SingleImageWriter", "reviewed_class"]

logger = logging.getLogger(__name__)


def reviewed_class(labels: dict[str, bool], classes: Sequence[str]) -> str | None:
    """The one positive class among ``classes`` (None when none, or more than one, is positive)."""
    positive = [c for c in classes if labels.get(c)]
    return positive[0] if len(positive) == 1 else None


def _decode(data: bytes, mode: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert(mode))


class SingleImageWriter(DatasetWriter):
    """Collects one image per reviewed input slot, then writes them through ``source_cls.write`` on close.

    Args:
        root: the folder to write.
        source_cls: the adapter's reader class (its ``write`` is the layout).
        slots: the input slots that hold this dataset's images (``fundus_left``/``fundus_right``, ``oct``).
        mode: PIL mode of the stored image (``RGB`` fundus, ``L`` OCT).
        split: the split the reviewed images go to (``test``: external validation data).
        write_kwargs: extra arguments of ``source_cls.write``.
        name_files: name each file after the record and slot; False lets the layout name it (Kermany's file names
            are ``CLASS-patient-n``, derived from the patient id).
    """

    def __init__(
        self,
        root: Path,
        *,
        source_cls: type[ImageClassSource],
        slots: Sequence[str],
        mode: str,
        split: str = "test",
        write_kwargs: dict[str, Any] | None = None,
        name_files: bool = True,
    ) -> None:
        super().__init__(root)
        self.source_cls = source_cls
        self.slots = tuple(slots)
        self.mode = mode
        self.split = split
        self.write_kwargs = dict(write_kwargs or {})
        self.name_files = name_files
        self.items: list[WriteItem] = []

    def add(self, record: ExportRecord) -> str:
        labels = tuple(self.source_cls.labels)
        names = []
        for slot in self.slots:
            if slot not in record.inputs:
                continue
            per = record.labels_by_input.get(slot) or (record.labels if len(self.slots) == 1 else {})
            label = reviewed_class(per, labels)
            if label is None:
                continue
            # Layouts name patients by digits (Kermany's CLASS-<patient>-n); a stable hash, never Python's salted one.
            digits = "".join(ch for ch in record.patient_id if ch.isdigit()) or str(stable_number(record.patient_id))
            name = f"{record.record_id}_{slot}"
            self.items.append(
                WriteItem(
                    _decode(record.inputs[slot].load(), self.mode),
                    label,
                    patient_id=digits[:12],
                    split=self.split,
                    name=name if self.name_files else None,
                )
            )
            names.append(name)
        if not names:
            raise SkipRecord(f"{'/'.join(self.slots)}: no image with exactly one reviewed class")
        self.written += 1
        return ",".join(names)

    def close(self) -> None:
        if self.items:
            self.source_cls.write(self.root, self.items, **self.write_kwargs)
