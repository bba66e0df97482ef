"""Tiny artifacts of the retina analyzers trained on their synthetic twins (one epoch of the test net)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitalens.synth import write_aptos_synth, write_kermany_synth, write_octc8_synth
from vitalens.training.engine import train


def tiny_recipe(analyzer: str, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "analyzer": analyzer,
        "net": {"name": "image_classifier_test", "pretrained": False},
        "train": {"max_epochs": 1, "batch_size": 8, "unfreeze_after": 0, "progress_bar": False},
        "task": {"image_size": 32, "augment": False, "min_image_size": 32},
        "calibration": {"method": "temperature"},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def train_fundus_dr(tmp: Path) -> Path:
    root = write_aptos_synth(tmp / "aptos", n_per_grade=4, image_size=64, seed=0)
    recipe = tiny_recipe(
        "fundus.dr",
        loss={"name": "corn"},
        task={"ben_graham": True},
        thresholds={"per_label": {"RDR": {"method": "target_sensitivity", "target": 0.9}}},
    )
    return train("fundus.dr", data=root, out=tmp / "dr-run", recipe=recipe)


def train_oct(tmp: Path, analyzer: str) -> Path:
    if analyzer == "oct.kermany4":
        root = write_kermany_synth(tmp / "kermany", n_patients=16, height=64, width=64, seed=0)
    else:
        root = write_octc8_synth(tmp / "octc8", per_class=(2, 1, 1), height=64, width=64, seed=0)
    return train(analyzer, data=root, out=tmp / f"{analyzer}-run", recipe=tiny_recipe(analyzer, loss={"name": "ce"}))
