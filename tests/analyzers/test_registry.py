"""The analyzer registry: names, helpful errors, duplicate refusal, and the CLI listing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vitalens.analyzers import Analyzer, create_analyzer, get_spec, is_analyzer, list_analyzers, register_analyzer
from vitalens.cli import app
from vitalens.domain import InputName, Modality
from vitalens.errors import UnknownNameError


def test_fundus_odir_is_registered_with_its_inputs() -> None:
    assert "fundus.odir" in list_analyzers("fundus.*")
    spec = get_spec("fundus.odir")
    assert spec.inputs == (InputName.FUNDUS_LEFT, InputName.FUNDUS_RIGHT, InputName.AGE)
    assert spec.default_artifact == "fundus-odir"
    assert is_analyzer("fundus.odir") and not is_analyzer("fundus.nope")


def test_unknown_name_lists_valid_and_suggests_closest() -> None:
    with pytest.raises(UnknownNameError) as info:
        create_analyzer("fundus.odr")
    message = str(info.value)
    assert "Did you mean 'fundus.odir'?" in message
    assert "Valid:" in message and "fundus.odir" in message


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_analyzer("fundus.odir", modality=Modality.FUNDUS, inputs=(InputName.AGE,))
        class _Dup(Analyzer):
            def analyze(self, inputs, *, explain=True):  # type: ignore[no-untyped-def]
                raise AssertionError


def test_cli_lists_analyzers_with_inputs() -> None:
    result = CliRunner().invoke(app, ["analyzers", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["fundus.odir"]["inputs"] == ["fundus_left", "fundus_right", "age"]
    assert "fundus-odir" in rows["fundus.odir"]["artifact"]


def test_missing_inputs_are_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.utils.fundus_artifact import make_tiny_fundus_artifact
    from vitalens.domain import StudyInputs
    from vitalens.errors import InputError

    analyzer = create_analyzer("fundus.odir", artifact=make_tiny_fundus_artifact(tmp_path / "a"))
    import numpy as np

    image = np.zeros((80, 80, 3), np.uint8)
    with pytest.raises(InputError, match="needs fundus_left, fundus_right, age; missing: fundus_right, age"):
        analyzer(StudyInputs(fundus_left=image))
