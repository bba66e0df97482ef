"""The PTB-XL dataset adapter: reads the published layout (:class:`~vitalens.data.ptbxl.PTBXLDataset`), writes it
(:class:`PTBXLWriter`: ``ptbxl_database.csv``, ``scp_statements.csv``, WFDB records at 100 and 500 Hz) and has a
synthetic twin (:func:`vitalens.synth.ptbxl.write_ptbxl_synth`).

Why the writer lives here: the reviewed ECGs must come out exactly as :class:`PTBXLDataset` reads them. PTB-XL's
``patient_id`` and ``ecg_id`` are numbers, so the service's random ids are mapped to stable integers (the study id
is kept in a ``study_id`` column); labels become superclass ``scp_codes`` with likelihood 100, and each patient
gets a stable ``strat_fold`` 1–10 so a patient never spans folds.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from vitalens.data._adapters import DatasetAdapter, DatasetWriter, ExportRecord, SkipRecord, register_adapter
from vitalens.data.ptbxl import PTBXL_LABEL_NAMES, PTBXL_LABELS, PTBXL_LEADS, PTBXLDataset
from vitalens.errors import InputError

__all__ = ["PTBXLAdapter", "PTBXLWriter", "PTBXL_STATEMENT_COLUMNS", "stable_fold", "stable_number"]

logger = logging.getLogger(__name__)

#: Columns of ``scp_statements.csv`` written (the first, unnamed, is the SCP code).
PTBXL_STATEMENT_COLUMNS: tuple[str, ...] = ("", "description", "diagnostic", "form", "rhythm", "diagnostic_class")

#: PTB-XL writes ages above 89 as 300 (de-identification); the reader maps 300 back to 90.
_AGE_CAP = 89


def stable_number(text: str, digits: int = 12) -> int:
    """A stable positive integer for a random id (PTB-XL's ``patient_id`` is numeric)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[: max(1, digits)], 16) % (10**digits) + 1


def stable_fold(patient_id: str) -> int:
    """A stable ``strat_fold`` 1..10 per patient (so a patient never spans folds)."""
    return int(hashlib.sha256(patient_id.encode()).hexdigest(), 16) % 10 + 1


class PTBXLWriter(DatasetWriter):
    """Writes the reviewed ECGs in the PTB-XL layout."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rows: list[dict[str, Any]] = []
        self.codes_used: set[str] = set()

    def add(self, record: ExportRecord) -> str:
        import numpy as np

        from vitalens.io.ecg import resample, write_wfdb
        from vitalens.slots import decode_slot

        ecg = record.inputs.get("ecg")
        if ecg is None:
            raise SkipRecord("ecg: no ECG input")
        try:
            data = ecg.load()
            hints = {"fs_hz": ecg.meta["fs_hz"]} if ecg.meta.get("fs_hz") else None  # a CSV without a time column
            rec = decode_slot("ecg", data, filename=ecg.filename or "ecg", max_bytes=len(data) + 1, hints=hints)
            rec = rec.to_standard12()
        except InputError as exc:
            logger.warning("export: study %s ECG unreadable: %s", record.record_id, exc)
            raise SkipRecord("ecg: ECG unreadable or not 12-lead") from exc
        ecg_id = len(self.rows) + 1
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        lr, hr = f"records100/{sub}/{ecg_id:05d}_lr", f"records500/{sub}/{ecg_id:05d}_hr"
        for rel, fs in ((lr, 100), (hr, 500)):
            signal = resample(rec, fs).select(list(PTBXL_LEADS)).signal
            write_wfdb(self.root / Path(rel).parent, Path(rel).name, signal, fs, tuple(PTBXL_LEADS))
        scp = {code: 100.0 for code, positive in sorted(record.labels.items()) if positive}
        self.codes_used.update(scp)
        age = record.age_years
        self.rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": float(stable_number(record.patient_id)),
                "study_id": record.record_id,
                "age": np.nan if age is None else (300.0 if age > _AGE_CAP else round(float(age), 1)),
                "sex": {"male": 0, "female": 1}.get(record.sex or "", np.nan),
                "scp_codes": str(scp),
                "strat_fold": stable_fold(record.patient_id),
                "source_fs_hz": float(rec.fs_hz),
                "filename_lr": lr,
                "filename_hr": hr,
            }
        )
        self.written += 1
        return str(ecg_id)

    def close(self) -> None:
        import numpy as np
        import pandas as pd

        if not self.rows:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.rows).to_csv(self.root / "ptbxl_database.csv", index=False)
        statements = [
            (
                code,
                PTBXL_LABEL_NAMES.get(code, code),
                1.0 if code in PTBXL_LABELS else np.nan,
                np.nan,
                np.nan,
                code if code in PTBXL_LABELS else np.nan,
            )
            for code in sorted(self.codes_used | set(PTBXL_LABELS))
        ]
        pd.DataFrame(statements, columns=list(PTBXL_STATEMENT_COLUMNS)).to_csv(
            self.root / "scp_statements.csv", index=False
        )


@register_adapter("ptbxl")
class PTBXLAdapter(DatasetAdapter):
    """PTB-XL: 12-lead 10 s ECGs, five diagnostic superclasses, recommended folds 1–10."""

    title = "PTB-XL"
    layout = "ptbxl_database.csv + scp_statements.csv + records100/ and records500/ (WFDB, mV); strat_fold 1–10"
    labels = PTBXL_LABELS
    label_names = PTBXL_LABEL_NAMES
    citation = "Wagner et al., PTB-XL, a large publicly available electrocardiography dataset, Sci Data 7:154 (2020)"

    def read(self, root: Path, **options: Any) -> PTBXLDataset:
        return PTBXLDataset(Path(root), **options)

    def writer(self, root: Path) -> PTBXLWriter:
        return PTBXLWriter(root)

    def write_synthetic(self, root: Path, *, n: int = 24, seed: int = 0) -> Path:
        from vitalens.synth.ptbxl import write_ptbxl_synth

        return write_ptbxl_synth(Path(root), n_records=n, seed=seed)
