"""The segmentation loop end to end on the synthetic DRIVE twin (tiny net, a few patches)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitalens.artifacts import verify_artifact
from vitalens.errors import InputError
from vitalens.synth import write_drive_synth
from vitalens.training.engine import train
from vitalens.training.evaluate import evaluate

TINY = {
    "net.name": "vessel_unet_test",
    "train.max_epochs": 1,
    "train.batch_size": 8,
    "task.patches_per_epoch": 16,
    "task.patch_size": 32,
    "task.val_images": 1,
    "task.fov_diameter_px": None,
}


def test_train_writes_artifact_and_report(tmp_path: Path) -> None:
    data = write_drive_synth(tmp_path / "DRIVE", n_train=3, n_test=2, image_size=64)
    artifact = train("fundus.vessels", data=data, out=tmp_path / "run", overrides=TINY)
    card = verify_artifact(artifact, expected_analyzer="fundus.vessels")
    assert card.labels == ["vessel"] and card.demonstration
    assert card.training_data.provenance == "synthetic"
    assert card.training_data.splits["sizes"] == {"train": 2, "val": 1, "test": 2}
    assert 0.0 <= card.thresholds["vessel"] <= 1.0
    assert card.input.extra["fov_diameter_px"] > 0
    assert card.metrics["n"] == 2 and 0.0 <= card.metrics["auc"] <= 1.0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["splits"]) == {"val", "test"}
    assert set(report["splits"]["test"]["per_image"]) == {"01", "02"}
    assert (tmp_path / "run" / "roc.png").is_file()
    # The split is recorded (train and val ids; test is DRIVE's own), so evaluate() re-reads it, no warning.
    assert card.training_data.splits["kind"] == "official"
    assert card.training_data.splits["train_ids"] == [i for i in ("21", "22", "23") if i not in card.extra["val_ids"]]
    ev = evaluate(artifact, data=data, out=tmp_path / "eval")
    assert "warning" not in ev and ev["evaluated_on"]["n_records"] == 2 and ev["evaluated_on"]["n_excluded"] == 3
    assert ev["splits"]["test"]["auc"] == pytest.approx(report["splits"]["test"]["auc"], abs=1e-12)
    assert set(ev["splits"]["test"]["per_image"]) == {"01", "02"} and (tmp_path / "eval" / "roc.png").is_file()
    val = evaluate(artifact, data=data, split="val")
    assert val["evaluated_on"]["n_records"] == 1 and val["warning"].startswith("the val split was seen")


def test_classifier_threshold_methods_are_refused(tmp_path: Path) -> None:
    data = write_drive_synth(tmp_path / "DRIVE", n_train=3, n_test=1, image_size=64)
    with pytest.raises(InputError, match="target_sensitivity"):
        train(
            "fundus.vessels",
            data=data,
            out=tmp_path / "run",
            overrides={**TINY, "thresholds.method": "target_sensitivity"},
        )
