"""Synthetic PTB-XL twin: layout, determinism, class-dependent morphology."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from vitalens.synth.ptbxl import synth_ecg, write_ptbxl_synth


def test_layout(tmp_path: Path) -> None:
    root = write_ptbxl_synth(tmp_path / "ptb", n_records=12, seed=0)
    db = pd.read_csv(root / "ptbxl_database.csv")
    assert {"ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr", "filename_hr"} <= set(
        db.columns
    )
    assert isinstance(ast.literal_eval(db.loc[0, "scp_codes"]), dict)
    assert (root / "records100" / "00000" / "00001_lr.hea").is_file()
    assert (root / "SYNTHETIC.md").is_file()
    statements = pd.read_csv(root / "scp_statements.csv", index_col=0)
    assert statements.loc["IMI", "diagnostic_class"] == "MI"
    assert db["strat_fold"].between(1, 10).all()


def test_deterministic_and_morphology() -> None:
    a, b = synth_ecg("MI", seed=3), synth_ecg("MI", seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12, 1000) and a.dtype == np.float32
    norm, hyp = synth_ecg("NORM", seed=5), synth_ecg("HYP", seed=5)
    v5 = 10  # V5: high voltage raises the QRS amplitude
    assert np.ptp(hyp[v5]) > 1.8 * np.ptp(norm[v5])
