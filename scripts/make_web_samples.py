"""Write the web app's bundled sample cases (synthetic twins only) into ``src/vitalens/web/static/samples/``.

Why synthetic: the ODIR images carry no stated licence, so no real fundus photograph is bundled; the sample
cases are procedural fundus pairs from ``vitalens.synth.odir`` and simulated 12-lead ECGs from
``vitalens.synth.ptbxl``, labelled as synthetic everywhere they are shown. Deterministic (fixed seeds); run
once and commit the output:

    .venv/bin/python scripts/make_web_samples.py
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from vitalens.data.ptbxl import PTBXL_LEADS
from vitalens.synth.odir import EyeFindings, render_fundus
from vitalens.synth.ptbxl import synth_ecg

__all__ = ["CASES", "write_samples"]

logger = logging.getLogger(__name__)

OUT = Path(__file__).resolve().parents[1] / "src" / "vitalens" / "web" / "static" / "samples"
_CSV_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: id → (title, age, per-eye keywords, ECG superclass, seed)
CASES: dict[str, tuple[str, int, dict[str, str], str, int]] = {
    "synthetic-normal": ("Synthetic twin: normal fundus, normal ECG", 45, {}, "NORM", 1),
    "synthetic-dr": (
        "Synthetic twin: diabetic retinopathy signs, ST/T changes",
        63,
        {"D": "moderate non proliferative retinopathy"},
        "STTC",
        2,
    ),
    "synthetic-hypertensive": (
        "Synthetic twin: hypertensive retinopathy signs, hypertrophy ECG",
        71,
        {"H": "hypertensive retinopathy"},
        "HYP",
        3,
    ),
}


def _ecg_csv(label: str, seed: int, fs: int = 250) -> str:
    signal = synth_ecg(label, fs=fs, duration_s=10.0, seed=seed)
    if tuple(PTBXL_LEADS) != _CSV_LEADS:
        raise RuntimeError(f"lead order {PTBXL_LEADS} differs from the CSV header {_CSV_LEADS}")
    return _record_csv(signal, fs)


#: A real 12-lead ECG whose licence allows redistribution: PTB-XL ecg_id 6000 (fold 10, "sinus rhythm", NORM),
#: CC BY 4.0 (Wagner et al., Sci Data 2020), as shipped at 500 Hz in the PhysioNet/CinC 2021 training set.
REAL_ECG = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg" / "formats" / "cinc2021_wfdb_mat" / "HR06000.hea"
)


def _record_csv(signal: np.ndarray, fs: float) -> str:
    rows = ["time_s," + ",".join(f"{lead} (mV)" for lead in _CSV_LEADS)]
    for i in range(signal.shape[1]):
        rows.append(f"{i / fs:.3f}," + ",".join(f"{v:.3f}" for v in signal[:, i]))
    return "\n".join(rows) + "\n"


def _real_ecg_case(out: Path, size: int) -> dict[str, object] | None:
    """Synthetic fundus pair + the real PTB-XL ECG 6000 (resampled to 250 Hz), when ../shared is present."""
    from vitalens.io.ecg import read_ecg, resample

    if not REAL_ECG.is_file():
        logger.warning("real ECG sample skipped: %s not found", REAL_ECG)
        return None
    record = resample(read_ecg(REAL_ECG).to_standard12(), 250.0)
    case_id = "ptbxl-6000-real-ecg"
    rng = np.random.default_rng(4)
    files = {}
    for side in ("left", "right"):
        image = render_fundus(rng, size, side, EyeFindings(keywords={}, dr_grade=0))
        name = f"{case_id}-{side}.jpg"
        Image.fromarray(image).save(out / name, format="JPEG", quality=82)
        files[f"fundus_{side}"] = name
    (out / f"{case_id}-ecg.csv").write_text(_record_csv(record.signal, record.fs_hz), encoding="utf-8")
    files["ecg"] = f"{case_id}-ecg.csv"
    return {
        "id": case_id,
        "title": "Real ECG (PTB-XL record 6000, sinus rhythm; CC BY 4.0) with synthetic fundus photographs",
        "age_years": 59,
        "synthetic": True,
        "files": files,
    }


def write_samples(out: Path = OUT, *, size: int = 320) -> Path:
    """Write every case of :data:`CASES` plus ``index.json`` under ``out``; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for case_id, (title, age, keywords, ecg_label, seed) in CASES.items():
        rng = np.random.default_rng(seed)
        files = {}
        for side in ("left", "right"):
            findings = EyeFindings(keywords=dict(keywords), dr_grade=2 if "D" in keywords else 0)
            image = render_fundus(rng, size, side, findings)
            name = f"{case_id}-{side}.jpg"
            Image.fromarray(image).save(out / name, format="JPEG", quality=82)
            files[f"fundus_{side}"] = name
        ecg_name = f"{case_id}-ecg.csv"
        (out / ecg_name).write_text(_ecg_csv(ecg_label, seed), encoding="utf-8")
        files["ecg"] = ecg_name
        index.append({"id": case_id, "title": title, "age_years": age, "synthetic": True, "files": files})
    real = _real_ecg_case(out, size)
    if real is not None:
        index.append(real)
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    (out / "SYNTHETIC.md").write_text(
        "# Sample cases: synthetic twins\n\nEvery file here is synthetic: procedural fundus photographs from "
        "`vitalens.synth.odir` and simulated 12-lead ECGs (mV, 250 Hz) from `vitalens.synth.ptbxl`, made by "
        "`scripts/make_web_samples.py`. They contain no patient data and are not real cases.\n\n"
        "One exception: `ptbxl-6000-real-ecg-ecg.csv` is a real, de-identified 12-lead ECG, PTB-XL ecg_id 6000 "
        "(resampled to 250 Hz), under CC BY 4.0. Cite: Wagner P. et al. PTB-XL, a large publicly available "
        "electrocardiography dataset. Sci Data 7, 154 (2020); Goldberger A. et al., PhysioNet, Circulation 101 "
        "(2000). Its fundus photographs are synthetic.\n",
        encoding="utf-8",
    )
    logger.info("wrote %d sample cases to %s", len(index), out)
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    write_samples()
