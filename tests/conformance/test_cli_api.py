"""Every registered analyzer through ``vitalens analyze NAME`` and ``POST /api/v1/predict/NAME``, and a plug-in
analyzer outside the package that reaches the CLI, the API and the web form through its entry point alone.

Parametrised over ``list_analyzers()`` (as timm tests every model in ``list_models()``): an analyzer added later is
tested without an edit here. Each has its bundled model (a card naming it) or the clear "no bundled model" state
with how to make one; each runs on a synthetic input made from its slots' declarations (the slot's own example,
else :func:`tests.conformance._inputs.synthetic_upload`), and both surfaces answer the contract's document: its
name and title, one section per render block, probabilities in [0, 1], maps in the input's coordinates, the
decision-support notice. The synthetic twins sit near the edge of some real-data quality gates (an OCT B-scan
gate trained on Kermany scans): a refusal by the analyzer's own gate, one line naming the gate and the input, is a
documented answer and accepted as such.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conformance._inputs import synthetic_upload
from tests.service.conftest import TEST_SECRET
from vitalens.analyzers import create_analyzer, get_contract, list_analyzers
from vitalens.config import Settings
from vitalens.slots import get_slot

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
PLUGIN_SITE = ROOT / "tests" / "plugins" / "toy_analyzer"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", secret_key=TEST_SECRET, data_dir=tmp_path, models_dir=MODELS, max_upload_mb=20)


def synthetic_inputs(name: str, seed: int = 0) -> tuple[dict[str, tuple[str, bytes]], dict[str, str], dict[str, dict]]:
    """(files, values, hints) for every slot ``name`` reads that has a synthetic value (all of each any-of group)."""
    contract = get_contract(name)
    files: dict[str, tuple[str, bytes]] = {}
    values: dict[str, str] = {}
    hints: dict[str, dict[str, str]] = {}
    for i, use in enumerate(contract.uses):
        spec = use.spec
        if spec.example is not None:
            filename, data, slot_hints = spec.example(seed + i)
        elif spec.is_file:
            filename, data, _ = synthetic_upload(spec, contract.limits_for(spec.name), seed=seed + i)
            slot_hints = {}
        elif use.required or use.any_of:
            pytest.fail(f"slot {spec.name} ({spec.kind}) that {name} needs declares no synthetic example")
        else:
            continue
        if spec.is_file:
            files[spec.name] = (filename, data if isinstance(data, bytes) else data.encode())
        else:
            values[spec.name] = data if isinstance(data, str) else data.decode()
        if slot_hints:
            hints[spec.name] = dict(slot_hints)
    return files, values, hints


def _check_document(name: str, doc: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> None:
    """What every surface's answer holds, whatever the analyzer."""
    contract = get_contract(name)
    assert doc["analyzer"] == name and doc["title"] == contract.title
    assert [s["kind"] for s in doc["sections"]] == [b.kind for b in contract.blocks]
    assert "not a diagnosis" in doc["decision_support_notice"]
    assert isinstance(doc["demonstration"], bool) and doc["model"]["analyzer"] == name
    assert all(0.0 <= p <= 1.0 for p in doc["probabilities"].values())
    assert set(doc["positive"]) <= set(doc["probabilities"])
    assert all(m["value"] is None or np.isfinite(m["value"]) for m in doc["measurements"])
    for entry in doc["explanations"]:
        assert entry["input"] in contract.slots, entry
        png = entry.get("overlay_png_base64")
        if png and entry["input"] in files and get_slot(entry["input"]).kind == "image":
            shown = Image.open(io.BytesIO(base64.b64decode(png)))
            uploaded = Image.open(io.BytesIO(files[entry["input"]][1]))
            assert shown.size == uploaded.size, (entry, shown.size, uploaded.size)  # input coordinates


@pytest.mark.parametrize("name", list_analyzers())
def test_each_analyzer_has_its_card_or_says_how_to_make_one(name: str) -> None:
    from vitalens.artifacts import ModelCard

    contract = get_contract(name)
    availability = create_analyzer(name, models_dir=MODELS).availability()
    if contract.default_artifact is None:
        assert availability.ready, availability.reason
        return
    if availability.ready:
        assert ModelCard.read(MODELS / contract.default_artifact).analyzer == name
    else:
        assert availability.reason.startswith(f"no bundled model for {name}"), availability.reason
        if contract.train_command:
            assert contract.train_command in availability.reason


@pytest.mark.parametrize("name", list_analyzers())
def test_each_analyzer_runs_through_the_cli(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vitalens.cli import app
    from vitalens.config import get_settings

    monkeypatch.setenv("VITALENS_MODELS_DIR", str(MODELS))
    get_settings.cache_clear()
    files, values, hints = synthetic_inputs(name)
    args = ["analyze", name, "--json"]
    for slot, (filename, data) in files.items():
        path = tmp_path / f"{slot}-{filename}"
        path.write_bytes(data)
        args += ["--input", f"{slot}={path}"]
    args += [a for slot, text in values.items() for a in ("--input", f"{slot}={text}")]
    args += [a for slot, h in hints.items() for k, v in h.items() for a in ("--hint", f"{slot}.{k}={v}")]
    try:
        result = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    availability = create_analyzer(name, models_dir=MODELS).availability()
    if not availability.ready:
        assert result.exit_code == 2 and "no bundled model" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1  # one line
        return
    if result.exit_code == 2 and "refused by the quality gate" in result.output:
        assert len(result.output.strip().splitlines()) == 1, result.output  # the gate's reason, one line
        return
    assert result.exit_code == 0, result.output
    _check_document(name, json.loads(result.output), files)


@pytest.mark.parametrize("name", list_analyzers())
def test_each_analyzer_runs_through_the_predict_api(name: str, client, world, db_engine) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough: a prediction stores nothing")
    files, values, hints = synthetic_inputs(name)
    data = {**values, "explain": "true"}
    data.update({f"{slot}.{k}": v for slot, h in hints.items() for k, v in h.items()})
    headers = world.a.headers["clinician"]
    path = f"/api/v1/predict/{name}"
    r = client.post(path, files={k: (fn, b) for k, (fn, b) in files.items()}, data=data, headers=headers)
    availability = create_analyzer(name, models_dir=MODELS).availability()
    if not availability.ready:
        assert r.status_code == 503 and "no bundled model" in r.json()["detail"], r.text
        return
    if r.status_code == 422 and "refused by the quality gate" in r.json()["detail"]:
        assert r.json()["field"] in get_contract(name).slots, r.text  # the gate names the input it refused
    else:
        assert r.status_code == 200, r.text
        _check_document(name, r.json(), files)
    # the route is in the document with the analyzer's own form, behind a signed-in user
    op = client.get("/openapi.json").json()["paths"][path]["post"]
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(get_contract(name).slots) <= set(form["properties"]) and op["x-permission"] == "authenticated"
    assert client.post(path, files={k: (fn, b) for k, (fn, b) in files.items()}, data=data).status_code == 401


# -- a plug-in outside the package -------------------------------------------------------------------------------
_PLUGIN_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path

    from fastapi.testclient import TestClient

    from vitalens.config import Settings
    from vitalens.service.app import create_app
    from vitalens.slots import get_slot

    out = {}
    fn, png, _ = get_slot("toy_scan").example(3)
    tmp = Path(tempfile.mkdtemp())
    settings = Settings(environment="test", secret_key="x" * 40, data_dir=tmp, public_predict=True)
    with TestClient(create_app(settings)) as c:
        out["openapi"] = c.get("/openapi.json").json()["paths"]["/api/v1/predict/toy.brightness"]["post"]
        files = {"toy_scan": (fn, png, "image/png")}
        r = c.post("/api/v1/predict/toy.brightness", files=files, data={"explain": "true"})
        out["predict"] = [r.status_code, r.json()]
        pw = "correct horse battery"
        c.post("/setup", json={"email": "a@x.example", "password": pw, "site_name": "North"})
        c.post("/api/v1/auth/session", json={"email": "a@x.example", "password": pw})
        csrf = {"X-CSRF-Token": c.cookies.get("vitalens_csrf")}
        user = {"email": "c@x.example", "password": pw, "role": "clinician"}
        assert c.post("/api/v1/users", json=user, headers=csrf).status_code == 201
        c.post("/api/v1/auth/session", json={"email": "c@x.example", "password": pw})
        out["form"] = c.get("/studies/new").text
    print("RESULT" + json.dumps(out))
    """
)


def _plugin_env() -> dict[str, str]:
    """The environment of a fresh interpreter in which the toy plug-in is installed (its folder on the path)."""
    paths = [str(PLUGIN_SITE), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "HF_HUB_OFFLINE": "1"}


def test_a_plugin_analyzer_reaches_the_cli_the_api_and_the_web_form(tmp_path: Path) -> None:
    """``tests/plugins/toy_analyzer`` registers ``toy.brightness`` through the ``vitalens.analyzers`` entry point
    of its own dist-info; nothing in ``src/`` names it."""
    named = [p for p in (ROOT / "src").rglob("*") if p.is_file() and p.suffix in (".py", ".html", ".js", ".toml")]
    assert not [p for p in named if "toy.brightness" in p.read_text() or "vitalens_toy" in p.read_text()]
    env = _plugin_env()
    listed = subprocess.run(
        [sys.executable, "-m", "vitalens.cli", "analyzers", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "toy.brightness")
    assert row["title"] == "Toy brightness" and row["ready"] is True
    assert [s["name"] for s in row["slots"]] == ["toy_scan"] and row["slots"][0]["kind"] == "image"

    from vitalens.io.images import encode_png

    image = np.full((64, 100), 20, np.uint8)
    image[:, :75] = 200  # exactly 75 % of the pixels are bright
    scan = tmp_path / "scan.png"
    scan.write_bytes(encode_png(image))
    analysed = subprocess.run(
        [sys.executable, "-m", "vitalens.cli", "analyze", "toy.brightness", "--input", f"toy_scan={scan}", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert analysed.returncode == 0, analysed.stderr
    doc = json.loads(analysed.stdout)
    assert doc["probabilities"] == {"BRIGHT": 0.75} and doc["positive"] == ["BRIGHT"]
    assert doc["measurements"][0]["value"] == pytest.approx(0.75 * 200 + 0.25 * 20)
    assert [s["kind"] for s in doc["sections"]] == ["findings", "measurements", "overlays", "narrative"]

    served = subprocess.run(
        [sys.executable, "-c", _PLUGIN_SCRIPT], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert served.returncode == 0, served.stderr
    out = json.loads(served.stdout.split("RESULT", 1)[1])
    schema = out["openapi"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["toy_scan"]["format"] == "binary" and schema["required"] == ["toy_scan"]
    status, body = out["predict"]
    assert status == 200 and body["analyzer"] == "toy.brightness" and body["title"] == "Toy brightness"
    (entry,) = body["explanations"]
    overlay = Image.open(io.BytesIO(base64.b64decode(entry["overlay_png_base64"])))
    assert overlay.size == (128, 96)  # the example scan's own width × height
    assert 'data-slot="toy_scan"' in out["form"] and "Toy scan" in out["form"]
    assert "Read by: Toy brightness." in out["form"]  # the analyzer that reads it, by its title


def test_a_plugin_that_fails_to_import_is_named_in_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "broken_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "broken_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n"
    )
    (site / "broken_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[vitalens.analyzers]\nbroken = broken_mod\n"
    )
    (site / "broken_mod.py").write_text("import not_a_module_anywhere\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")]), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vitalens.cli", "analyze", "toy.brightness", "--input", "toy_scan=x.png"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "plug-in 'broken' (broken_mod, from broken-plugin) failed to import" in lines[0]
