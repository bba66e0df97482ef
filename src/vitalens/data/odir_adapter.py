"""The ODIR-5K dataset adapter: reads the published layout (:class:`~vitalens.data.odir.OdirDataset`), writes it
(:class:`OdirWriter`: ``labels.csv`` + ``images/<ID>_left|right.jpg``) and has a synthetic twin
(:func:`vitalens.synth.odir.write_odir_synth`).

Why the writer lives here: what the feedback export writes must be what :class:`OdirDataset` reads, so both sides
of the layout are kept in the dataset's own module pair. ODIR labels are patient-level (8 labels over both eyes); a
record is written only when all 8 are known, both photographs exist and the sex is female/male (the ODIR sheet has
no other value).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from vitalens.data._adapters import DatasetAdapter, DatasetWriter, ExportRecord, SkipRecord, register_adapter
from vitalens.data.odir import ODIR_LABEL_NAMES, ODIR_LABELS, ODIR_SHEET_COLUMNS, OdirDataset

__all__ = ["OdirAdapter", "OdirWriter", "odir_keywords"]

logger = logging.getLogger(__name__)


def odir_keywords(labels: dict[str, int]) -> str:
    """The diagnostic keywords of a record (ODIR separates them with a full-width comma)."""
    positive = [ODIR_LABEL_NAMES[c].lower() for c, v in labels.items() if v and c != "N"]
    if not positive:
        return "normal fundus" if labels.get("N") else ""
    return "，".join(positive)


def _jpeg(data: bytes) -> bytes:
    """The image as JPEG bytes (JPEG uploads are copied byte for byte)."""
    if data[:3] == b"\xff\xd8\xff":
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


class OdirWriter(DatasetWriter):
    """Writes ``labels.csv`` (the official sheet's columns) and ``images/<ID>_left|right.jpg``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rows: list[dict[str, Any]] = []

    def add(self, record: ExportRecord) -> str:
        missing = [c for c in ODIR_LABELS if c not in record.labels]
        if missing:
            raise SkipRecord("fundus: not all 8 ODIR labels reviewed")
        if "fundus_left" not in record.inputs or "fundus_right" not in record.inputs:
            raise SkipRecord("fundus: left or right image missing")
        if record.sex not in ("female", "male"):
            raise SkipRecord("fundus: patient sex not female/male")
        age = record.age_years
        if age is None or not 0 <= age <= 120:
            raise SkipRecord("fundus: age unknown")
        images = self.root / "images"
        images.mkdir(parents=True, exist_ok=True)
        names = {}
        for side in ("left", "right"):
            name = f"{record.record_id}_{side}.jpg"
            (images / name).write_bytes(_jpeg(record.inputs[f"fundus_{side}"].load()))
            names[side] = name
        values = {c: int(bool(record.labels[c])) for c in ODIR_LABELS}
        keywords = odir_keywords(values)
        self.rows.append(
            {
                "ID": record.record_id,
                "Patient Age": round(float(age), 1),
                "Patient Sex": record.sex.title(),
                "Left-Fundus": names["left"],
                "Right-Fundus": names["right"],
                "Left-Diagnostic Keywords": keywords,
                "Right-Diagnostic Keywords": keywords,
                **values,
            }
        )
        self.written += 1
        return record.record_id

    def close(self) -> None:
        import pandas as pd

        if self.rows:
            self.root.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(self.rows, columns=list(ODIR_SHEET_COLUMNS)).to_csv(self.root / "labels.csv", index=False)


@register_adapter("odir")
class OdirAdapter(DatasetAdapter):
    """ODIR-5K: both fundus photographs and the age per patient, 8 patient-level labels."""

    title = "ODIR-5K"
    layout = (
        "annotation sheet (data.xlsx / labels.csv / full_df.csv) + image folder; patient-level labels N D G C A H M O"
    )
    labels = ODIR_LABELS
    label_names = ODIR_LABEL_NAMES
    citation = "Li et al., A benchmark of ocular disease intelligent recognition (ODIR-2019), 2021"

    def read(self, root: Path, **options: Any) -> OdirDataset:
        return OdirDataset(Path(root), **options)

    def writer(self, root: Path) -> OdirWriter:
        return OdirWriter(root)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.odir import write_odir_synth

        return write_odir_synth(Path(root), n_patients=n, seed=seed)
