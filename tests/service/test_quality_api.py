"""`POST /api/v1/quality/{slot}`: the upload-time check runs the gates the contracts name for the slot."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import TEST_SECRET
from tests.utils.quality_gate import cheap_embed, make_synthetic_fundus_gate
from vitalens.analyzers import get_contract
from vitalens.config import Settings
from vitalens.synth.odir import EyeFindings, render_fundus


@pytest.fixture(scope="module")
def gate_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("quality-api") / "models"
    make_synthetic_fundus_gate(models)
    return models


@pytest.fixture
def settings(tmp_path: Path, gate_models: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    import vitalens.quality.embedding as embedding

    monkeypatch.setattr(embedding, "embed_images", cheap_embed)
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        models_dir=gate_models,
        max_upload_mb=0.5,
        max_image_pixels=4_000_000,
    )


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _post(client, headers, slot: str, data: bytes, name: str = "x.png"):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/quality/{slot}", headers=headers, files={"file": (name, data, "image/png")})


def test_genuine_passes_grey_is_refused_with_the_reason(client, clinician_headers) -> None:  # type: ignore[no-untyped-def]
    fundus = render_fundus(np.random.default_rng(5), 128, "left", EyeFindings())
    ok = _post(client, clinician_headers, "fundus_left", _png(fundus))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["verdict"] in ("pass", "flag")
    gates = {r["gate"] for r in body["results"]}
    assert gates == {"fundus.gradable"}
    owner = body["analyzers"]["fundus.gradable"]
    assert "fundus.gradable" in get_contract(owner).quality_gates["fundus_left"]

    grey = np.repeat(fundus.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    bad = _post(client, clinician_headers, "fundus_left", _png(grey)).json()
    assert bad["verdict"] == "refuse"
    assert any("greyscale" in reason for r in bad["results"] for reason in r["reasons"])


def test_dark_photograph_refused(client, clinician_headers) -> None:  # type: ignore[no-untyped-def]
    fundus = render_fundus(np.random.default_rng(6), 128, "right", EyeFindings())
    dark = (fundus * 0.12).astype(np.uint8)
    assert _post(client, clinician_headers, "fundus_right", _png(dark)).json()["verdict"] == "refuse"


def test_bad_requests(client, clinician_headers) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/api/v1/quality/fundus_left", files={"file": ("x.png", b"x", "image/png")}).status_code == 401
    r = _post(client, clinician_headers, "fundus_middle", b"123")
    assert r.status_code == 422 and "fundus_left" in r.text
    r = _post(client, clinician_headers, "fundus_left", b"not an image")
    assert r.status_code in (415, 422)
