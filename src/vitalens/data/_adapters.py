"""Dataset adapters: each reads one public dataset in its published layout, **writes** that layout, and has a
synthetic twin — registered by name, so analyzers, training, evaluation and the feedback export find them.

Why read and write in one place: the loop from a clinician's review back to training closes only when reviewed
labels are written in exactly the layout the reader reads (the ODIR-5K sheet and image folder; PTB-XL's database
CSV, statements CSV and WFDB records). An analyzer names its adapter in its contract (``dataset="odir"``); the
feedback export hands each reviewed study to that adapter's :class:`DatasetWriter`, never to code keyed by
modality. The synthetic twin writes a small dataset in the same layout for tests and the offline demo.

Example:
    >>> from vitalens.data import get_adapter
    >>> adapter = get_adapter("odir")
    >>> root = adapter.write_synthetic(tmp / "odir", n=12, seed=0)  # doctest: +SKIP
    >>> dataset = adapter.read(root)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from vitalens._registry import ENTRY_POINT_GROUPS, Registry

__all__ = [
    "ADAPTERS",
    "DatasetAdapter",
    "DatasetWriter",
    "ExportInput",
    "ExportRecord",
    "SkipRecord",
    "register_adapter",
    "get_adapter",
    "list_adapters",
    "is_adapter",
]

logger = logging.getLogger(__name__)


class SkipRecord(Exception):
    """Raised by :meth:`DatasetWriter.add` when a record cannot be written in the layout; ``reason`` is counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ExportInput:
    """One stored input of a study handed to a writer; ``load()`` returns its original bytes."""

    slot: str
    filename: str
    media_type: str
    load: Callable[[], bytes]
    size_bytes: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ExportRecord:
    """One reviewed study, ready for a writer.

    Attributes:
        record_id: the service's random study id (never a pseudonym or name).
        patient_id: the service's random patient id (for patient-level splits).
        labels: study-level label code → positive, for every code the reviews (or the model) settled.
        labels_by_input: slot → (code → positive) for findings of per-input analyzers (one eye, one scan).
        inputs: slot → the stored input.
        age_years, sex, study_date: what the layout may record about the patient and study.
        meta: anything else a writer may use.
    """

    record_id: str
    patient_id: str
    labels: dict[str, bool]
    inputs: dict[str, ExportInput]
    age_years: float | None = None
    sex: str | None = None
    study_date: date | None = None
    labels_by_input: dict[str, dict[str, bool]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class DatasetWriter(ABC):
    """Writes records into ``root`` in the adapter's published layout.

    Use as a context manager: :meth:`add` each record (it raises :class:`SkipRecord` with a reason when the record
    cannot be written), and the sheets/indexes are written on exit (:meth:`close`). The caller owns atomicity (the
    feedback export writes into a temporary folder and renames it into place).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.written = 0

    @abstractmethod
    def add(self, record: ExportRecord) -> str:
        """Write one record; returns its id in the dataset (e.g. the ODIR ``ID`` or the PTB-XL ``ecg_id``)."""

    @abstractmethod
    def close(self) -> None:
        """Write what is written once for all records (the label sheet, the database CSV)."""

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()


class DatasetAdapter(ABC):
    """One public dataset: its labels, its reader, its writer and its synthetic twin.

    Class attributes:
        name: registry name (``odir``), set by :func:`register_adapter`.
        title: the dataset's published name (``ODIR-5K``).
        layout: the layout in one line (what :meth:`read` expects and :meth:`writer` writes).
        labels: label codes in order; label_names: code → human name.
        citation: how to cite the dataset.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    labels: ClassVar[tuple[str, ...]] = ()
    label_names: ClassVar[dict[str, str]] = {}
    citation: ClassVar[str] = ""

    @abstractmethod
    def read(self, root: Path, **options: Any) -> Any:
        """Read ``root`` (the published layout) into the dataset object the training task uses."""

    @abstractmethod
    def writer(self, root: Path) -> DatasetWriter:
        """A writer that writes records into ``root`` in the published layout."""

    @abstractmethod
    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        """Write a small synthetic dataset in the published layout (with a ``SYNTHETIC`` marker); returns root."""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "layout": self.layout,
            "labels": list(self.labels),
            "citation": self.citation,
        }


#: Every registered adapter class; discovered from the public modules of ``vitalens.data`` and the
#: ``vitalens.datasets`` entry-point group.
ADAPTERS: Registry[type[DatasetAdapter]] = Registry(
    "dataset adapter", packages=("vitalens.data",), group=ENTRY_POINT_GROUPS["dataset adapter"]
)


def register_adapter(name: str) -> Callable[[type[DatasetAdapter]], type[DatasetAdapter]]:
    """Class decorator registering a dataset adapter under ``name``; duplicates are an error."""

    def decorator(cls: type[DatasetAdapter]) -> type[DatasetAdapter]:
        ADAPTERS.register(name, cls)
        cls.name = name
        return cls

    return decorator


def get_adapter(name: str) -> DatasetAdapter:
    """An instance of adapter ``name``; unknown names fail with the valid ones and the closest match."""
    return ADAPTERS.get(name)()


def list_adapters(pattern: str = "*") -> list[str]:
    return ADAPTERS.names(pattern)


def is_adapter(name: str) -> bool:
    return name in ADAPTERS
