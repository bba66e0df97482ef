"""PTB-XL adapter: 12-lead 10 s ECGs with the five diagnostic superclasses, read from the published layout.

Why an adapter of its own: PTB-XL's labels are SCP-ECG statement codes with likelihoods (``scp_codes`` dict
strings) that must be aggregated to superclasses *exactly* as the dataset's own example does, its splits are
the recommended stratified folds (1–8 train, 9 validation, 10 test, patient-level by construction), and the
copy a user has may be a subset (``SUBSET.csv`` in ``../shared``): the adapter uses the records present and
says how many are missing.

Reference: Wagner et al. (2020) "PTB-XL, a large publicly available electrocardiography dataset", Sci Data
7:154; the aggregation follows the dataset's ``example_physionet.py``.

Example:
    >>> ds = PTBXLDataset(Path("ptb-xl"), folds=TRAIN_FOLDS)     # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, y.shape                              # doctest: +SKIP
    ((12, 1000), (5,))
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalens.errors import InputError

__all__ = [
    "PTBXL_LABELS",
    "PTBXL_LABEL_NAMES",
    "PTBXL_LEADS",
    "TRAIN_FOLDS",
    "VAL_FOLDS",
    "TEST_FOLDS",
    "AGE_BANDS",
    "PTBXLDataset",
    "aggregate_superclasses",
    "read_scp_statements",
    "age_band",
    "lead_stats",
]

logger = logging.getLogger(__name__)

#: Output order of every PTB-XL model (the benchmark's superdiagnostic order).
PTBXL_LABELS: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")

PTBXL_LABEL_NAMES: dict[str, str] = {
    "NORM": "Normal ECG",
    "MI": "Myocardial infarction",
    "STTC": "ST/T change",
    "CD": "Conduction disturbance",
    "HYP": "Hypertrophy",
}

#: Lead order of the WFDB records (PTB-XL header order, standard spelling; the headers write ``AVR``).
PTBXL_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
VAL_FOLDS: tuple[int, ...] = (9,)
TEST_FOLDS: tuple[int, ...] = (10,)

#: Age bands (years, lower bound inclusive) for subgroup metrics; PTB-XL writes ages > 89 as 300.
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<40", 0.0, 40.0),
    ("40-59", 40.0, 60.0),
    ("60-79", 60.0, 80.0),
    (">=80", 80.0, float("inf")),
)


def age_band(age_years: float | None) -> str:
    """The band of ``age_years`` (``AGE_BANDS``; 40 → '40-59', 80 → '>=80'); 'unknown' when missing."""
    from vitalens.data.splits import age_band as _band

    return _band(age_years, AGE_BANDS)
    for name, lo, hi in AGE_BANDS:
        if lo <= age_years < hi:
            return name
    return "unknown"


def read_scp_statements(root: Path) -> pd.DataFrame:
    """``scp_statements.csv`` restricted to diagnostic statements (``diagnostic == 1``), indexed by code."""
    path = Path(root) / "scp_statements.csv"
    if not path.is_file():
        raise InputError(f"{path} not found: not a PTB-XL folder", field="data")
    agg = pd.read_csv(path, index_col=0)
    return agg[agg["diagnostic"] == 1]


def aggregate_superclasses(scp_codes: dict[str, float], diagnostic: pd.DataFrame) -> list[str]:
    """Superclasses of one record: the ``diagnostic_class`` of each diagnostic code, any likelihood.

    Mirrors the dataset's example (``aggregate_diagnostic``): every code present in ``diagnostic`` (the
    ``diagnostic == 1`` rows of ``scp_statements.csv``) contributes its class, even at likelihood 0.

    Returns:
        The distinct superclasses in ``PTBXL_LABELS`` order (empty when the record has no diagnostic code).
    """
    classes = {str(diagnostic.loc[code, "diagnostic_class"]) for code in scp_codes if code in diagnostic.index}
    return [label for label in PTBXL_LABELS if label in classes]


def _parse_codes(value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return value
    parsed = ast.literal_eval(str(value))
    if not isinstance(parsed, dict):
        raise InputError(f"scp_codes must be a dict string, got {value!r}", field="scp_codes")
    return parsed


class PTBXLDataset:
    """PTB-XL records of the chosen folds, present on disk, with superclass targets and metadata.

    Signals are read with wfdb on first access and kept in memory (float32, ``(n, 12, samples)``; 6,942
    records at 100 Hz are ~330 MB).

    Args:
        root: folder holding ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records100/``
            (or ``records500/``).
        sampling_rate: 100 (``filename_lr``) or 500 (``filename_hr``), Hz.
        folds: ``strat_fold`` values to keep (``None``: all).
        drop_unlabelled: drop records without any diagnostic superclass (as the PTB-XL benchmark does).
        stats: per-lead ``(mean, std)`` in mV, each ``(12,)``, to z-score signals with; ``None`` returns mV.
            Compute them on the training folds with :func:`lead_stats`.
    """

    labels: tuple[str, ...] = PTBXL_LABELS
    leads: tuple[str, ...] = PTBXL_LEADS

    def __init__(
        self,
        root: Path | str,
        *,
        sampling_rate: int = 100,
        folds: Iterable[int] | None = None,
        drop_unlabelled: bool = True,
        stats: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if sampling_rate not in (100, 500):
            raise InputError(f"sampling_rate must be 100 or 500 Hz, got {sampling_rate}", field="sampling_rate")
        self.root = Path(root)
        self.sampling_rate = sampling_rate
        self.folds = tuple(sorted(int(f) for f in folds)) if folds is not None else None
        db_path = self.root / "ptbxl_database.csv"
        if not db_path.is_file():
            raise InputError(f"{db_path} not found: not a PTB-XL folder", field="data")
        db = pd.read_csv(db_path, index_col="ecg_id")
        diagnostic = read_scp_statements(self.root)
        db["scp_codes"] = db["scp_codes"].apply(_parse_codes)
        db["superclasses"] = db["scp_codes"].apply(lambda c: aggregate_superclasses(c, diagnostic))
        if self.folds is not None:
            db = db[db["strat_fold"].isin(self.folds)]
        column = "filename_lr" if sampling_rate == 100 else "filename_hr"
        # ``astype(bool)``: over no rows (no record of the folds) ``apply`` gives an object Series whose ``~``/sum
        # is the empty string, and ``int('')`` failed the whole read.
        present = (
            db[column]
            .apply(lambda f: (self.root / f"{f}.hea").is_file() and (self.root / f"{f}.dat").is_file())
            .astype(bool)
        )
        n_missing = int((~present).sum())
        if n_missing:
            logger.info(
                "PTB-XL %s: %d of %d records of folds %s are missing on disk; using the %d present",
                self.root,
                n_missing,
                len(db),
                self.folds or "all",
                int(present.sum()),
            )
        db = db[present]
        if drop_unlabelled:
            empty = db["superclasses"].apply(len) == 0
            if empty.any():
                logger.info("PTB-XL: dropping %d records without a diagnostic superclass", int(empty.sum()))
            db = db[~empty]
        self.n_missing = n_missing
        self.frame = db
        self.filenames: list[str] = db[column].tolist()
        self.ecg_ids: np.ndarray = db.index.to_numpy()
        self.patient_ids: np.ndarray = db["patient_id"].to_numpy()
        self.strat_folds: np.ndarray = db["strat_fold"].to_numpy().astype(int)
        self.targets: np.ndarray = np.array(
            [[label in classes for label in PTBXL_LABELS] for classes in db["superclasses"]], dtype=np.float32
        ).reshape(len(db), len(PTBXL_LABELS))
        ages = db["age"].to_numpy(dtype=float)
        self.age_years: np.ndarray = np.where(ages >= 300, 90.0, ages)  # PTB-XL codes ages > 89 as 300
        # PTB-XL: sex 0 = male, 1 = female
        self.sex: list[str] = ["male" if s == 0 else "female" if s == 1 else "unknown" for s in db["sex"].tolist()]
        self.stats = stats
        self._signals: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.filenames)

    def read_record(self, i: int) -> np.ndarray:
        """Record ``i`` in mV, ``(12, samples)`` float32, leads in ``PTBXL_LEADS`` order."""
        import wfdb

        signal, fields = wfdb.rdsamp(str(self.root / self.filenames[i]))
        names = [n.upper() for n in fields["sig_name"]]
        order = [names.index(lead.upper()) for lead in PTBXL_LEADS]
        x = np.nan_to_num(signal[:, order].T.astype(np.float32))
        return x

    @property
    def signals(self) -> np.ndarray:
        """All records in mV, ``(n, 12, samples)`` float32 (read once)."""
        if self._signals is None:
            n_samples = 10 * self.sampling_rate
            out = np.zeros((len(self), len(PTBXL_LEADS), n_samples), dtype=np.float32)
            for i in range(len(self)):
                x = self.read_record(i)
                t = min(n_samples, x.shape[1])
                out[i, :, :t] = x[:, :t]
            self._signals = out
            logger.info("PTB-XL: read %d records at %d Hz from %s", len(self), self.sampling_rate, self.root)
        return self._signals

    def normalized(self, x: np.ndarray) -> np.ndarray:
        """``x`` z-scored per lead with ``self.stats`` (unchanged when no stats were given)."""
        if self.stats is None:
            return x
        mean, std = self.stats
        shape = (-1, 1) if x.ndim == 2 else (1, -1, 1)
        return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(signal (12, samples) float32, target (5,) float32)``; z-scored when ``stats`` is set."""
        return self.normalized(self.signals[i]), self.targets[i]

    def metadata(self) -> pd.DataFrame:
        """Row-aligned ``ecg_id, patient_id, strat_fold, age_years, age_band, sex`` for subgroup metrics."""
        return pd.DataFrame(
            {
                "ecg_id": self.ecg_ids,
                "patient_id": self.patient_ids,
                "strat_fold": self.strat_folds,
                "age_years": self.age_years,
                "age_band": [age_band(a) for a in self.age_years],
                "sex": self.sex,
            }
        )

    def summary(self) -> dict[str, Any]:
        """Counts for a model card: records, patients, folds, positives per class, records missing."""
        return {
            "records": len(self),
            "patients": int(len(np.unique(self.patient_ids))),
            "folds": list(self.folds) if self.folds else sorted({int(f) for f in self.strat_folds}),
            "positives": {label: int(self.targets[:, j].sum()) for j, label in enumerate(PTBXL_LABELS)},
            "missing_on_disk": self.n_missing,
        }


def lead_stats(signals: np.ndarray, *, min_std: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead mean and standard deviation (mV) over records and samples of ``signals`` (n, leads, samples).

    Compute them on the *training folds only* and pass them to every split (no test-set leakage).
    A lead with std below ``min_std`` gets ``min_std`` so z-scoring never divides by zero.
    """
    if signals.ndim != 3:
        raise InputError(f"signals must be (records, leads, samples), got shape {signals.shape}", field="signals")
    mean = signals.mean(axis=(0, 2), dtype=np.float64)
    std = np.maximum(signals.std(axis=(0, 2), dtype=np.float64), min_std)
    return mean.astype(np.float32), std.astype(np.float32)
