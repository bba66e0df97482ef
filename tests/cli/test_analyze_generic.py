"""``vitalens analyze ANALYZER --input SLOT=FILE``: any registered analyzer from the command line, as the README shows.

Synthetic tiny artifacts check the plumbing (JSON, table, overlays, one-line errors with exit code 2); the real-data
tests run the bundled models on one real image of each dataset the README names and skip when either is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.utils.retina_artifacts import train_oct
from vitalens.cli import app
from vitalens.synth.oct import render_bscan

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
MODELS = REPO / "models"


@pytest.fixture(scope="module")
def oct_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cli-oct")
    artifact = train_oct(tmp, "oct.kermany4")
    scan = tmp / "scan.png"
    Image.fromarray(render_bscan(np.random.default_rng(3), "CNV", 128, 160)).save(scan)
    return artifact, scan


def _analyze(*args: str) -> object:
    return runner.invoke(app, ["analyze", *args])


def test_json_of_an_oct_scan(oct_setup: tuple[Path, Path]) -> None:
    artifact, scan = oct_setup
    result = _analyze("oct.kermany4", "--input", f"oct={scan}", "--artifact", str(artifact), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["analyzer"] == "oct.kermany4" and body["demonstration"] is True
    assert set(body["probabilities"]) == {"CNV", "DME", "DRUSEN", "NORMAL"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "not a diagnosis" in body["decision_support_notice"]


def test_table_and_overlays(oct_setup: tuple[Path, Path], tmp_path: Path) -> None:
    artifact, scan = oct_setup
    table = _analyze("oct.kermany4", "-i", f"oct={scan}", "--artifact", str(artifact))
    assert table.exit_code == 0, table.output
    assert "DEMONSTRATION MODEL" in table.output and "not a diagnosis" in table.output
    result = _analyze(
        "oct.kermany4", "-i", f"oct={scan}", "--artifact", str(artifact), "--explain", str(tmp_path), "--json"
    )
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)["explanations"]
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == len(explained)  # one overlay file per explanation the result lists
    assert all(Image.open(p).size == (160, 128) for p in pngs)  # the scan's own coordinates


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("oct", "KEY=VALUE"),
        ("fundus_right=x.png", "takes no fundus_right"),
        ("oct=/no/such/scan.png", "file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(oct_setup: tuple[Path, Path], pair: str, message: str) -> None:
    artifact, _ = oct_setup
    result = _analyze("oct.kermany4", "--input", pair, "--artifact", str(artifact))
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.strip().startswith("error:")
    assert "Traceback" not in result.output


def test_a_slot_twice_and_no_input(oct_setup: tuple[Path, Path]) -> None:
    artifact, scan = oct_setup
    twice = _analyze("oct.kermany4", "-i", f"oct={scan}", "-i", f"oct={scan}", "--artifact", str(artifact))
    assert twice.exit_code == 2 and "given twice" in twice.output
    unknown = _analyze("no.such.analyzer", "-i", f"oct={scan}")
    assert unknown.exit_code == 2 and "no.such.analyzer" in unknown.output


def test_a_colour_photograph_as_oct_is_refused(oct_setup: tuple[Path, Path], tmp_path: Path) -> None:
    from skimage import data

    artifact, _ = oct_setup
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    result = _analyze("oct.kermany4", "-i", f"oct={photo}", "--artifact", str(artifact), "--json")
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "probabilities" not in result.output


def test_every_analyzer_answers_help() -> None:
    from vitalens.analyzers import list_analyzers

    for name in list_analyzers():
        result = _analyze(name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert "--input" in result.output


# ------------------------------------------------------------------------ real images through the bundled models
def _first(pattern: str, root: Path) -> Path:
    files = sorted(root.glob(pattern))
    if not files:
        pytest.skip(f"no {pattern} under {root} (shared data absent)")
    return files[0]


def _bundled(folder: str) -> None:
    if not (MODELS / folder / "card.json").is_file():
        pytest.skip(f"models/{folder} is not bundled in this checkout")


def _json(*args: str) -> dict[str, object]:
    result = _analyze(*args, "--json")
    assert result.exit_code == 0, result.output
    body: dict[str, object] = json.loads(result.output)
    assert body["demonstration"] is True and "not a diagnosis" in str(body["decision_support_notice"])
    return body


def test_real_aptos_photograph() -> None:
    _bundled("fundus-dr")
    image = _first("train_images/*.png", SHARED / "fundus" / "aptos2019")
    body = _json("fundus.dr", "--input", f"fundus_right={image}")
    probabilities = body["probabilities"]
    assert isinstance(probabilities, dict) and {"0", "1", "2", "3", "4", "RDR"} <= set(probabilities)


def test_real_kermany_scan() -> None:
    _bundled("oct-kermany4")
    scan = _first("**/*.jpeg", SHARED / "oct")
    body = _json("oct.kermany4", "--input", f"oct={scan}")
    assert set(body["probabilities"]) == {"CNV", "DME", "DRUSEN", "NORMAL"}  # type: ignore[arg-type]


def test_real_covid_radiograph() -> None:
    _bundled("cxr-anomaly")
    image = _first("COVID/images/*.png", SHARED / "cxr" / "covid19_radiography_sample")
    body = _json("cxr.anomaly", "--input", f"cxr={image}")
    findings = body["findings"]
    assert isinstance(findings, list) and findings
    assert all(0.0 <= f["probability"] <= 1.0 for f in findings)
    table = runner.invoke(app, ["analyze", "cxr.anomaly", "--input", f"cxr={image}"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    header = next(line for line in table.output.splitlines() if "condition" in line)
    assert "anomaly score" in header and "probability" not in header  # a score, not a chance of disease


def test_real_fundus_and_oct_through_the_fusion() -> None:
    _bundled("retina-fusion")
    image = _first("train_images/*.png", SHARED / "fundus" / "aptos2019")
    scan = _first("**/*.jpeg", SHARED / "oct")
    body = _json("retina.fusion", "--input", f"fundus_right={image}", "--input", f"oct={scan}")
    assert body["findings"] and "virtual" in json.dumps(body).lower()


# ------------------------------------------- bad real input through the bundled models: refused, never a label
def _refused(*args: str) -> str:
    result = _analyze(*args, "--json")
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("error:") and "probabilities" not in result.output
    return str(result.output)


def _kermany_scan() -> Path:
    return _first("**/DME-*.jpeg", SHARED / "oct")


def test_real_raw_odir_photograph_is_graded() -> None:
    """A raw clinic photograph (not Ben-Graham filtered like APTOS) passes the gates and gets five grades."""
    _bundled("fundus-dr")
    image = _first("images/*_right.jpg", SHARED / "fundus" / "odir")
    body = _json("fundus.dr", "--input", f"fundus_right={image}")
    grades = {k: v for k, v in body["probabilities"].items() if k != "RDR"}  # type: ignore[attr-defined]
    assert sorted(grades) == ["0", "1", "2", "3", "4"] and sum(grades.values()) == pytest.approx(1.0, abs=1e-6)
    assert str(body["explanation"]).startswith("Right eye (OD):")


def test_real_fundus_photograph_as_oct_is_refused() -> None:
    _bundled("oct-kermany4")
    image = _first("images/*_right.jpg", SHARED / "fundus" / "odir")
    assert "does not look like an OCT B-scan" in _refused("oct.kermany4", "--input", f"oct={image}")


def test_real_colour_photograph_as_oct_is_refused(tmp_path: Path) -> None:
    from skimage import data

    _bundled("oct-kermany4")
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo)
    assert "does not look like an OCT B-scan" in _refused("oct.kermany4", "--input", f"oct={photo}")


def test_real_oct_as_fundus_is_refused_grey_or_saved_as_rgb(tmp_path: Path) -> None:
    _bundled("fundus-dr")
    scan = _kermany_scan()
    assert "a colour (RGB) fundus photograph is required" in _refused("fundus.dr", "--input", f"fundus_right={scan}")
    as_rgb = tmp_path / "oct-rgb.jpg"
    Image.open(scan).convert("RGB").save(as_rgb)
    out = _refused("fundus.dr", "--input", f"fundus_left={as_rgb}")
    assert "fundus_left: refused" in out and ("fundus photograph" in out)


@pytest.mark.parametrize("analyzer", ["fundus.dr", "oct.kermany4"])
def test_real_tiny_and_blank_images_are_refused(analyzer: str, tmp_path: Path) -> None:
    _bundled("fundus-dr" if analyzer == "fundus.dr" else "oct-kermany4")
    slot, mode = ("fundus_right", "RGB") if analyzer == "fundus.dr" else ("oct", "L")
    source = _first("images/*_right.jpg", SHARED / "fundus" / "odir") if mode == "RGB" else _kermany_scan()
    tiny = tmp_path / "tiny.png"
    Image.open(source).convert(mode).resize((100, 100)).save(tiny)
    assert "image is 100×100 px; the shorter side must be at least 128 px" in _refused(
        analyzer, "--input", f"{slot}={tiny}"
    )
    blank = tmp_path / "blank.png"
    Image.new(mode, (256, 256), 120 if mode == "L" else (120, 60, 30)).save(blank)
    assert f"{slot}: refused" in _refused(analyzer, "--input", f"{slot}={blank}")
