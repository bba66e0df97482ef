"""The COVID-19 Radiography Database adapter: reads ``<Class>/images/*.png``
(:class:`~vitalens.data.covid_radiography.CovidRadiographyDataset`), writes it (:class:`CovidRadiographyWriter`) and
has a synthetic twin (:func:`vitalens.synth.cxr.write_covid_radiography_synth`).

What a reviewed study becomes: the anomaly analyzer's one finding is "abnormal or not". A radiograph reviewed as
**normal** is written to ``Normal/images/`` — exactly what the normal-only detector retrains on. An abnormal one
needs a class folder the layout has (COVID, Lung_Opacity, Viral Pneumonia); it is written there only when the review
names that class (a label of that code set true), and otherwise skipped with the reason, never filed under a guess.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vitalens.data._adapters import DatasetAdapter, DatasetWriter, ExportRecord, SkipRecord, register_adapter
from vitalens.data.covid_radiography import (
    CXR_CLASSES,
    CXR_NORMAL,
    CovidRadiographyDataset,
    write_covid_radiography,
)

__all__ = ["CovidRadiographyAdapter", "CovidRadiographyWriter"]

logger = logging.getLogger(__name__)

_ANOMALY = "anomaly"


def _decode_gray(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"))


class CovidRadiographyWriter(DatasetWriter):
    """Writes reviewed radiographs as ``<Class>/images/<Class>-<n>.png`` (numbers continue per class)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._next: dict[str, int] = {}

    def _class_of(self, record: ExportRecord) -> str:
        # The anomaly analyzer's finding concerns the ``cxr`` input, so its review arrives per input.
        merged = {**record.labels, **record.labels_by_input.get("cxr", {})}
        labels = {k.lower(): v for k, v in merged.items()}
        named = [c for c in CXR_CLASSES if c != CXR_NORMAL and labels.get(c.lower())]
        if len(named) > 1:
            raise SkipRecord("cxr: more than one abnormal class reviewed")
        if named:
            return named[0]
        if labels.get(CXR_NORMAL.lower()) or labels.get(_ANOMALY) is False:
            return CXR_NORMAL
        if labels.get(_ANOMALY):
            raise SkipRecord(
                "cxr: abnormal, but no class of the layout (COVID, Lung_Opacity, Viral Pneumonia) reviewed"
            )
        raise SkipRecord("cxr: not reviewed as normal or abnormal")

    def add(self, record: ExportRecord) -> str:
        if "cxr" not in record.inputs:
            raise SkipRecord("cxr: no chest radiograph")
        cls = self._class_of(record)
        n = self._next.get(cls)
        if n is None:
            folder = self.root / cls / "images"
            existing = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
            n = existing + 1
        write_covid_radiography(self.root, [(cls, _decode_gray(record.inputs["cxr"].load()))], start=n)
        self._next[cls] = n + 1
        self.written += 1
        return f"{cls}-{n}"

    def close(self) -> None:
        """Nothing to index: the layout is the folders."""


@register_adapter("covid19_radiography")
class CovidRadiographyAdapter(DatasetAdapter):
    """COVID-19 Radiography Database: one folder per class of PNG chest radiographs."""

    title = "COVID-19 Radiography Database"
    layout = "<Class>/images/<Class>-<n>.png for Normal, COVID, Lung_Opacity, Viral Pneumonia"
    labels = CXR_CLASSES
    label_names = {
        "Normal": "Normal",
        "COVID": "COVID-19",
        "Lung_Opacity": "Lung opacity (non-COVID)",
        "Viral Pneumonia": "Viral pneumonia",
    }
    citation = (
        "Chowdhury M.E.H. et al., Can AI help in screening viral and COVID-19 pneumonia? IEEE Access 8:132665, 2020; "
        "Rahman T. et al., Exploring the effect of image enhancement techniques on COVID-19 detection using chest "
        "X-ray images, Comput. Biol. Med. 132:104319, 2021"
    )

    def read(self, root: Path, **options: Any) -> CovidRadiographyDataset:
        return CovidRadiographyDataset(Path(root), **options)

    def writer(self, root: Path) -> CovidRadiographyWriter:
        return CovidRadiographyWriter(root)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.cxr import write_covid_radiography_synth

        abnormal = max(1, n // 6)
        counts = {"Normal": max(1, n - 3 * abnormal), "COVID": abnormal, "Lung_Opacity": abnormal}
        counts["Viral Pneumonia"] = abnormal
        return write_covid_radiography_synth(Path(root), n_per_class=counts, seed=seed)
