"""The task plug-in registry: registration, duplicates, synthetic-twin detection, age bands."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalens.errors import InputError
from vitalens.training.recipe import Recipe
from vitalens.training.tasks import TaskOptions, TrainingTask, detect_synthetic, get_task, is_task, register_task
from vitalens.training.tasks.fundus_odir import age_band


class _FakeOptions(TaskOptions):
    width: int = 3


def test_register_a_task_plugin_and_refuse_duplicates() -> None:
    name = "test.fake_task_registry"
    if not is_task(name):

        @register_task(name)
        class _Fake(TrainingTask):
            labels = ["a", "b"]
            Options = _FakeOptions

    recipe = Recipe.load({"analyzer": name, "net": {"name": "x"}, "task": {"width": 5}})
    task = get_task(name, recipe)
    assert task.name == name and task.options.width == 5 and task.net_kwargs() == {"num_classes": 2}
    with pytest.raises(InputError, match="task.widht: Extra inputs are not permitted"):
        Recipe.load({"analyzer": name, "net": {"name": "x"}, "task": {"widht": 5}})
    with pytest.raises(ValueError, match="already registered"):
        register_task(name)(TrainingTask)


def test_detect_synthetic_marker(tmp_path: Path) -> None:
    assert not detect_synthetic(tmp_path)
    (tmp_path / "SYNTHETIC").write_text("x", encoding="utf-8")
    assert detect_synthetic(tmp_path)


@pytest.mark.parametrize("age, band", [(0, "<50"), (49.9, "<50"), (50, "50-64"), (64.99, "50-64"), (65, "65+")])
def test_age_band_edges(age: float, band: str) -> None:
    assert age_band(age) == band
