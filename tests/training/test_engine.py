"""End to end on a 24-patient synthetic ODIR twin with the tiny ``odir_test`` net: train, artifact, report,
thresholds from validation only, evaluate, resume."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vitalens.artifacts import load_model
from vitalens.errors import InputError, UnknownNameError
from vitalens.risk.thresholds import choose_threshold
from vitalens.synth.odir import write_odir_synth
from vitalens.training.calibration import apply_calibration
from vitalens.training.engine import resolve_recipe, train
from vitalens.training.evaluate import evaluate
from vitalens.training.predict import predict_dataset
from vitalens.training.recipe import Recipe
from vitalens.training.tasks import get_task

TINY = {
    "net.name": "odir_test",
    "net.pretrained": False,
    "task.image_size": 64,
    "train.max_epochs": 2,
    "train.batch_size": 8,
    "train.unfreeze_after": 1,
    "train.progress_bar": False,
}


@pytest.fixture(scope="module")
def odir_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=24, image_size=64, seed=0)
    (root / "SYNTHETIC").write_text("synthetic twin\n", encoding="utf-8")  # what auto-detection looks for
    return root


@pytest.fixture(scope="module")
def run(odir_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    artifact = train("fundus.odir", data=odir_root, out=out, overrides=TINY)
    assert artifact == out / "artifact"
    return out


def test_artifact_loads_with_a_complete_card(run: Path) -> None:
    net, card = load_model(run / "artifact", expected_analyzer="fundus.odir")
    assert card.labels == ["N", "D", "G", "C", "A", "H", "M", "O"]
    assert card.architecture.name == "odir_test"
    assert card.training_data.provenance == "synthetic" and card.training_data.n_patients == 24
    assert card.demonstration is True and card.limitations.startswith("DEMONSTRATION MODEL")
    assert card.input.size == (64, 64) and {"age_mean", "age_std"} <= set(card.input.extra)
    assert card.calibration.method == "temperature" and card.calibration.fitted_on == "val"
    assert card.threshold_method == "youden on the validation split"
    assert set(card.thresholds) == set(card.labels)
    assert {"macro_auroc", "micro_auroc", "macro_f1", "ece", "odir_score", "per_label"} <= set(card.metrics)
    assert card.metrics["split"] == "test"
    assert set(card.subgroup_metrics) == {"sex", "age_band"}
    assert card.recipe["train"]["max_epochs"] == 2


def test_thresholds_are_chosen_on_validation_predictions(run: Path, odir_root: Path) -> None:
    net, card = load_model(run / "artifact")
    task = get_task("fundus.odir", Recipe.load(card.recipe))
    bundle = task.build_data(odir_root)
    logits, y, meta = predict_dataset(net, task, bundle.val, "cpu")
    assert len(meta["patient_id"]) == len(bundle.val) == y.shape[0]
    probs = apply_calibration(card.calibration, logits)
    for j, label in enumerate(card.labels):
        expected = choose_threshold(y[:, j], probs[:, j], "youden")
        assert card.thresholds[label] == pytest.approx(expected, abs=1e-6), label


def test_age_statistics_come_from_the_training_split(run: Path, odir_root: Path) -> None:
    from vitalens.data.odir import OdirDataset

    _, card = load_model(run / "artifact")
    task = get_task("fundus.odir", Recipe.load(card.recipe))
    bundle = task.build_data(odir_root)
    ages = OdirDataset(odir_root).ages[bundle.train.indices]
    assert card.input.extra["age_mean"] == pytest.approx(float(ages.mean()))
    assert card.input.extra["age_std"] == pytest.approx(float(ages.std()))


def test_report_files_and_metric_keys(run: Path) -> None:
    for name in ("report.json", "report.md", "roc.png", "pr.png", "reliability.png"):
        assert (run / name).stat().st_size > 0, name
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert "not a diagnosis" in report["notice"]
    test = report["splits"]["test"]
    assert test["n"] == report["training_data"]["splits"]["sizes"]["test"]
    assert {"auroc", "ap", "f1", "sensitivity", "specificity", "threshold"} <= set(test["per_label"]["N"])
    assert {"kappa", "f1", "auc", "final"} == set(test["odir_score"])
    assert report["training"]["epochs_run"] == 2
    assert "Decision support only" in (run / "report.md").read_text(encoding="utf-8")


def test_evaluate_reproduces_the_training_report(run: Path, odir_root: Path, tmp_path: Path) -> None:
    report = evaluate(run / "artifact", data=odir_root, out=tmp_path / "eval", split="test")
    trained = json.loads((run / "report.json").read_text(encoding="utf-8"))["splits"]["test"]
    assert report["splits"]["test"]["macro_auroc"] == pytest.approx(trained["macro_auroc"], abs=1e-9)
    assert report["splits"]["test"]["odir_score"]["final"] == pytest.approx(trained["odir_score"]["final"])
    assert (tmp_path / "eval" / "report.md").is_file() and (tmp_path / "eval" / "roc.png").is_file()
    with pytest.raises(UnknownNameError, match="Valid: all, test, train, val"):
        evaluate(run / "artifact", data=odir_root, out=tmp_path / "x", split="holdout")


def test_resume_continues_from_last_checkpoint(run: Path, odir_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(run / "checkpoints", out / "checkpoints")
    train("fundus.odir", data=odir_root, out=out, overrides={**TINY, "train.max_epochs": 3}, resume=True)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["training"]["epochs_run"] == 3
    rows = list(csv.DictReader((out / "logs" / "version_0" / "metrics.csv").open()))
    epochs = {int(r["epoch"]) for r in rows if r.get("epoch")}
    assert epochs == {2}, "only the third epoch is trained after resuming"


def test_resume_without_checkpoint_and_bad_inputs(odir_root: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot resume"):
        train("fundus.odir", data=odir_root, out=tmp_path / "fresh", overrides=TINY, resume=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train("fundus.odir", data=tmp_path / "missing", out=tmp_path / "o", overrides=TINY)
    with pytest.raises(UnknownNameError, match="fundus.odir"):
        resolve_recipe("fundus.odirr")
    with pytest.raises(InputError, match="not 'fundus.odir'"):
        resolve_recipe("fundus.odir", {"analyzer": "ecg.ptbxl", "net": {"name": "x"}})


def test_weighted_sampler_favours_rare_labels() -> None:
    from vitalens.training.samplers import multilabel_sample_weights

    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    w = multilabel_sample_weights(y)
    assert w[3] == pytest.approx(3 * w[0]) and w.mean() == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.realdata
def test_one_epoch_on_real_odir(tmp_path: Path) -> None:
    from tests.conftest import shared_data_path

    root = shared_data_path("fundus", "odir")
    out = tmp_path / "real"
    train("fundus.odir", data=root, out=out, overrides={**TINY, "train.max_epochs": 1, "train.batch_size": 32})
    _, card = load_model(out / "artifact", expected_analyzer="fundus.odir")
    assert card.training_data.provenance == "real"
    assert card.demonstration is True  # a few hundred patients < 1000
    assert card.training_data.n_patients == sum(card.training_data.splits["sizes"].values())
