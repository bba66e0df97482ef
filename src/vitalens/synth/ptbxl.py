"""Synthetic twin of PTB-XL: a small dataset in exactly the published layout, with class-dependent morphology.

Why: tests, the offline demo and CI must exercise the real adapter (WFDB records, ``ptbxl_database.csv`` with
``scp_codes`` dict strings, ``strat_fold``, ``patient_id``, ``scp_statements.csv``) without the 3 GB dataset;
each superclass gets the morphology that defines it so a small net can learn it:

- NORM: the simulated sinus beat (``neurokit2.ecg_simulate``, its fast "simple" model);
- MI: pathological Q waves and ST elevation in the inferior leads (II, III, aVF);
- STTC: ST depression and T-wave inversion in I, aVL, V4–V6;
- CD: wide QRS (a delayed copy of the QRS, as in bundle-branch block);
- HYP: high QRS voltage in the precordial and lateral leads.

Example:
    >>> root = write_ptbxl_synth(tmp_path / "ptb-xl", n_records=20)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vitalens.data.ptbxl import PTBXL_LABELS, PTBXL_LEADS

__all__ = ["write_ptbxl_synth", "SYNTH_CODES", "synth_ecg"]

logger = logging.getLogger(__name__)

#: The SCP code (likelihood 100) each synthetic record of a superclass carries, plus the rhythm code SR.
SYNTH_CODES: dict[str, str] = {"NORM": "NORM", "MI": "IMI", "STTC": "NDT", "CD": "CLBBB", "HYP": "LVH"}

#: Rows of scp_statements.csv written by the twin (code, description, diagnostic, form, rhythm, class).
_STATEMENTS: tuple[tuple[str, str, float, float, float, str], ...] = (
    ("NORM", "normal ECG", 1.0, np.nan, np.nan, "NORM"),
    ("IMI", "inferior myocardial infarction", 1.0, np.nan, np.nan, "MI"),
    ("ASMI", "anteroseptal myocardial infarction", 1.0, np.nan, np.nan, "MI"),
    ("NDT", "non-diagnostic T abnormalities", 1.0, 1.0, np.nan, "STTC"),
    ("ISC_", "non-specific ischemic", 1.0, np.nan, np.nan, "STTC"),
    ("CLBBB", "complete left bundle branch block", 1.0, np.nan, np.nan, "CD"),
    ("IRBBB", "incomplete right bundle branch block", 1.0, np.nan, np.nan, "CD"),
    ("LVH", "left ventricular hypertrophy", 1.0, np.nan, np.nan, "HYP"),
    ("LVOLT", "low QRS voltages in the frontal and horizontal leads", np.nan, 1.0, np.nan, ""),
    ("SR", "sinus rhythm", np.nan, np.nan, 1.0, ""),
)

#: A fixed projection of the simulated beat onto the 12 leads (sign and gain per lead).
_LEAD_GAIN = np.array([0.6, 1.0, 0.45, -0.8, 0.25, 0.7, -0.5, 0.4, 0.8, 1.1, 1.0, 0.8], dtype=np.float32)
_IDX = {lead: i for i, lead in enumerate(PTBXL_LEADS)}


def _beats(base: np.ndarray, fs: int) -> np.ndarray:
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(base, distance=int(0.4 * fs), height=0.5 * float(base.max()))
    return peaks


def _window(n: int, centre: int, start_s: float, stop_s: float, fs: int) -> slice:
    return slice(max(0, centre + int(round(start_s * fs))), min(n, centre + int(round(stop_s * fs))))


def synth_ecg(label: str, *, fs: int = 100, duration_s: float = 10.0, seed: int = 0) -> np.ndarray:
    """One synthetic 12-lead ECG of superclass ``label`` in mV, ``(12, fs * duration_s)`` float32.

    Args:
        label: one of ``PTBXL_LABELS``.
        fs: sampling rate, Hz.
        duration_s: length, seconds.
        seed: seeds the simulator and the noise (same seed → same signal).
    """
    import neurokit2 as nk

    if label not in PTBXL_LABELS:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("PTB-XL superclass", label, PTBXL_LABELS)
    rng = np.random.default_rng(seed)
    n = int(round(fs * duration_s))
    hr = float(rng.uniform(55, 95))
    base = np.asarray(
        nk.ecg_simulate(
            duration=duration_s, sampling_rate=fs, heart_rate=hr, method="simple", noise=0.0, random_state=seed
        ),
        dtype=np.float32,
    )[:n]
    base = base - np.median(base)
    base = base / max(float(np.abs(base).max()), 1e-6)  # R wave ≈ 1 mV
    gains = _LEAD_GAIN * rng.uniform(0.85, 1.15, size=12).astype(np.float32)
    x = gains[:, None] * base[None, :]
    peaks = _beats(base, fs)
    qrs_mask = np.zeros(n, dtype=bool)
    for r in peaks:
        qrs_mask[_window(n, r, -0.05, 0.05, fs)] = True
    if label == "MI":
        for r in peaks:
            for lead in ("II", "III", "aVF"):
                x[_IDX[lead], _window(n, r, -0.06, -0.02, fs)] -= 0.35
                x[_IDX[lead], _window(n, r, 0.06, 0.26, fs)] += 0.25
    elif label == "STTC":
        for r in peaks:
            for lead in ("I", "aVL", "V4", "V5", "V6"):
                i = _IDX[lead]
                x[i, _window(n, r, 0.06, 0.18, fs)] -= 0.15
                t = _window(n, r, 0.18, 0.42, fs)
                x[i, t] = -x[i, t]
    elif label == "CD":
        shift = int(round(0.06 * fs))
        qrs = np.where(qrs_mask[None, :], x, 0.0)
        delayed = np.zeros_like(qrs)
        delayed[:, shift:] = qrs[:, :-shift]
        x = x + 0.8 * delayed
    elif label == "HYP":
        scale = np.ones(12, dtype=np.float32)
        for lead in ("I", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"):
            scale[_IDX[lead]] = 2.6
        x = np.where(qrs_mask[None, :], x * scale[:, None], x)
    t = np.arange(n) / fs
    wander = 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
    x = x + wander[None, :] + rng.normal(0.0, 0.015, size=x.shape)
    return x.astype(np.float32)


def _write_record(folder: Path, name: str, signal: np.ndarray, fs: int) -> None:
    from vitalens.io.ecg import write_wfdb

    write_wfdb(folder, name, signal, fs, tuple(PTBXL_LEADS))


def write_ptbxl_synth(root: Path | str, n_records: int = 60, *, seed: int = 0, sampling_rate: int = 100) -> Path:
    """Write a synthetic PTB-XL in its published layout under ``root`` and return ``root``.

    Record ``i`` (``ecg_id = i + 1``) has superclass ``PTBXL_LABELS[(i + i // 10) % 5]``; every tenth record of a
    non-normal class also carries a second class (multilabel). Two consecutive records share a patient, and
    patients are spread over the ten ``strat_fold`` values (so every fold holds several classes).
    ``records100/`` is always written; ``records500/`` too when ``sampling_rate`` is 500.

    Args:
        root: output folder (created).
        n_records: number of ECGs (≥ 1).
        seed: seeds every record (same seed → byte-identical dataset).
        sampling_rate: 100 or 500 Hz.
    """
    if sampling_rate not in (100, 500):
        raise ValueError(f"sampling_rate must be 100 or 500 Hz, got {sampling_rate}")
    if n_records < 1:
        raise ValueError(f"n_records must be ≥ 1, got {n_records}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_records):
        ecg_id = i + 1
        label = PTBXL_LABELS[(i + i // 10) % len(PTBXL_LABELS)]
        codes: dict[str, float] = {SYNTH_CODES[label]: 100.0, "SR": 0.0}
        if label != "NORM" and i % 10 == 9:
            codes["ISC_"] = 50.0
        patient = i // 2
        fold = patient % 10 + 1
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        lr, hr = f"records100/{sub}/{ecg_id:05d}_lr", f"records500/{sub}/{ecg_id:05d}_hr"
        signal = synth_ecg(label, fs=sampling_rate, seed=seed * 100_003 + i)
        if sampling_rate == 500:
            _write_record(root / Path(hr).parent, Path(hr).name, signal, 500)
            from scipy.signal import decimate

            signal = decimate(signal, 5, axis=1, zero_phase=True).astype(np.float32)
        _write_record(root / Path(lr).parent, Path(lr).name, signal, 100)
        age = float(rng.integers(20, 90)) if i % 17 != 16 else 300.0
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": float(10_000 + patient),
                "age": age,
                "sex": int(rng.integers(0, 2)),
                "height": np.nan,
                "weight": float(rng.integers(50, 100)),
                "report": f"synthetic {label}",
                "scp_codes": str(codes),
                "validated_by_human": True,
                "strat_fold": fold,
                "filename_lr": lr,
                "filename_hr": hr,
            }
        )
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    statements = pd.DataFrame(
        _STATEMENTS, columns=["", "description", "diagnostic", "form", "rhythm", "diagnostic_class"]
    )
    statements["diagnostic_class"] = statements["diagnostic_class"].replace("", np.nan)
    statements.to_csv(root / "scp_statements.csv", index=False)
    (root / "SYNTHETIC.md").write_text(
        "Synthetic twin of PTB-XL written by vitalens.synth.ptbxl: not real patients, not for clinical use.\n",
        encoding="utf-8",
    )
    logger.info("wrote %d synthetic PTB-XL records at %d Hz to %s", n_records, sampling_rate, root)
    return root
