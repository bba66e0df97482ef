"""Dataset adapters of the retina analyzers: APTOS 2019, Kermany OCT2017, OCT-C8 and MedMNIST (registered by name).

Each reads its published layout with the reader in its own module, writes the same layout for reviewed studies
(:class:`~vitalens.data._image_writers.SingleImageWriter`) and has a synthetic twin in ``vitalens.synth``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vitalens.data._adapters import DatasetAdapter, DatasetWriter, register_adapter
from vitalens.data._image_writers import SingleImageWriter
from vitalens.data.aptos import DR_GRADE_NAMES, DR_GRADES, AptosDataset
from vitalens.data.kermany import KERMANY_LABEL_NAMES, KERMANY_LABELS, KermanyOctDataset
from vitalens.data.medmnist import MEDMNIST_FLAGS, MedMnistDataset
from vitalens.data.octc8 import OCTC8_LABEL_NAMES, OCTC8_LABELS, OctC8Dataset

__all__ = ["AptosAdapter", "KermanyAdapter", "OctC8Adapter", "RetinaMnistAdapter", "OctMnistAdapter"]

logger = logging.getLogger(__name__)


@register_adapter("aptos2019")
class AptosAdapter(DatasetAdapter):
    """APTOS 2019: one fundus photograph per row, ICDR grade 0–4."""

    title = "APTOS 2019 Blindness Detection"
    layout = "train.csv (id_code,diagnosis) + train_images/<id_code>.png"
    labels = DR_GRADES
    label_names = DR_GRADE_NAMES
    citation = "APTOS 2019 Blindness Detection (Kaggle; Aravind Eye Hospital), 2019"

    def read(self, root: Path, **options: Any) -> AptosDataset:
        return AptosDataset(Path(root), **options)

    def writer(self, root: Path) -> DatasetWriter:
        return SingleImageWriter(root, source_cls=AptosDataset, slots=("fundus_left", "fundus_right"), mode="RGB")

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.aptos import write_aptos_synth

        return write_aptos_synth(Path(root), n_per_grade=max(1, n // len(DR_GRADES)), seed=seed)


@register_adapter("kermany")
class KermanyAdapter(DatasetAdapter):
    """Kermany OCT2017: B-scans named CLASS-patient-n, four classes."""

    title = "Kermany OCT2017"
    layout = "train|test/<CLASS>/<CLASS>-<patient>-<n>.jpeg"
    labels = KERMANY_LABELS
    label_names = KERMANY_LABEL_NAMES
    citation = "Kermany D.S. et al., Cell 172(5):1122–1131, 2018; Mendeley Data doi:10.17632/rscbjbr9sj"

    def read(self, root: Path, **options: Any) -> KermanyOctDataset:
        return KermanyOctDataset(Path(root), **options)

    def writer(self, root: Path) -> DatasetWriter:
        return SingleImageWriter(root, source_cls=KermanyOctDataset, slots=("oct",), mode="L", name_files=False)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.oct import write_kermany_synth

        return write_kermany_synth(Path(root), n_patients=max(4, n), seed=seed)


@register_adapter("octc8")
class OctC8Adapter(DatasetAdapter):
    """OCT-C8: eight classes, published train/val/test folders."""

    title = "OCT-C8"
    layout = "train|val|test/<CLASS>/*"
    labels = OCTC8_LABELS
    label_names = OCTC8_LABEL_NAMES
    citation = "Subramanian M. et al., Comput. Intell. Neurosci. 2022:8014979 (OCT-C8)"

    def read(self, root: Path, **options: Any) -> OctC8Dataset:
        return OctC8Dataset(Path(root), **options)

    def writer(self, root: Path) -> DatasetWriter:
        return SingleImageWriter(root, source_cls=OctC8Dataset, slots=("oct",), mode="L")

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.oct import write_octc8_synth

        k = max(1, n // (len(OCTC8_LABELS) * 3))
        return write_octc8_synth(Path(root), per_class=(k, k, k), seed=seed)


class _MedMnistAdapter(DatasetAdapter):
    """A MedMNIST flag: ``<flag>[_<size>].npz`` with the official train/val/test arrays."""

    flag = ""
    size = 224

    def read(self, root: Path, **options: Any) -> MedMnistDataset:
        return MedMnistDataset(Path(root), flag=self.flag, **options)

    def writer(self, root: Path) -> DatasetWriter:
        return _MedMnistWriter(root, flag=self.flag, size=self.size)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.medmnist import write_medmnist_synth

        write_medmnist_synth(Path(root), self.flag, size=28, seed=seed)
        return Path(root)


class _MedMnistWriter(SingleImageWriter):
    """Reviewed images resized to one MedMNIST size (the archive holds square arrays of one side)."""

    def __init__(self, root: Path, *, flag: str, size: int) -> None:
        info = MEDMNIST_FLAGS[flag]
        slots = ("fundus_left", "fundus_right") if info.modality == "fundus" else (info.modality,)
        super().__init__(
            root,
            source_cls=MedMnistDataset,
            slots=slots,
            mode="RGB" if info.channels == 3 else "L",
            write_kwargs={"flag": flag},
        )
        self.size = size

    def close(self) -> None:
        import numpy as np
        from PIL import Image

        for i, item in enumerate(self.items):
            resized = Image.fromarray(item.image).resize((self.size, self.size), Image.Resampling.BICUBIC)
            self.items[i] = type(item)(np.asarray(resized), item.label, item.patient_id, item.split, item.name)
        super().close()


@register_adapter("retinamnist")
class RetinaMnistAdapter(_MedMnistAdapter):
    title = "RetinaMNIST (MedMNIST v2)"
    layout = "retinamnist[_<size>].npz with train/val/test _images and _labels"
    labels = MEDMNIST_FLAGS["retinamnist"].labels
    label_names = MEDMNIST_FLAGS["retinamnist"].label_names
    citation = "Yang J. et al., MedMNIST v2, Sci. Data 10:41, 2023; Liu R. et al., DeepDRiD, Patterns 3(6), 2022"
    flag = "retinamnist"


@register_adapter("octmnist")
class OctMnistAdapter(_MedMnistAdapter):
    title = "OCTMNIST (MedMNIST v2)"
    layout = "octmnist[_<size>].npz with train/val/test _images and _labels"
    labels = MEDMNIST_FLAGS["octmnist"].labels
    label_names = MEDMNIST_FLAGS["octmnist"].label_names
    citation = "Yang J. et al., MedMNIST v2, Sci. Data 10:41, 2023; Kermany D.S. et al., Cell 2018"
    flag = "octmnist"
