"""Recipes: the shipped files validate, unknown keys fail anywhere, dotted overrides, helpful errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalens.errors import InputError, UnknownNameError
from vitalens.training.recipe import RECIPES_DIR, Recipe, apply_overrides, parse_overrides
from vitalens.training.tasks import get_task_class, list_tasks

MINIMAL = {"analyzer": "fundus.odir", "net": {"name": "odir_test"}}


@pytest.mark.parametrize("name", ["fundus.odir.yaml", "fundus.odir.seed-b4.yaml"])
def test_shipped_recipes_validate(name: str) -> None:
    r = Recipe.load(RECIPES_DIR / name)
    assert r.analyzer == "fundus.odir"
    assert r.data.fractions == (0.7, 0.15, 0.15)
    assert r.thresholds.method == "youden" and r.calibration.method == "temperature"


def test_default_recipe_is_the_offline_design() -> None:
    r = Recipe.load(RECIPES_DIR / "fundus.odir.yaml")
    assert (r.net.name, r.net.pretrained) == ("odir_lite0", "lite0")
    assert (r.train.batch_size, r.train.unfreeze_after, r.train.early_stopping_patience) == (16, 3, 4)
    assert (r.train.unfreeze_stages, r.task["image_size"]) == (4, 192)
    assert (r.train.lr_head, r.train.lr_encoder, r.train.weight_decay) == (3e-4, 1e-4, 1e-4)
    assert r.task["augment"] is True


@pytest.mark.parametrize(
    "bad, where",
    [
        ({**MINIMAL, "max_epoch": 3}, "max_epoch"),
        ({**MINIMAL, "train": {"max_epoch": 3}}, "train.max_epoch"),
        ({**MINIMAL, "task": {"image_sise": 64}}, "image_sise"),
        ({**MINIMAL, "data": {"fractions": [0.5, 0.3, 0.3]}}, "sum to 1"),
        ({**MINIMAL, "thresholds": {"method": "magic"}}, "thresholds.method"),
        ({**MINIMAL, "loss": {"name": "focal", "focal_alpha": 1.5}}, "loss.focal_alpha"),
    ],
)
def test_invalid_recipes_fail_naming_the_key(bad: dict, where: str) -> None:
    with pytest.raises(InputError, match=where.replace(".", r"\.")):
        Recipe.load(bad)


def test_overrides_are_dotted_and_typed() -> None:
    r = Recipe.load(MINIMAL, overrides=["train.max_epochs=2", "task.augment=false", "thresholds.target=0.95"])
    assert r.train.max_epochs == 2 and r.task["augment"] is False and r.thresholds.target == 0.95
    assert parse_overrides(["a.b=[1, 2]", "c=x"]) == {"a.b": [1, 2], "c": "x"}
    assert apply_overrides({"a": {"b": 1}}, {"a.c": 2}) == {"a": {"b": 1, "c": 2}}
    with pytest.raises(InputError, match="key.sub=value"):
        parse_overrides(["train.max_epochs"])
    with pytest.raises(InputError, match="train.max_epochs"):
        Recipe.load(MINIMAL, overrides={"train.max_epochs": 0})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Recipe.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("analyzer: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        Recipe.load(bad)


def test_per_label_threshold_rules() -> None:
    r = Recipe.load(
        {
            **MINIMAL,
            "thresholds": {"method": "f1", "per_label": {"D": {"method": "target_sensitivity", "target": 0.95}}},
        }
    )
    assert r.thresholds.rule_for("D").method == "target_sensitivity"
    assert r.thresholds.rule_for("G").method == "f1"


def test_task_registry_lists_and_suggests() -> None:
    assert "fundus.odir" in list_tasks()
    with pytest.raises(UnknownNameError, match=r"Did you mean 'fundus.odir'\?.*Valid: .*fundus.odir"):
        get_task_class("fundus.odr")
