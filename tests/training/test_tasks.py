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

            def build_data(self, data_root):  # type: ignore[no-untyped-def]
                raise AssertionError("not used")

            def forward(self, net, batch):  # type: ignore[no-untyped-def]
                raise AssertionError("not used")

            def input_spec(self, bundle):  # type: ignore[no-untyped-def]
                raise AssertionError("not used")

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


def test_fundus_normalisation_follows_the_starting_weights() -> None:
    """Lite0's offline weights expect TF-Lite's (x − 127)/128; random-init B4 keeps ImageNet statistics."""
    from vitalens.nets.pretrained import IMAGENET_MEAN, LITE0_MEAN, LITE0_STD
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    lite = get_task(
        "fundus.odir", Recipe.load({"analyzer": "fundus.odir", "net": {"name": "odir_lite0", "pretrained": "lite0"}})
    )
    assert lite.normalisation == (tuple(LITE0_MEAN), tuple(LITE0_STD))
    b4 = get_task(
        "fundus.odir", Recipe.load({"analyzer": "fundus.odir", "net": {"name": "odir_b4", "pretrained": False}})
    )
    assert b4.normalisation[0] == tuple(IMAGENET_MEAN)
    fixed = {
        "analyzer": "fundus.odir",
        "net": {"name": "odir_lite0"},
        "task": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    }
    assert get_task("fundus.odir", Recipe.load(fixed)).normalisation == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
