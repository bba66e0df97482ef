"""``cxr.anomaly`` training: normal-only splits of both layouts, the staged run end to end on a synthetic twin with
the tiny net, what the card says about labels seen, and the generic evaluate on the artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vitalens.artifacts import ModelCard, load_model
from vitalens.errors import InputError
from vitalens.synth.cxr import write_covid_radiography_synth
from vitalens.synth.medmnist import write_medmnist_synth
from vitalens.training.engine import resolve_recipe, train
from vitalens.training.evaluate import evaluate
from vitalens.training.tasks import get_task
from vitalens.training.tasks.cxr_anomaly import cxr_layout

TINY: dict[str, Any] = {
    "net.name": "cxr_anomaly_test",
    "net.pretrained": False,
    "task.image_size": 64,
    "task.augment_copies": 1,
    "task.n_boot": 200,
    "task.scorer.max_epochs": 3,
    "task.scorer.batch_size": 16,
    "train.max_epochs": 3,
    "train.batch_size": 16,
}


@pytest.fixture(scope="module")
def cxr_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_covid_radiography_synth(
        tmp_path_factory.mktemp("cxr") / "db",
        n_per_class={"Normal": 30, "COVID": 10, "Viral Pneumonia": 10},
        image_size=64,
    )


def _task(overrides: dict[str, Any] | None = None) -> Any:
    return get_task("cxr.anomaly", resolve_recipe("cxr.anomaly", overrides={**TINY, **(overrides or {})}))


def test_covid_split_keeps_abnormal_images_out_of_training(cxr_root: Path) -> None:
    bundle = _task().build_data(cxr_root)
    counts = bundle.meta["class_counts"]
    assert counts["train"] == {"Normal": 18}
    assert counts["val"] == {"COVID": 3, "Normal": 6, "Viral Pneumonia": 3}
    assert counts["test"] == {"COVID": 7, "Normal": 6, "Viral Pneumonia": 7}
    assert bundle.targets["train"].sum() == 0 and bundle.targets["test"].sum() == 14
    assert bundle.provenance == "synthetic"
    ids = [set(bundle.split(s).image_ids.tolist()) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    item = bundle.train[0]
    assert item["image"].shape == (3, 64, 64) and item["target"].tolist() == [0.0]


def test_pneumoniamnist_drops_training_pneumonias(tmp_path: Path) -> None:
    path = write_medmnist_synth(tmp_path / "pm", "pneumoniamnist", per_class=(5, 2, 3))
    assert cxr_layout(path) == cxr_layout(path.parent) == "pneumoniamnist"
    bundle = _task().build_data(path)
    assert bundle.meta["train_pneumonia_dropped"] == 5
    assert bundle.meta["class_counts"]["train"] == {"normal": 5}
    assert bundle.meta["class_counts"]["val"] == {"normal": 2, "pneumonia": 2}
    assert bundle.meta["class_counts"]["test"] == {"normal": 3, "pneumonia": 3}
    assert bundle.provenance == "synthetic"


def test_layout_and_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither a COVID-19 Radiography"):
        cxr_layout(tmp_path)
    with pytest.raises(InputError, match="output must be 'auto'"):
        resolve_recipe("cxr.anomaly", overrides={"task.output": "magic"})
    with pytest.raises(InputError, match="scorer.anomalies"):
        resolve_recipe("cxr.anomaly", overrides={"task.scorer.anomalies": "imagined"})


@pytest.fixture(scope="module")
def run(cxr_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    assert train("cxr.anomaly", data=cxr_root, out=out, overrides=TINY) == out / "artifact"
    return out


def test_card_says_what_trained_it(run: Path) -> None:
    net, card = load_model(run / "artifact", expected_analyzer="cxr.anomaly")
    assert card.labels == ["anomaly"] and card.calibration.method == "none"
    assert card.demonstration and card.training_data.provenance == "synthetic"
    assert card.training_data.splits["class_counts"]["train"] == {"Normal": 18}
    extra = card.extra
    assert extra["labelled_images_seen"] == {
        "vae": 0,
        "gaussian_knn_zstats": 0,
        "scorer": 0,
        "threshold_and_selection": 6,
    }
    assert extra["trained_on_normal_images_only"] is True
    assert extra["scorer_training"]["anomalies"] == "synthetic_feature"
    assert extra["shipped_score"] in ("fusion", "mahalanobis", "knn")
    assert card.architecture.kwargs["output"] == extra["shipped_score"] == net.output
    assert card.architecture.kwargs["knn_bank_size"] == 18
    z = extra["pipeline"]["z_statistics"]
    assert z["recon_error"]["std"] > 0 and z["kl_divergence"]["std"] > 0
    assert set(extra["components_test"]) >= {"recon", "kl", "scorer", "recon_kl", "fusion", "mahalanobis", "knn"}
    assert 0.0 <= card.threshold("anomaly") <= 1.0 and "youden" in card.threshold_method
    ci = card.metrics["auroc_ci95"]
    assert ci[0] <= card.metrics["per_label"]["anomaly"]["auroc"] <= ci[1]
    report = json.loads((run / "report.json").read_text())
    assert report["splits"]["test"]["n"] == 20 and report["shipped_score"] == extra["shipped_score"]


def test_artifact_reproduces_its_scores_and_evaluates_generically(run: Path, cxr_root: Path, tmp_path: Path) -> None:
    card_auroc = json.loads((run / "report.json").read_text())["splits"]["test"]["macro_auroc"]
    report = evaluate(run / "artifact", data=cxr_root, out=tmp_path / "eval", split="test", device="cpu")
    assert report["splits"]["test"]["macro_auroc"] == pytest.approx(card_auroc, abs=1e-9)
    # The card's recorded split is read: no rebuild from the folder, no warning, exactly the 20 test images.
    assert "warning" not in report
    ev = report["evaluated_on"]
    assert ev["n_records"] == 20 and ev["n_excluded"] == 30
    assert ev["selection"].startswith("every image the card does not list as train or val")


def test_card_records_the_split_and_counts_images(run: Path, cxr_root: Path) -> None:
    card = ModelCard.read(run / "artifact")
    records = card.extra["records"]
    assert {k: len(v) for k, v in records.items()} == {"train": 18, "val": 12, "test": 20}
    assert card.training_data.splits["kind"] == "image"
    bundle = _task().build_data(cxr_root)
    assert set(records["train"]) == set(bundle.split("train").image_ids.tolist())
    # 50 radiographs of a database that names no patient: counted as images, never as patients.
    assert _task().count_phrase(bundle) == "50 images, no patient ids"
    val = evaluate(run / "artifact", data=cxr_root, split="val", device="cpu")
    assert val["evaluated_on"]["n_records"] == 12 and "seen in training" in val["warning"]
    assert "recomputed" not in val["warning"] and "rebuilds" not in val["warning"]


def test_pneumoniamnist_eval_split_is_the_published_one(run: Path, tmp_path: Path) -> None:
    path = write_medmnist_synth(tmp_path / "pm", "pneumoniamnist", per_class=(5, 2, 3))
    card = ModelCard.read(run / "artifact")
    splits = {**card.training_data.splits, "kind": "official"}
    card = card.model_copy(
        update={
            "training_data": card.training_data.model_copy(update={"splits": splits}),
            "extra": {k: v for k, v in card.extra.items() if k != "records"},
        }
    )
    task = _task()
    test = task.build_eval_split(path, card, "test")
    assert test.targets.ravel().tolist().count(1) == 3 and len(test.dataset) == 6 and not test.warnings
    train = task.build_eval_split(path, card, "train")
    assert len(train.dataset) == 5 and train.targets.sum() == 0  # the training normals only
    assert len(task.build_eval_split(path, card, "all").dataset) == 5 + 4 + 6
    net, _ = load_model(run / "artifact")
    s = net.scores(torch.rand(2, 3, 64, 64))
    assert np.isfinite(s[net.output].detach().numpy()).all()


def test_resume_is_refused(cxr_root: Path, run: Path) -> None:
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(InputError, match="cannot resume"):
        train("cxr.anomaly", data=cxr_root, out=run, overrides=TINY, resume=True)
