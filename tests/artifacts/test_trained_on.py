"""``ModelCard.trained_on``: patients where the dataset names them, images where it does not (APTOS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitalens.artifacts import ModelCard

MODELS = Path(__file__).resolve().parents[2] / "models"


def _card(folder: str, **training_data: object) -> ModelCard:
    path = MODELS / folder / "card.json"
    if not path.is_file():
        pytest.skip(f"models/{folder} is not bundled in this checkout")
    data = json.loads(path.read_text())
    data["training_data"].update(training_data)
    return ModelCard.model_validate(data)


def test_images_without_patient_ids_are_counted_as_images() -> None:
    card = _card("fundus-dr")
    assert card.trained_on == "APTOS 2019 (real, 150 images)"


def test_patients_are_counted_as_patients() -> None:
    assert _card("oct-kermany4").trained_on == "Kermany OCT2017 (real, 85 patients)"


def test_no_patient_count_falls_back_to_samples() -> None:
    card = _card("oct-kermany4", n_patients=0, n_samples=218)
    assert card.trained_on == "Kermany OCT2017 (real, 218 samples)"
