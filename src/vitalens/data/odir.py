"""ODIR-5K adapter: one record per patient pairing both eyes, read from the dataset's published layout.

Why an adapter of its own: ODIR labels are *patient-level* (8 labels over both eyes) while the images are per
eye, and the dataset circulates in several layouts (the official ``data.xlsx`` + ``Training Images/``, the
2019 challenge ``*Annotations*.xlsx``, Kaggle's per-image ``full_df.csv`` + ``preprocessed_images/``). Reading
all of them into the same :class:`OdirRecord` keeps splits patient-level and the training code
layout-agnostic.

Example:
    >>> ds = OdirDataset(Path("ODIR-5K"))          # doctest: +SKIP
    >>> ds.targets.shape                           # doctest: +SKIP
    (3500, 8)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vitalens.errors import InputError

__all__ = [
    "ODIR_LABELS",
    "ODIR_LABEL_NAMES",
    "ODIR_SHEET_COLUMNS",
    "ODIR_SHEET_NAMES",
    "ODIR_IMAGE_DIRS",
    "OdirRecord",
    "OdirDataset",
    "find_odir_sheet",
    "find_odir_image_dir",
    "read_odir_sheet",
]

logger = logging.getLogger(__name__)

#: Output order of every ODIR model: the column order of the official sheet.
ODIR_LABELS: tuple[str, ...] = ("N", "D", "G", "C", "A", "H", "M", "O")

ODIR_LABEL_NAMES: dict[str, str] = {
    "N": "Normal",
    "D": "Diabetic retinopathy",
    "G": "Glaucoma",
    "C": "Cataract",
    "A": "Age-related macular degeneration",
    "H": "Hypertensive retinopathy",
    "M": "Pathological myopia",
    "O": "Other abnormalities",
}

#: Columns of the official annotation sheet (also the first 15 columns of Kaggle's ``full_df.csv``).
ODIR_SHEET_COLUMNS: tuple[str, ...] = (
    "ID",
    "Patient Age",
    "Patient Sex",
    "Left-Fundus",
    "Right-Fundus",
    "Left-Diagnostic Keywords",
    "Right-Diagnostic Keywords",
    *ODIR_LABELS,
)

#: Annotation sheets of the known layouts, in the order they are tried (official first, Kaggle last).
ODIR_SHEET_NAMES: tuple[str, ...] = ("data.xlsx", "*Annotations*.xlsx", "labels.csv", "full_df.csv")

#: Image folders of the known layouts, in the order they are tried.
ODIR_IMAGE_DIRS: tuple[str, ...] = (
    "images",
    "ODIR-5K_Training_Dataset",
    "Training Images",
    "preprocessed_images",
)

_SEX = {"female": "female", "f": "female", "male": "male", "m": "male"}


@dataclass(frozen=True)
class OdirRecord:
    """One ODIR patient: both eyes, demographics and the patient-level labels.

    Attributes:
        patient_id: the sheet's ``ID`` as text.
        age_years: age at the visit, years.
        sex: ``"female"`` or ``"male"``.
        left: path of the left-eye photograph (may not exist when read with ``require_images=False``).
        right: path of the right-eye photograph.
        labels: 8 values 0/1 in :data:`ODIR_LABELS` order.
        left_keywords: the grader's per-eye diagnostic keywords (per-eye truth; labels are per patient).
        right_keywords: idem for the right eye.
    """

    patient_id: str
    age_years: float
    sex: str
    left: Path
    right: Path
    labels: tuple[int, ...]
    left_keywords: str
    right_keywords: str


def find_odir_sheet(root: Path) -> Path:
    """Find the annotation sheet under ``root``, first found of :data:`ODIR_SHEET_NAMES`.

    Raises:
        FileNotFoundError: none of them is there (the message names what was looked for).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ODIR root {root} is not a folder")
    candidates: list[Path] = [root / "data.xlsx"]
    candidates += sorted(p for p in root.glob("*.xlsx") if "annotation" in p.name.lower())
    candidates += [root / "labels.csv", root / "full_df.csv"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"No ODIR annotation sheet in {root}: looked for {', '.join(ODIR_SHEET_NAMES)}")


def find_odir_image_dir(root: Path) -> Path:
    """Find the image folder under ``root`` among :data:`ODIR_IMAGE_DIRS`.

    Raises:
        FileNotFoundError: none of them is there.
    """
    root = Path(root)
    for name in ODIR_IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"No ODIR image folder in {root}: looked for {', '.join(ODIR_IMAGE_DIRS)}")


def read_odir_sheet(path: Path) -> pd.DataFrame:
    """Read an ODIR annotation sheet into one row per patient with the :data:`ODIR_SHEET_COLUMNS`.

    A per-image table (Kaggle ``full_df.csv``, two rows per patient) is collapsed to one row per patient; its
    N..O columns are already patient-level, and rows of one patient that disagree are an error.

    Args:
        path: ``.xlsx`` or ``.csv`` file.

    Returns:
        DataFrame indexed 0..n-1, ``ID`` as str, labels as int 0/1, keywords as str.

    Raises:
        InputError: missing columns, labels other than 0/1, unknown sex, or inconsistent rows of one patient.
    """
    path = Path(path)
    if path.suffix.lower() in {".xlsx", ".xls"}:
        frame = pd.read_excel(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        raise InputError(f"ODIR sheet {path.name} is neither .xlsx nor .csv", field="sheet")
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in ODIR_SHEET_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"ODIR sheet {path.name} lacks columns {missing}; expected {list(ODIR_SHEET_COLUMNS)}",
            field="sheet",
        )
    frame = frame.loc[:, list(ODIR_SHEET_COLUMNS)].copy()
    frame = frame.dropna(subset=["ID"])
    frame["ID"] = frame["ID"].map(_id_text)
    for col in ("Left-Diagnostic Keywords", "Right-Diagnostic Keywords"):
        frame[col] = frame[col].fillna("").astype(str).str.strip()
    for col in ODIR_LABELS:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            row = frame.loc[bad, "ID"].iloc[0]
            raise InputError(
                f"ODIR sheet {path.name}: label {col} of patient {row} is {frame.loc[bad, col].iloc[0]}, "
                "expected 0 or 1",
                field="sheet",
            )
        frame[col] = values.astype(int)
    frame = _collapse_per_patient(frame, path.name)
    return frame.reset_index(drop=True)


def _id_text(value: object) -> str:
    """``12``, ``12.0`` and ``"12"`` are the same patient."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _collapse_per_patient(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """One row per ID; a per-image table repeats the patient row, which must then be identical."""
    if not frame["ID"].duplicated().any():
        return frame
    columns = ["Patient Age", "Patient Sex", *ODIR_LABELS]
    conflicts = frame.groupby("ID", sort=False)[columns].nunique(dropna=False).gt(1).any(axis=1)
    if conflicts.any():
        ids = list(conflicts[conflicts].index[:5])
        raise InputError(
            f"ODIR sheet {name}: patients {ids} have rows that disagree on age, sex or labels",
            field="sheet",
        )
    collapsed = frame.drop_duplicates(subset="ID", keep="first")
    logger.info("ODIR sheet %s: collapsed %d per-image rows to %d patients", name, len(frame), len(collapsed))
    return collapsed


def _sex(value: object, patient_id: str) -> str:
    sex = _SEX.get(str(value).strip().lower())
    if sex is None:
        raise InputError(f"ODIR patient {patient_id}: sex {value!r}, expected Female or Male", field="sheet")
    return sex


class OdirDataset:
    """ODIR-5K in its published layout: one :class:`OdirRecord` per patient.

    Args:
        root: dataset folder; the sheet and image folder are found there unless given.
        sheet: annotation sheet to use instead of searching ``root`` (see :func:`find_odir_sheet`).
        image_dir: image folder to use instead of searching ``root`` (see :func:`find_odir_image_dir`).
        require_images: keep only patients whose two photographs exist (the drop is logged, with a count).

    Raises:
        FileNotFoundError: no sheet, or no image folder while ``require_images`` is set.
        InputError: a malformed sheet, or no patient left.
    """

    labels: tuple[str, ...] = ODIR_LABELS

    def __init__(
        self,
        root: Path,
        *,
        sheet: Path | None = None,
        image_dir: Path | None = None,
        require_images: bool = True,
    ) -> None:
        self.root = Path(root)
        self.sheet = Path(sheet) if sheet is not None else find_odir_sheet(self.root)
        if image_dir is not None:
            self.image_dir = Path(image_dir)
            if require_images and not self.image_dir.is_dir():
                raise FileNotFoundError(f"ODIR image folder {self.image_dir} does not exist")
        else:
            try:
                self.image_dir = find_odir_image_dir(self.root)
            except FileNotFoundError:
                if require_images:
                    raise
                self.image_dir = self.root / ODIR_IMAGE_DIRS[0]
                logger.warning("ODIR: no image folder under %s; paths point to %s", self.root, self.image_dir)
        frame = read_odir_sheet(self.sheet)
        records = [self._record(row) for row in frame.itertuples(index=False)]
        self.dropped: list[str] = []
        if require_images:
            kept = [r for r in records if r.left.is_file() and r.right.is_file()]
            self.dropped = [r.patient_id for r in records if not (r.left.is_file() and r.right.is_file())]
            if self.dropped:
                logger.warning(
                    "ODIR: dropped %d of %d patients lacking a left or right image in %s (e.g. %s)",
                    len(self.dropped),
                    len(records),
                    self.image_dir,
                    ", ".join(self.dropped[:5]),
                )
            records = kept
        if not records:
            raise InputError(
                f"ODIR: no patient with both images: sheet {self.sheet.name}, image folder {self.image_dir}",
                field="root",
            )
        self.records: list[OdirRecord] = records
        logger.info("ODIR: %d patients from %s", len(records), self.sheet)

    def _record(self, row: tuple) -> OdirRecord:
        values = dict(zip(ODIR_SHEET_COLUMNS, row, strict=True))
        pid = values["ID"]
        age = pd.to_numeric(values["Patient Age"], errors="coerce")
        if pd.isna(age) or not 0 <= float(age) <= 120:
            raise InputError(f"ODIR patient {pid}: age {values['Patient Age']!r}, expected 0–120 years", field="sheet")
        left_name = str(values["Left-Fundus"]).strip() if pd.notna(values["Left-Fundus"]) else f"{pid}_left.jpg"
        right_name = str(values["Right-Fundus"]).strip() if pd.notna(values["Right-Fundus"]) else f"{pid}_right.jpg"
        return OdirRecord(
            patient_id=pid,
            age_years=float(age),
            sex=_sex(values["Patient Sex"], pid),
            left=self.image_dir / left_name,
            right=self.image_dir / right_name,
            labels=tuple(int(values[c]) for c in ODIR_LABELS),
            left_keywords=values["Left-Diagnostic Keywords"],
            right_keywords=values["Right-Diagnostic Keywords"],
        )

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> OdirRecord:
        return self.records[index]

    def __iter__(self) -> Iterator[OdirRecord]:
        return iter(self.records)

    @property
    def targets(self) -> np.ndarray:
        """Patient-level labels, shape (N, 8), float32, :data:`ODIR_LABELS` order."""
        return np.asarray([r.labels for r in self.records], dtype=np.float32).reshape(-1, len(ODIR_LABELS))

    @property
    def patient_ids(self) -> np.ndarray:
        """Patient ids, shape (N,), str, row-aligned with :attr:`targets`."""
        return np.asarray([r.patient_id for r in self.records], dtype=str)

    @property
    def ages(self) -> np.ndarray:
        """Ages in years, shape (N,), float32."""
        return np.asarray([r.age_years for r in self.records], dtype=np.float32)

    @property
    def sexes(self) -> np.ndarray:
        """``"female"``/``"male"``, shape (N,), str."""
        return np.asarray([r.sex for r in self.records], dtype=str)

    def subset_ids(self, patient_ids: Sequence[str]) -> list[int]:
        """Indices of the given patient ids (unknown ids raise ``InputError``)."""
        index = {r.patient_id: i for i, r in enumerate(self.records)}
        missing = [p for p in patient_ids if p not in index]
        if missing:
            raise InputError(f"ODIR: unknown patient ids {missing[:5]}", field="patient_id")
        return [index[p] for p in patient_ids]
