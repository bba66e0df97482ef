"""Our ECG intervals (``ecg.intervals``, neurokit2) against the recording devices' own measurements.

Why: an interval shown beside a reference range must agree with what an ECG cart would print. The real files
in ``../shared/data/ecg/formats/`` that carry device measurements are the two GE MUSE XML exports (MUSE 9,
500 Hz), the HL7 aECG example (Mortara ELI250 representative-beat annotations) and the DICOM waveform file
(Mortara ELI 250, 1 kHz, SCP-ECG measurements in its WaveformAnnotationSequence). For each we compare HR, RR, PR,
QRS, QT, QTc (Bazett; MUSE "QTCorrected" and the aECG QTc are Bazett; the DICOM file does not name its QTc
formula, so its QTc row is indicative), QTc Fridericia (MUSE only) and the frontal QRS axis, and report the
difference per interval (ours − device) and the mean absolute difference. The aim is ±10 ms. Four records are a
small sample: a smoke test of agreement, not a validation study.

Run (from the repository root):
    .venv/bin/python bench/ecg_intervals.py

Prints a table and writes ``bench/results/ecg_intervals.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.analyzers.ecg_intervals import DELINEATOR, measure_ecg_intervals
from vitalens.io.ecg import read_ecg

REPO = Path(__file__).resolve().parents[1]


logger = logging.getLogger("bench.ecg_intervals")

#: (our key, device key, unit)
COMPARED: tuple[tuple[str, str, str], ...] = (
    ("HR_bpm", "HR_bpm", "bpm"),
    ("RR_ms", "RR_ms", "ms"),
    ("PR_ms", "PR_ms", "ms"),
    ("QRS_ms", "QRS_ms", "ms"),
    ("QT_ms", "QT_ms", "ms"),
    ("QTc_bazett_ms", "QTc_ms", "ms"),
    ("QTc_fridericia_ms", "QTc_fridericia_ms", "ms"),
    ("QRS_axis_deg", "QRS_axis_deg", "deg"),
)
AIM_MS = 10.0


def _files(formats_dir: Path) -> list[Path]:
    return (
        sorted((formats_dir / "ge_muse_xml").glob("*.xml"))
        + sorted((formats_dir / "hl7_aecg").glob("*.xml"))
        + sorted((formats_dir / "dicom").glob("*.dcm"))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(os.environ.get("VITALENS_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--formats-dir", type=Path, default=default_shared / "ecg" / "formats")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ecg_intervals.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    files = _files(args.formats_dir)
    if not files:
        print(f"no MUSE/aECG files under {args.formats_dir} (shared data absent?)")
        return 1
    rows: list[dict[str, Any]] = []
    diffs: dict[str, list[float]] = {ours: [] for ours, _, _ in COMPARED}
    for path in files:
        record = read_ecg(path)
        device = record.meta.get("device_measurements") or {}
        start = time.perf_counter()
        measured = measure_ecg_intervals(record)
        seconds = time.perf_counter() - start
        row: dict[str, Any] = {
            "file": f"{path.parent.name}/{path.name}",
            "format": record.source_format,
            "fs_hz": record.fs_hz,
            "seconds": round(seconds, 3),
            "intervals": {},
        }
        for ours_key, device_key, unit in COMPARED:
            ours, dev = measured.values.get(ours_key), device.get(device_key)
            diff = None if ours is None or dev is None else float(ours) - float(dev)
            if diff is not None:
                diffs[ours_key].append(diff)
            row["intervals"][ours_key] = {
                "ours": None if ours is None else round(float(ours), 1),
                "device": dev,
                "diff": None if diff is None else round(diff, 1),
                "unit": unit,
            }
        rows.append(row)
    summary: dict[str, Any] = {}
    for ours_key, _, unit in COMPARED:
        d = np.asarray(diffs[ours_key])
        summary[ours_key] = {
            "unit": unit,
            "n": int(d.size),
            "mean_abs_diff": None if not d.size else round(float(np.mean(np.abs(d))), 1),
            "mean_diff": None if not d.size else round(float(np.mean(d)), 1),
            "max_abs_diff": None if not d.size else round(float(np.max(np.abs(d))), 1),
            "within_10": None if not d.size or unit != "ms" else int(np.sum(np.abs(d) <= AIM_MS)),
        }

    header = f"{'file':34s} " + " ".join(f"{k.replace('_ms', '').replace('_bpm', ''):>18s}" for k, _, _ in COMPARED)
    print("ECG intervals: ours (device) [ours − device]")
    print(header)
    for row in rows:
        cells = []
        for key, _, _ in COMPARED:
            c = row["intervals"][key]
            if c["device"] is None:
                cells.append(f"{'—' if c['ours'] is None else format(c['ours'], '.0f'):>18s}")
            else:
                ours = "—" if c["ours"] is None else f"{c['ours']:.0f}"
                diff = "" if c["diff"] is None else f"[{c['diff']:+.0f}]"
                cells.append(f"{ours + ' (' + format(c['device'], 'g') + ') ' + diff:>18s}")
        print(f"{row['file']:34s} " + " ".join(cells))
    print(
        f"{'mean |ours − device|':34s} "
        + " ".join(
            f"{'—' if summary[k]['mean_abs_diff'] is None else format(summary[k]['mean_abs_diff'], '.1f'):>18s}"
            for k, _, _ in COMPARED
        )
    )
    print(f"aim: ±{AIM_MS:g} ms. {DECISION_SUPPORT_NOTICE}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "ecg_intervals",
        "what": "neurokit2-based interval measurements vs the recording devices' own (GE MUSE XML, HL7 aECG, DICOM)",
        "method": DELINEATOR,
        "aim_ms": AIM_MS,
        "summary": summary,
        "records": rows,
        "caveat": (
            f"{len(rows)} records with device measurements (a small sample): agreement smoke test, not a validation "
            "study; the delineation method was chosen on these same records (bench/results/intervals.json "
            "leave_one_out gives the figure of that choice on records it was not chosen on)"
        ),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "neurokit2": __import__("neurokit2").__version__,
        },
        "notice": DECISION_SUPPORT_NOTICE,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
