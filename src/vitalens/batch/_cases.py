"""What to screen: cases from a manifest CSV or a folder (of DICOM studies, or of single-input files).

Why driven by the analyzer contract: a case is "a value for each slot the analyzer reads", so the manifest's
columns are slot names and a DICOM archive is sorted into slots by what the slots declare (modality, laterality)
and what the files' tags say (kind, eye, age, sex). Nothing here knows an analyzer by name.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalens.errors import InputError

__all__ = ["Case", "cases_from_dir", "cases_from_manifest", "load_cases"]

logger = logging.getLogger(__name__)

_ID_COLUMNS = ("case_id", "id")


@dataclass(frozen=True)
class Case:
    """One case: a file path per file slot and a text value per number/category/text slot.

    Plain strings only, so a case crosses process boundaries (Ray workers) unchanged.
    """

    case_id: str
    files: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "files": dict(self.files), "values": dict(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        return cls(
            case_id=str(data["case_id"]), files=dict(data.get("files") or {}), values=dict(data.get("values") or {})
        )


def _contract(analyzer: str) -> Any:
    from vitalens.analyzers import get_contract

    return get_contract(analyzer)


def cases_from_manifest(path: Path, analyzer: str) -> list[Case]:
    """Cases from a CSV whose columns are ``case_id`` and slot names; file paths are relative to the CSV.

    Raises:
        InputError: no id column, a column that is not one of the analyzer's slots, a duplicate case id.
    """
    from vitalens.slots import get_slot

    contract = _contract(analyzer)
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        id_col = next((c for c in _ID_COLUMNS if c in columns), None)
        if id_col is None:
            raise InputError(f"{path.name} has no case_id column; columns are {columns}", field="manifest")
        unknown = [c for c in columns if c != id_col and c not in contract.slots]
        if unknown:
            raise InputError(
                f"{path.name}: column(s) {unknown} are not slots of {analyzer}; its slots are "
                f"{', '.join(contract.slots)}",
                field="manifest",
            )
        cases, seen = [], set()
        for row in reader:
            case_id = (row.get(id_col) or "").strip()
            if not case_id:
                raise InputError(f"{path.name} line {reader.line_num}: empty case id", field="manifest")
            if case_id in seen:
                raise InputError(f"{path.name}: case id {case_id!r} appears twice", field="manifest")
            seen.add(case_id)
            files, values = {}, {}
            for slot in contract.slots:
                cell = (row.get(slot) or "").strip()
                if not cell:
                    continue
                if get_slot(slot).is_file:
                    files[slot] = str((path.parent / cell).resolve())
                else:
                    values[slot] = cell
            cases.append(Case(case_id=case_id, files=files, values=values))
    return cases


def _dicom_cases(paths: list[Path], root: Path, contract: Any) -> list[Case]:
    """Group DICOM files by study and put each image in the slot whose modality and eye its tags match."""
    from vitalens.io.dicom import image_meta, read_dicom_dataset
    from vitalens.slots import get_slot

    file_slots = [get_slot(s) for s in contract.slots if get_slot(s).is_file]
    studies: dict[str, dict[str, Any]] = {}
    for p in paths:
        ds = read_dicom_dataset(p.read_bytes(), field=str(p.relative_to(root)), stop_before_pixels=True)
        meta = image_meta(ds)
        study = studies.setdefault(meta.study_instance_uid or str(p), {"files": {}, "values": {}})
        target = next(
            (
                s
                for s in file_slots
                if s.modality == meta.kind and (s.laterality is None or s.laterality == meta.laterality)
            ),
            None,
        )
        if target is None:
            logger.info(
                "%s: no slot of %s takes a %s image (eye %s); skipped", p, contract.name, meta.kind, meta.laterality
            )
            continue
        if target.name in study["files"]:
            raise InputError(
                f"study {meta.study_instance_uid}: two images for slot {target.name} "
                f"({Path(study['files'][target.name]).name}, {p.name}); give a manifest to choose",
                field="input",
            )
        study["files"][target.name] = str(p.resolve())
        if "age" in contract.slots and meta.age_years is not None:
            study["values"].setdefault("age", f"{meta.age_years:g}")
        if "sex" in contract.slots and meta.sex is not None:
            study["values"].setdefault("sex", meta.sex)
    return [Case(case_id=uid, files=d["files"], values=d["values"]) for uid, d in studies.items() if d["files"]]


def cases_from_dir(root: Path, analyzer: str) -> list[Case]:
    """Cases from a folder: DICOM files grouped by study, or one case per file for a one-file-slot analyzer.

    Raises:
        InputError: an empty folder, or non-DICOM files for an analyzer that reads several files (use a manifest).
    """
    from vitalens.io.dicom import is_dicom
    from vitalens.slots import get_slot

    contract = _contract(analyzer)
    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise InputError(f"{root} holds no files", field="input")
    dicom = [p for p in paths if is_dicom(p.read_bytes()[:132])]
    if dicom and len(dicom) == len(paths):
        return _dicom_cases(dicom, root, contract)
    file_slots = [s for s in contract.slots if get_slot(s).is_file]
    if len(file_slots) != 1:
        raise InputError(
            f"{analyzer} reads {', '.join(file_slots)}; a folder of plain files cannot say which is which — "
            "give a manifest.csv with a column per slot",
            field="input",
        )
    slot = file_slots[0]
    return [Case(case_id=str(p.relative_to(root)), files={slot: str(p.resolve())}) for p in paths]


def load_cases(source: Path, analyzer: str) -> list[Case]:
    """A manifest (``.csv``) or a folder."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source} does not exist", field="input")
    if source.is_dir():
        return cases_from_dir(source, analyzer)
    if source.suffix.lower() == ".csv":
        return cases_from_manifest(source, analyzer)
    raise InputError(f"{source} is neither a folder nor a .csv manifest", field="input")


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.case_id for c in cases]
