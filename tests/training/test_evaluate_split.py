"""``evaluate()`` / ``vitalens evaluate``: the card's own preprocessing, and only the split it scores.

A folder holding only test records (a hospital's fold-10 export in PTB-XL layout, a test-only ODIR folder) scores
exactly like the full dataset, and a folder whose training records are different gives the same result: nothing
is refitted on the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vitalens.cli import app
from vitalens.training.evaluate import evaluate

REPO = Path(__file__).resolve().parents[2]
ECG_ARTIFACT = REPO / "models" / "ecg-ptbxl"

TINY_ODIR = {
    "net.name": "odir_test",
    "net.pretrained": False,
    "task.image_size": 64,
    "train.max_epochs": 1,
    "train.batch_size": 8,
    "train.unfreeze_after": 1,
    "train.progress_bar": False,
}


def _ptbxl_subset(src: Path, dst: Path, keep: pd.DataFrame) -> Path:
    """A PTB-XL folder holding only the rows ``keep`` of ``src`` (database, statements, their 100 Hz records)."""
    dst.mkdir(parents=True)
    keep.to_csv(dst / "ptbxl_database.csv")
    shutil.copy(src / "scp_statements.csv", dst / "scp_statements.csv")
    for rel in keep["filename_lr"]:
        for ext in (".hea", ".dat"):
            target = dst / f"{rel}{ext}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / f"{rel}{ext}", target)
    return dst


def _rewrite_training_records(root: Path, db: pd.DataFrame) -> None:
    """Make every non-fold-10 record different: signals ×3 + 0.2 mV and all labels set to HYP."""
    import wfdb

    from vitalens.data.ptbxl import PTBXL_LEADS
    from vitalens.io.ecg import write_wfdb

    for rel in db.loc[db["strat_fold"] != 10, "filename_lr"]:
        signal, _ = wfdb.rdsamp(str(root / rel))
        write_wfdb((root / rel).parent, Path(rel).name, (signal * 3.0 + 0.2).T, 100, tuple(PTBXL_LEADS))
    db = db.copy()
    db.loc[db["strat_fold"] != 10, "scp_codes"] = str({"LVH": 100.0})
    db.to_csv(root / "ptbxl_database.csv")


def _scores(report: dict) -> str:
    """The test split's metrics as canonical JSON (NaN and None alike: a report read back from disk has None)."""
    from vitalens.training.report import nan_to_none

    t = report["splits"]["test"]
    keep = {k: t.get(k) for k in ("n", "macro_auroc", "micro_auroc", "macro_f1", "ece", "per_label", "odir_score")}
    return json.dumps(nan_to_none(keep), sort_keys=True)


def _bundled_ecg() -> Path:
    if not (ECG_ARTIFACT / "card.json").is_file():
        pytest.skip("bundled models/ecg-ptbxl absent")
    return ECG_ARTIFACT


def test_ecg_fold10_only_folder_scores_like_the_full_twin(tmp_path: Path) -> None:
    from vitalens.synth.ptbxl import write_ptbxl_synth

    artifact = _bundled_ecg()
    full = write_ptbxl_synth(tmp_path / "full", n_records=40, seed=3)
    db = pd.read_csv(full / "ptbxl_database.csv", index_col="ecg_id")
    assert (db["strat_fold"] == 10).sum() >= 2 and (db["strat_fold"] != 10).any()
    only10 = _ptbxl_subset(full, tmp_path / "only10", db[db["strat_fold"] == 10])
    (only10 / "SYNTHETIC").write_text("twin\n")
    other = tmp_path / "other-training"
    shutil.copytree(full, other)
    _rewrite_training_records(other, db)

    reports = {}
    for name, root in (("full", full), ("only10", only10), ("other", other)):
        out = tmp_path / f"eval-{name}"
        result = CliRunner().invoke(
            app, ["evaluate", str(artifact), "--data", str(root), "--folds", "10", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert "Input contains NaN" not in result.output
        reports[name] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert reports["full"]["splits"]["test"]["n"] == int((db["strat_fold"] == 10).sum())
    assert _scores(reports["only10"]) == _scores(reports["full"]) == _scores(reports["other"])
    assert reports["full"]["evaluated_on"]["n_records"] == reports["full"]["splits"]["test"]["n"]
    assert "strat_fold [10]" in reports["only10"]["evaluated_on"]["selection"]
    assert "warning" not in reports["only10"]
    test = reports["full"]["splits"]["test"]
    c = test["ece_if_calibrated"]
    assert set(c) == {"mean", "low", "high", "p_value", "n_resamples", "seed"} and c["n_resamples"] == 2000
    assert 0.0 <= c["low"] <= c["mean"] <= c["high"] and 1 / 2001 <= c["p_value"] <= 1.0
    assert {"ece", "ece_uncalibrated", "reliability"} <= set(test)  # the existing keys stay
    md = (tmp_path / "eval-full" / "report.md").read_text(encoding="utf-8")
    assert "ECE a perfectly calibrated model would show at this n:" in md


def test_ecg_evaluate_without_out_writes_nothing(tmp_path: Path) -> None:
    from vitalens.synth.ptbxl import write_ptbxl_synth

    artifact = _bundled_ecg()
    root = write_ptbxl_synth(tmp_path / "twin", n_records=30, seed=5)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["evaluate", str(artifact), "--data", str(root), "--folds", "10"])
    assert result.exit_code == 0, result.output
    assert "Scored" in result.output and "not a diagnosis" in result.output.lower()
    assert "ECE if perfectly calibrated (n = " in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_ecg_folds_absent_from_the_folder_is_one_line_error(tmp_path: Path) -> None:
    from vitalens.synth.ptbxl import write_ptbxl_synth

    artifact = _bundled_ecg()
    full = write_ptbxl_synth(tmp_path / "full", n_records=30, seed=6)
    db = pd.read_csv(full / "ptbxl_database.csv", index_col="ecg_id")
    only10 = _ptbxl_subset(full, tmp_path / "only10", db[db["strat_fold"] == 10])
    result = CliRunner().invoke(app, ["evaluate", str(artifact), "--data", str(only10), "--folds", "3"])
    assert result.exit_code == 2
    assert "no labelled PTB-XL record of strat_fold [3]" in result.output


def test_ecg_real_fold10_subset_scores_like_with_its_training_folds(tmp_path: Path) -> None:
    """Real PTB-XL (../shared/data): 120 fold-10 records alone, and with 150 records of folds 1–9 beside them."""
    from tests.conftest import shared_data_path

    src = shared_data_path("ecg", "ptb-xl")
    artifact = _bundled_ecg()
    db = pd.read_csv(src / "ptbxl_database.csv", index_col="ecg_id")
    present = db[db["filename_lr"].map(lambda f: (src / f"{f}.dat").is_file())]
    fold10 = present[present["strat_fold"] == 10].iloc[:120]
    training = present[present["strat_fold"] != 10].iloc[:150]
    if len(fold10) < 50 or len(training) < 50:
        pytest.skip("the PTB-XL subset holds too few records of fold 10 or folds 1-9")
    only10 = _ptbxl_subset(src, tmp_path / "only10", fold10)
    mixed = _ptbxl_subset(src, tmp_path / "mixed", pd.concat([fold10, training]).sort_index())
    a = evaluate(artifact, data=only10, split="test", device="cpu", overrides={"task.test_folds": [10]})
    b = evaluate(artifact, data=mixed, split="test", device="cpu", overrides={"task.test_folds": [10]})
    assert a["splits"]["test"]["n"] == b["splits"]["test"]["n"] > 0
    assert _scores(a) == _scores(b)
    assert a["evaluated_on"]["provenance"] == "real"
    assert np.isfinite(a["splits"]["test"]["macro_auroc"])


# -- fundus.odir ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def odir_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from vitalens.synth.odir import write_odir_synth
    from vitalens.training.engine import train

    base = tmp_path_factory.mktemp("odir-eval")
    root = write_odir_synth(base / "odir", n_patients=40, seed=2, image_size=64)
    train("fundus.odir", data=root, out=base / "run", overrides=TINY_ODIR)
    return base / "run" / "artifact", root


def _odir_subset(src: Path, dst: Path, ids: set[str]) -> Path:
    from vitalens.data.odir import find_odir_image_dir, find_odir_sheet

    sheet = find_odir_sheet(src)
    frame = pd.read_csv(sheet, dtype={"ID": str})
    keep = frame[frame["ID"].astype(str).isin(ids)]
    images = find_odir_image_dir(src)
    (dst / images.name).mkdir(parents=True)
    keep.to_csv(dst / sheet.name, index=False)
    for col in ("Left-Fundus", "Right-Fundus"):
        for name in keep[col]:
            shutil.copy(images / name, dst / images.name / name)
    return dst


def test_odir_card_lists_the_split_records(odir_run: tuple[Path, Path]) -> None:
    from vitalens.artifacts import load_model
    from vitalens.data.odir import OdirDataset

    artifact, root = odir_run
    _, card = load_model(artifact, device="cpu")
    records = card.extra["records"]
    listed = [i for s in ("train", "val", "test") for i in records[s]]
    assert sorted(listed) == sorted(str(i) for i in OdirDataset(root).patient_ids)
    assert len(set(listed)) == len(listed)


def test_odir_test_only_folder_scores_like_the_full_folder(odir_run: tuple[Path, Path], tmp_path: Path) -> None:
    from vitalens.artifacts import load_model

    artifact, root = odir_run
    _, card = load_model(artifact, device="cpu")
    test_ids = {str(i) for i in card.extra["records"]["test"]}
    only_test = _odir_subset(root, tmp_path / "test-only", test_ids)
    other = tmp_path / "other-training"
    shutil.copytree(root, other)
    sheet = other / "labels.csv"  # the twin's sheet (found before its full_df.csv)
    frame = pd.read_csv(sheet, dtype={"ID": str})
    train_rows = ~frame["ID"].isin(test_ids)
    frame.loc[train_rows, ["N", "D", "G", "C", "A", "H", "M", "O"]] = [0, 1, 1, 0, 0, 0, 0, 1]
    frame.loc[train_rows, "Patient Age"] = 20
    frame.to_csv(sheet, index=False)

    full = evaluate(artifact, data=root, split="test", device="cpu")
    trained = json.loads((artifact.parent / "report.json").read_text(encoding="utf-8"))["splits"]["test"]
    assert full["splits"]["test"]["n"] == len(test_ids) == trained["n"]
    assert full["splits"]["test"]["macro_auroc"] == pytest.approx(trained["macro_auroc"], abs=1e-9, nan_ok=True)
    result = CliRunner().invoke(
        app, ["evaluate", str(artifact), "--data", str(only_test), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    alone = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    changed = evaluate(artifact, data=other, split="test", device="cpu")
    assert _scores(alone) == _scores(full) == _scores(changed)
    assert alone["evaluated_on"]["n_excluded"] == 0 and full["evaluated_on"]["n_excluded"] == 40 - len(test_ids)
    assert "Evaluated on" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_odir_external_folder_is_all_test_and_train_split_is_the_cards(
    odir_run: tuple[Path, Path], tmp_path: Path
) -> None:
    from vitalens.artifacts import load_model
    from vitalens.synth.odir import write_odir_synth

    artifact, root = odir_run
    _, card = load_model(artifact, device="cpu")
    external = write_odir_synth(tmp_path / "external", n_patients=12, seed=9, image_size=64)
    frame = pd.read_csv(external / "labels.csv", dtype={"ID": str})
    frame["ID"] = [f"ext-{i}" for i in range(len(frame))]  # IDs the card does not know
    frame.to_csv(external / "labels.csv", index=False)
    report = evaluate(artifact, data=external, split="test", device="cpu")
    assert report["splits"]["test"]["n"] == 12 and report["evaluated_on"]["n_excluded"] == 0
    train = evaluate(artifact, data=root, split="train", device="cpu")
    assert train["splits"]["train"]["n"] == len(card.extra["records"]["train"])
    assert "seen in training" in train["warning"]


def test_odir_card_without_records_recomputes_and_warns(odir_run: tuple[Path, Path], tmp_path: Path) -> None:
    artifact, root = odir_run
    old = tmp_path / "old-artifact"
    shutil.copytree(artifact, old)
    card = json.loads((old / "card.json").read_text(encoding="utf-8"))
    del card["extra"]["records"]
    (old / "card.json").write_text(json.dumps(card), encoding="utf-8")
    report = evaluate(old, data=root, split="test", device="cpu")
    trained = json.loads((artifact.parent / "report.json").read_text(encoding="utf-8"))["splits"]["test"]
    assert report["splits"]["test"]["n"] == trained["n"]
    assert "lists no split records" in report["warning"]


def test_ece_if_calibrated_is_the_consistency_summary_and_reads_in_the_markdown() -> None:
    from vitalens.training.calibration import ece_consistency
    from vitalens.training.evaluate import ece_if_calibrated
    from vitalens.training.report import render_markdown

    # saturated forecasts, labels the other way round: a calibrated model's ECE is exactly 0, observed ECE 1
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    c = ece_if_calibrated(p, 1 - p, n_bins=10, seed=0, n_resamples=100)
    assert c == {"mean": 0.0, "low": 0.0, "high": 0.0, "p_value": 1 / 101, "n_resamples": 100, "seed": 0}
    rng = np.random.default_rng(0)
    q = rng.random((20, 3))
    t = (rng.random(q.shape) < q).astype(int)
    assert ece_if_calibrated(q, t, n_bins=10, seed=4) == ece_consistency(q, t, 10, n_resamples=2000, seed=4).summary()
    split = {"n": 2, "per_label": {}, "ece": 1.0, "ece_if_calibrated": c}
    md = render_markdown({"analyzer": "x", "splits": {"test": split}})
    assert (
        "ECE a perfectly calibrated model would show at this n: 0.000 [0.000, 0.000] (consistency resampling, "
        "100 label sets); p = 0.010 for the observed ECE"
    ) in md
    split["ece_if_calibrated"] = {**c, "p_value": 1 / 2001, "n_resamples": 2000}
    assert "p < 0.001 for the observed ECE" in render_markdown({"analyzer": "x", "splits": {"test": split}})
