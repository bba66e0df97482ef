"""An analyzer's short names (``aliases``) and ``companions``, declared in its contract and read by the surfaces.

A plug-in outside the package (``tests/plugins/toy_alias``) declares two aliases and a companion; with nothing in
``src/`` naming it, each alias gets ``POST /api/v1/predict/<alias>`` (documented, behind a signed-in user) and
``vitalens analyze <alias>``, the form or options the alias declares, and the companion's measurements beside the
main result (a companion that refuses the input is a warning). The built-in aliases (``fundus``, ``ecg``: the first
version's paths) are tested by their own tests, unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.utils.registry import temporary_analyzer
from vitalens.analyzers import Alias, AliasField, Analyzer, list_aliases, register_analyzer, resolve_alias
from vitalens.errors import RegistryError

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SITE = ROOT / "tests" / "plugins" / "toy_alias"


def test_the_built_in_aliases_are_the_first_versions_paths() -> None:
    aliases = {short: contract.name for short, contract in list_aliases().items()}
    assert aliases == {"ecg": "ecg.ptbxl", "fundus": "fundus.odir"}
    contract, alias = resolve_alias("ecg")  # type: ignore[misc]
    assert contract.companions == ("ecg.intervals",) and alias.companions_key == "intervals"
    assert [(f.name, f.target, f.cli_option) for f in alias.fields] == [
        ("file", "ecg", ""),
        ("format", "ecg.format", "--format"),
        ("fs_hz", "ecg.fs_hz", "--fs"),
    ]
    assert resolve_alias("ecg.ptbxl") is None and resolve_alias("nope") is None


def test_a_plain_alias_takes_the_full_name_form() -> None:
    from vitalens.analyzers import get_contract

    fields = Alias("x").fields_for(get_contract("ecg.intervals").uses)
    assert [(f.name, f.target, f.cli_option) for f in fields] == [
        ("ecg", "ecg", "--ecg"),
        ("ecg.fs_hz", "ecg.fs_hz", "--ecg-fs-hz"),
        ("ecg.format", "ecg.format", "--ecg-format"),
        ("sex", "sex", "--sex"),
    ]


class _Fake(Analyzer):
    """A fake for declarations only (never run)."""


@pytest.mark.parametrize(
    ("aliases", "companions", "message"),
    [
        (("Bad.Name",), (), "alias 'Bad.Name' must be one lowercase word"),
        ((Alias("x", fields=(AliasField("eye", "fundus_left"),)),), (), "fills 'fundus_left', a slot it does not"),
        ((Alias("x", fields=(AliasField("rate", "ecg.rate"),)),), (), "ecg takes no hint 'rate'"),
        ((Alias("x", fields=(AliasField("explain", "ecg"),)),), (), "takes a reserved name"),
        ((Alias("x", fields=(AliasField("a", "ecg", option=""), AliasField("b", "sex", option=""))),), (), "more than"),
        (("x", "x"), (), "alias 'x' declared twice"),
        ((), ("test.alias",), "cannot be its own companion"),
    ],
)
def test_a_bad_declaration_fails_at_registration(aliases: tuple, companions: tuple, message: str) -> None:
    from vitalens.errors import InputError

    with pytest.raises((ValueError, InputError), match=message):
        register_analyzer(
            "test.alias",
            modality="ecg",
            inputs=("ecg",),
            optional_inputs=("sex",),
            aliases=aliases,
            companions=companions,
        )(_Fake)


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ({"aliases": ("fundus",)}, "alias 'fundus' is declared by both"),
        ({"companions": ("test.nothing",)}, "companion 'test.nothing' of test.alias is not a registered analyzer"),
    ],
)
def test_a_clash_across_analyzers_is_named(contract: dict, message: str) -> None:
    with temporary_analyzer("test.alias", _Fake, modality="ecg", inputs=("ecg",), **contract):
        with pytest.raises(RegistryError, match=message):
            list_aliases()
    assert "fundus" in list_aliases()  # gone with the fake


# -- a plug-in outside the package -------------------------------------------------------------------------------
_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path

    import numpy as np
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from vitalens.cli import app
    from vitalens.config import Settings
    from vitalens.io.images import encode_png
    from vitalens.service.app import create_app

    tmp = Path(tempfile.mkdtemp())
    out = {}
    big = np.full((96, 128), 200, np.uint8)
    big[:, :32] = 20  # exactly 25 % dark
    small = np.full((64, 100), 200, np.uint8)
    small[:, :75] = 20  # exactly 75 % dark, and under the companion's 80 px
    (tmp / "big.png").write_bytes(encode_png(big))
    (tmp / "small.png").write_bytes(encode_png(small))
    runner = CliRunner()
    def cli(*args):
        r = runner.invoke(app, list(args))
        return [r.exit_code, r.stdout if r.exit_code == 0 else r.output]  # the document alone (logs: stderr)
    out["cli_toy"] = cli("analyze", "toy", str(tmp / "big.png"), "--json", "--plot", str(tmp / "map.png"))
    out["plot"] = (tmp / "map.png").read_bytes()[:8].hex() if (tmp / "map.png").exists() else None
    out["cli_plain"] = cli("analyze", "toy-dark", "--toy-strip", str(tmp / "small.png"), "--json")
    out["cli_text"] = cli("analyze", "toy", str(tmp / "big.png"))
    out["cli_missing"] = cli("analyze", "toy")
    out["cli_help"] = cli("analyze", "--help")
    out["cli_typo"] = cli("analyze", "toyy")
    settings = Settings(environment="test", secret_key="x" * 40, data_dir=tmp / "var", public_predict=True)
    with TestClient(create_app(settings)) as c:
        spec = c.get("/openapi.json").json()
        out["ops"] = {p: spec["paths"][p]["post"] for p in ("/api/v1/predict/toy", "/api/v1/predict/toy-dark")}
        out["schemas"] = {k: v for k, v in spec["components"]["schemas"].items() if "predict_toy" in k}
        png = (tmp / "big.png").read_bytes()
        r = c.post("/api/v1/predict/toy", files={"scan": ("big.png", png, "image/png")}, data={"explain": "true"})
        out["api_toy"] = [r.status_code, r.json()]
        small_png = (tmp / "small.png").read_bytes()
        r = c.post("/api/v1/predict/toy-dark", files={"toy_strip": ("s.png", small_png, "image/png")})
        out["api_plain"] = [r.status_code, r.json()]
        r = c.post("/api/v1/predict/toy", files={"toy_strip": ("big.png", png, "image/png")})
        out["api_missing"] = [r.status_code, r.json()]
        r = c.post("/api/v1/predict/toyy", files={"scan": ("big.png", png, "image/png")})
        out["api_typo"] = [r.status_code, r.json()]
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One fresh interpreter with the plug-in on its path, through the CLI and the API (imports are slow)."""
    paths = [str(PLUGIN_SITE), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "HF_HUB_OFFLINE": "1"}
    cwd = tmp_path_factory.mktemp("alias-plugin")
    run = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.split("RESULT", 1)[1])


def test_nothing_in_src_names_the_plugin() -> None:
    named = [p for p in (ROOT / "src").rglob("*") if p.is_file() and p.suffix in (".py", ".html", ".js", ".toml")]
    words = ("toy.darkness", "toy.size", "vitalens_toy_alias", "toy-dark", '"toy"')
    assert not [p for p in named if any(w in p.read_text() for w in words)]


def test_the_alias_command_takes_its_own_form_and_adds_the_companion(plugin_run: dict) -> None:
    code, output = plugin_run["cli_toy"]
    assert code == 0, output
    doc = json.loads(output)
    assert doc["analyzer"] == "toy.darkness" and doc["probabilities"] == {"DARK": 0.25} and doc["positive"] == []
    assert [(m["name"], m["value"], m["unit"]) for m in doc["size"]] == [("Width", 128.0, "px"), ("Height", 96.0, "px")]
    assert doc["warnings"] == [w for w in doc["warnings"] if "size not measured" not in w]
    assert plugin_run["plot"] == "89504e470d0a1a0a"  # --plot wrote the map as a PNG
    code, text = plugin_run["cli_text"]
    assert code == 0 and "  Width: 128 px" in text and "  Height: 96 px" in text, text
    code, missing = plugin_run["cli_missing"]
    assert code == 2 and "Missing argument 'SCAN'" in missing, missing
    code, listing = plugin_run["cli_help"]
    assert code == 0 and "toy " in listing and "toy-dark" in listing and "toy.darkness" in listing, listing
    code, typo = plugin_run["cli_typo"]
    assert code == 2 and "Unknown analyzer 'toyy'. Did you mean 'toy'?" in typo, typo


def test_a_plain_alias_and_a_companion_that_refuses_the_input(plugin_run: dict) -> None:
    code, output = plugin_run["cli_plain"]
    assert code == 0, output
    doc = json.loads(output)
    assert doc["probabilities"] == {"DARK": 0.75} and doc["positive"] == ["DARK"]
    assert doc["companion_measurements"] == []
    (warning,) = [w for w in doc["warnings"] if "not measured" in w]
    assert warning.startswith("companion_measurements not measured (toy.size): toy_strip:") and "80" in warning


def test_the_alias_routes_are_documented_and_answer(plugin_run: dict) -> None:
    for path, op in plugin_run["ops"].items():
        assert op["x-permission"] == "authenticated" and "alias of /toy.darkness, with toy.size" in op["summary"], path
    toy_form = next(v for k, v in plugin_run["schemas"].items() if k.startswith("Body_predict_toy_api"))
    assert toy_form["required"] == ["scan"] and set(toy_form["properties"]) == {"scan", "explain"}
    plain_form = next(v for k, v in plugin_run["schemas"].items() if k.startswith("Body_predict_toy_dark"))
    assert plain_form["required"] == ["toy_strip"]
    status, body = plugin_run["api_toy"]
    assert status == 200, body
    assert body["analyzer"] == "toy.darkness" and body["probabilities"] == {"DARK": 0.25}
    assert [(m["name"], m["value"]) for m in body["size"]] == [("Width", 128.0), ("Height", 96.0)]
    (entry,) = body["explanations"]
    assert entry["input"] == "toy_strip" and entry["overlay_png_base64"]  # explain: the map as an overlay
    status, body = plugin_run["api_plain"]
    assert status == 200 and body["probabilities"] == {"DARK": 0.75} and body["companion_measurements"] == []
    assert any(w.startswith("companion_measurements not measured (toy.size)") for w in body["warnings"]), body
    assert plugin_run["api_missing"] == [422, plugin_run["api_missing"][1]]
    assert plugin_run["api_missing"][1]["detail"] == "scan: field required"
    status, body = plugin_run["api_typo"]
    assert status == 404 and "Did you mean 'toy'?" in body["detail"], body
