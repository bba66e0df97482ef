"""OCT-C8 adapter: ``train|val|test/<CLASS>/*`` with eight classes (AMD, CNV, CSR, DME, DR, DRUSEN, MH, NORMAL).

Why an adapter of its own: OCT-C8 (24,000 B-scans, 8 classes, published with fixed train/val/test folders) adds
central serous retinopathy, macular hole, AMD and DR to Kermany's four classes. Its file names carry no patient id,
so each image stands for its own patient and the published split is used as it is (the card says so: images of one
patient may sit in two splits, which we cannot check).

Reference: Subramanian M. et al., "Diagnosis of Retinal Diseases Based on Bayesian Optimization Deep Learning
Network Using Optical Coherence Tomography Images", Comput. Intell. Neurosci. 2022:8014979 (the OCT-C8 set,
Kaggle ``obulisainaren/retinal-oct-c8``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vitalens.data._image_source import (
    IMAGE_SUFFIXES,
    ImageClassSource,
    ImageSample,
    WriteItem,
    check_labels,
    class_dirs,
    class_folder_collections,
    encode_image,
)
from vitalens.errors import InputError

__all__ = ["OctC8Dataset", "OCTC8_LABELS", "OCTC8_LABEL_NAMES"]

logger = logging.getLogger(__name__)

OCTC8_LABELS: tuple[str, ...] = ("AMD", "CNV", "CSR", "DME", "DR", "DRUSEN", "MH", "NORMAL")
OCTC8_LABEL_NAMES: dict[str, str] = {
    "AMD": "Age-related macular degeneration",
    "CNV": "Choroidal neovascularisation",
    "CSR": "Central serous retinopathy",
    "DME": "Diabetic macular oedema",
    "DR": "Diabetic retinopathy",
    "DRUSEN": "Drusen",
    "MH": "Macular hole",
    "NORMAL": "Normal retina",
}


class OctC8Dataset(ImageClassSource):
    """OCT-C8 B-scans with their class and published split.

    Args:
        root: the folder holding ``train/``, ``val/`` and ``test/`` (a bare ``<CLASS>/`` layout is read without
            splits).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        InputError: no class folder under ``root``, or fewer than two classes.
    """

    name = "OCT-C8"
    modality = "oct"
    labels = OCTC8_LABELS
    label_names = OCTC8_LABEL_NAMES

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"OCT-C8 root {self.root} is not a folder")
        collections = class_folder_collections(self.root, self.labels)
        if not collections:
            raise InputError(
                f"no OCT-C8 layout under {self.root}: expected train|val|test/<CLASS>/ with CLASS in "
                f"{list(self.labels)}",
                field="data",
            )
        for folder, split in collections:
            for class_dir in class_dirs(folder, self.labels):
                label = self.labels.index(class_dir.name)
                for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                    rel = path.relative_to(self.root).as_posix()
                    self.samples.append(ImageSample(sample_id=rel, patient_id=rel, label=label, split=split, path=path))
        present = {s.label for s in self.samples}
        if len(present) < 2:
            raise InputError(f"OCT-C8 root {self.root} holds {len(present)} class(es); need at least 2", field="data")

    @classmethod
    def detect(cls, root: Path) -> bool:
        """OCT-C8 is told from Kermany by a class Kermany lacks (CSR, MH, AMD or DR)."""
        root = Path(root)
        if not root.is_dir():
            return False
        own = {"AMD", "CSR", "DR", "MH"}
        return any(
            own & {d.name for d in class_dirs(f, cls.labels)} for f, _ in class_folder_collections(root, cls.labels)
        )

    @classmethod
    def write(cls, root: Path, items: Iterable[WriteItem], **kwargs: Any) -> Path:
        """Write ``<split>/<CLASS>/<name>.jpg`` (name: the item's, else ``<class>_<split>_<n>`` as OCT-C8 names)."""
        from vitalens.data.kermany import _to_grey

        items = list(items)
        check_labels(items, OCTC8_LABELS, cls.name)
        root = Path(root)
        counters: dict[tuple[str, str], int] = {}
        for item in items:
            key = (item.split, item.label)
            counters[key] = counters.get(key, 0) + 1
            stem = item.name or f"{item.label.lower()}_{item.split}_{counters[key]}"
            image = item.image if item.image.ndim == 2 else _to_grey(item.image)
            encode_image(image, root / item.split / item.label / f"{stem}.jpg")
        return root
