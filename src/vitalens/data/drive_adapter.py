"""The DRIVE dataset adapter: reads the published layout (:class:`~vitalens.data.drive.DriveDataset`), writes it
(:class:`DriveWriter`) and has a synthetic twin (:func:`vitalens.synth.drive.write_drive_synth`).

What the writer needs: DRIVE's truth is a *manual vessel segmentation*, not a label. A reviewed study is written
only when it carries a clinician's vessel mask for an eye (``record.meta["vessel_masks"][slot]``: a bool array or
PNG bytes in the image's coordinates, e.g. a brush annotation of the vessels); the field-of-view mask is
computed from the photograph. A study reviewed without a mask is skipped with that reason — the model's own
vessel map is never exported as truth.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.data._adapters import DatasetAdapter, DatasetWriter, ExportRecord, SkipRecord, register_adapter
from vitalens.data.drive import DriveDataset, write_drive_record

__all__ = ["DriveAdapter", "DriveWriter"]

logger = logging.getLogger(__name__)

_EYE_SLOTS = ("fundus_right", "fundus_left")


def _decode_rgb(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _mask(value: Any, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(value, (bytes, bytearray)):
        from PIL import Image

        with Image.open(io.BytesIO(bytes(value))) as im:
            value = np.asarray(im.convert("L")) > 127
    mask = np.asarray(value, dtype=bool)
    if mask.shape != shape:
        raise SkipRecord(f"vessel mask is {mask.shape[1]}×{mask.shape[0]} px, the photograph {shape[1]}×{shape[0]}")
    return mask


class DriveWriter(DatasetWriter):
    """Writes ``test/images/<n>_test.tif``, ``test/1st_manual/<n>_manual1.gif`` and ``test/mask/<n>_test_mask.gif``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.next_id = 1
        self.ids: dict[str, str] = {}

    def add(self, record: ExportRecord) -> str:
        from vitalens.vessels.preprocess import fov_mask

        masks = (record.meta or {}).get("vessel_masks") or {}
        written = []
        for slot in _EYE_SLOTS:
            if slot not in record.inputs or slot not in masks:
                continue
            image = _decode_rgb(record.inputs[slot].load())
            vessels = _mask(masks[slot], image.shape[:2])
            image_id = f"{self.next_id:02d}"
            fov = fov_mask(image)
            write_drive_record(self.root, "test", image_id, image=image, vessels=vessels & fov, fov=fov)
            self.ids[image_id] = f"{record.record_id}:{slot}"
            self.next_id += 1
            written.append(image_id)
        if not written:
            raise SkipRecord("fundus: no reviewed vessel segmentation (a clinician's vessel mask) for either eye")
        self.written += 1
        return ",".join(written)

    def close(self) -> None:
        if self.ids:
            import json

            (self.root / "ids.json").write_text(json.dumps(self.ids, indent=2) + "\n", encoding="utf-8")


@register_adapter("drive")
class DriveAdapter(DatasetAdapter):
    """DRIVE: 40 colour fundus photographs with manual vessel segmentations and field-of-view masks."""

    title = "DRIVE"
    layout = (
        "training|test/images/<n>_<split>.tif, 1st_manual/<n>_manual1.gif, 2nd_manual/<n>_manual2.gif (test), "
        "mask/<n>_<split>_mask.gif"
    )
    labels = ("vessel",)
    label_names = {"vessel": "Retinal vessel (per pixel)"}
    citation = "Staal et al., Ridge-based vessel segmentation in color images of the retina, IEEE TMI 23:501 (2004)"

    def read(self, root: Path, **options: Any) -> DriveDataset:
        return DriveDataset(Path(root), **options)

    def writer(self, root: Path) -> DriveWriter:
        return DriveWriter(root)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.drive import write_drive_synth

        n_test = max(1, n // 2)
        return write_drive_synth(Path(root), n_train=max(1, n - n_test), n_test=n_test, seed=seed)
