"""``vitalens analyze NAME``: the help is the contract's, unknown names and bad ``--input``/``--hint`` are one line
with exit code 2, and an analyzer without its model says how to make one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vitalens.cli import app

runner = CliRunner()


def test_the_help_of_a_named_analyzer_lists_its_slots() -> None:
    result = runner.invoke(app, ["analyze", "fundus.odir", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Eyes → heart (fundus.odir)" in text
    for line in (
        "--input fundus_left=PATH: Left eye (OS).",
        "--input age=VALUE: Age.",
        "--input sex=VALUE: Sex (optional).",
    ):
        assert line in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "fundus.odri"], "Unknown analyzer 'fundus.odri'. Did you mean 'fundus.odir'?"),
        (["analyze", "oct.kermany4", "--input", "oct"], "--input takes KEY=VALUE, got 'oct'"),
        (["analyze", "oct.kermany4", "--input", "cxr=x.png"], "oct.kermany4 reads oct; it takes no cxr"),
        (["analyze", "oct.kermany4", "--input", "oct=/no/such.png"], "oct: file not found: /no/such.png"),
        (["analyze", "ecg.ptbxl", "--input", "ecg=x.csv", "--hint", "fs_hz=500"], "--hint takes SLOT.HINT=VALUE"),
        (["analyze", "fundus.odir", "--input", "age=abc"], "age: must be a number in 0–120 years, got 'abc'"),
    ],
)
def test_bad_calls_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_missing_bundled_model_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vitalens.config import get_settings

    scan = tmp_path / "scan.png"
    from vitalens.slots import get_slot

    scan.write_bytes(get_slot("oct").example(0)[1])  # type: ignore[arg-type]
    monkeypatch.setenv("VITALENS_MODELS_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["analyze", "oct.kermany4", "--input", f"oct={scan}"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "no bundled model for oct.kermany4" in result.output and "vitalens train oct.kermany4" in result.output
