"""fundus.dr, oct.kermany4 and oct.c8 train end to end on their synthetic twins (tiny net, one epoch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitalens.artifacts import ModelCard
from vitalens.errors import InputError
from vitalens.synth import write_aptos_synth, write_kermany_synth, write_medmnist_synth, write_octc8_synth
from vitalens.training.engine import train
from vitalens.training.evaluate import evaluate
from vitalens.training.recipe import Recipe
from vitalens.training.tasks import get_task

NET = "image_classifier_test"


@pytest.fixture
def tiny_net() -> str:
    """The registry's tiny single-image classifier (timm test_efficientnet): milliseconds per batch."""
    return NET


def _recipe(analyzer: str, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "analyzer": analyzer,
        "net": {"name": NET, "pretrained": False},
        "train": {"max_epochs": 1, "batch_size": 8, "unfreeze_after": 0, "progress_bar": False},
        "task": {"image_size": 32, "augment": True},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def test_fundus_dr_corn_on_aptos_twin_with_referable_finding(tiny_net: str, tmp_path: Path) -> None:
    root = write_aptos_synth(tmp_path / "aptos", n_per_grade=5, image_size=64, seed=0)
    recipe = _recipe(
        "fundus.dr",
        loss={"name": "corn"},
        task={"ben_graham": True},
        thresholds={"per_label": {"RDR": {"method": "target_sensitivity", "target": 0.9}}},
    )
    artifact = train("fundus.dr", data=root, out=tmp_path / "run", recipe=recipe)
    card = ModelCard.read(artifact)
    assert card.output.problem == "ordinal" and card.output.head == "corn"
    assert card.architecture.kwargs["num_classes"] == 4  # K − 1 conditional logits
    assert card.demonstration and card.training_data.provenance == "synthetic"
    (rdr,) = card.derived
    assert rdr.code == "RDR" and rdr.classes == ["2", "3", "4"]
    assert rdr.threshold_method.startswith("target_sensitivity 0.9 on the validation split")
    assert {"accuracy", "quadratic_kappa", "macro_auroc_ovr", "per_class", "confusion_matrix"} <= set(card.metrics)
    pre = card.input.extra["preprocess"]
    assert pre["ben_graham"]["sigma_fraction"] == pytest.approx(10 / 224) and pre["crop_border"] is True
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Quadratic weighted kappa" in md and "Referable diabetic retinopathy" in md
    # evaluate() re-scores the artifact through the card's own link and reproduces the training run's test figures.
    report = evaluate(artifact, data=root, out=tmp_path / "eval")
    trained = json.loads((tmp_path / "run" / "report.json").read_text())["splits"]["test"]
    assert report["splits"]["test"]["multiclass"]["accuracy"] == pytest.approx(trained["multiclass"]["accuracy"])
    assert report["splits"]["test"]["derived"]["RDR"]["auroc"] == pytest.approx(trained["derived"]["RDR"]["auroc"])


def test_oct_kermany4_patient_level_splits_and_grey_pipeline(tiny_net: str, tmp_path: Path) -> None:
    root = write_kermany_synth(tmp_path / "OCT2017", n_patients=24, height=48, width=64, seed=1)
    recipe = Recipe.load(_recipe("oct.kermany4", loss={"name": "ce", "label_smoothing": 0.1}))
    task = get_task("oct.kermany4", recipe)
    bundle = task.build_data(root)
    ids = {
        s: {bundle.split(s).source[int(i)].patient_id for i in bundle.split(s).indices}
        for s in ("train", "val", "test")
    }
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert all(bundle.split("test").source[int(i)].split == "test" for i in bundle.split("test").indices)
    assert bundle.meta["preprocess"]["grayscale"] and bundle.meta["preprocess"]["fit"] == "stretch"
    item = bundle.train[0]
    square = bundle.train.square(0)
    assert tuple(item["image"].shape) == (3, 32, 32) and (square[..., 0] == square[..., 2]).all()
    train_cfg = {"monitor": "val_accuracy", "optimizer": "adam", "weighted_sampling": True}
    artifact = train("oct.kermany4", data=root, out=tmp_path / "run", recipe=_recipe("oct.kermany4", train=train_cfg))
    card = ModelCard.read(artifact)
    assert card.output.head == "softmax" and card.labels == ["CNV", "DME", "DRUSEN", "NORMAL"]
    assert card.calibration.method in ("temperature", "none") and not card.derived
    assert "patient" in card.training_data.description
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["training"]["monitor"] == "val_accuracy"


def test_oct_c8_uses_published_splits(tiny_net: str, tmp_path: Path) -> None:
    root = write_octc8_synth(tmp_path / "OCT-C8", per_class=(3, 1, 1), height=48, width=48)
    task = get_task("oct.c8", Recipe.load(_recipe("oct.c8", loss={"name": "ce"})))
    bundle = task.build_data(root)
    assert bundle.split_sizes == {"train": 24, "val": 8, "test": 8} and bundle.meta["split_kind"] == "official"


def test_fundus_dr_regression_on_retinamnist_twin(tiny_net: str, tmp_path: Path) -> None:
    path = write_medmnist_synth(tmp_path / "mm", "retinamnist", size=28, per_class=(6, 3, 3))
    artifact = train(
        "fundus.dr", data=path, out=tmp_path / "run", recipe=_recipe("fundus.dr", loss={"name": "regression"})
    )
    card = ModelCard.read(artifact)
    assert card.output.head == "regression" and card.architecture.kwargs["num_classes"] == 1
    cuts = card.output.params["cutpoints"]
    assert len(cuts) == 4 and np.all(np.diff(cuts) >= 0) and card.output.params["scale"] > 0
    assert card.training_data.splits["kind"] == "official"


def test_loss_that_does_not_fit_the_task_is_refused(tiny_net: str, tmp_path: Path) -> None:
    root = write_octc8_synth(tmp_path / "c8", per_class=(1, 1, 1), height=32, width=32)
    with pytest.raises(InputError, match="does not fit a multiclass"):
        train("oct.c8", data=root, out=tmp_path / "run", recipe=_recipe("oct.c8", loss={"name": "corn"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="none of the layouts"):
        get_task("oct.c8", Recipe.load(_recipe("oct.c8"))).build_data(tmp_path / "empty")
