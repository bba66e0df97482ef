"""`POST /api/v1/predict/fundus` and `GET /api/v1/health`: the stateless eyes → heart endpoint, bad inputs."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.utils.fundus_artifact import make_tiny_fundus_artifact
from vitalens.config import Settings
from vitalens.risk import cardio_proxies, risk_band
from vitalens.service.app import create_app
from vitalens.synth.odir import write_odir_synth


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=4, image_size=128, seed=3)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("predict")
    make_tiny_fundus_artifact(root / "models" / "fundus-odir")
    settings = Settings(data_dir=root / "var", models_dir=root / "models", max_upload_mb=0.5, public_predict=True)
    with TestClient(create_app(settings)) as c:
        yield c


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _pair(synth: Path) -> dict[str, tuple[str, bytes, str]]:
    images = sorted((synth / "images").glob("*_left.jpg"))[0]
    right = images.with_name(images.name.replace("_left", "_right"))
    return {
        "left": ("left.jpg", images.read_bytes(), "image/jpeg"),
        "right": ("right.jpg", right.read_bytes(), "image/jpeg"),
    }


def test_health_lists_the_fundus_analyzer(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    fundus = next(a for a in body["analyzers"] if a["name"] == "fundus.odir")
    assert fundus["inputs"] == ["fundus_left", "fundus_right", "age"]
    assert fundus["model"]["demonstration"] is True
    assert "not a diagnosis" in body["notice"]


def test_prediction_has_the_documented_json(client: TestClient, synth: Path) -> None:
    resp = client.post("/api/v1/predict/fundus", files=_pair(synth), data={"age": "63"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body["probabilities"]) == ["N", "D", "G", "C", "A", "H", "M", "O"]
    assert set(body["proxies"]) == {"hypertension", "diabetes", "atherosclerotic", "overall"}
    # the proxies and band are exactly the risk functions of the returned probabilities
    expected = cardio_proxies(body["probabilities"])
    assert body["proxies"] == pytest.approx(expected.as_dict(), abs=1e-12)
    assert body["band"] == risk_band(expected.overall).value
    assert body["positive"] == [k for k, p in body["probabilities"].items() if p >= body["thresholds"][k]]
    assert body["demonstration"] is True and body["model"]["analyzer"] == "fundus.odir"
    assert body["trained_on"] and "not a diagnosis" in body["decision_support_notice"]
    assert body["band"] in body["explanation"]


def test_explanations_are_overlays_in_input_coordinates(client: TestClient, synth: Path) -> None:
    resp = client.post("/api/v1/predict/fundus", files=_pair(synth), data={"age": "63", "explain": "true"})
    body = resp.json()
    positives = body["positive"]
    assert len(body["explanations"]) == 2 * len(positives)
    for entry in body["explanations"]:
        assert entry["target"] in positives and entry["method"] == "grad-cam"
        png = Image.open(io.BytesIO(base64.b64decode(entry["overlay_png_base64"])))
        assert png.size == (128, 128)  # the uploaded image's size, not the net's 64 px


@pytest.mark.parametrize(
    ("age", "status"), [("121", 422), ("-1", 422), ("abc", 422), ("nan", 422), ("", 422), ("0", 200), ("120", 200)]
)
def test_age_range(client: TestClient, synth: Path, age: str, status: int) -> None:
    resp = client.post("/api/v1/predict/fundus", files=_pair(synth), data={"age": age})
    assert resp.status_code == status, resp.text
    if status == 422:
        assert "age" in resp.json()["detail"]


def test_missing_eye_is_named(client: TestClient, synth: Path) -> None:
    files = _pair(synth)
    del files["right"]
    resp = client.post("/api/v1/predict/fundus", files=files, data={"age": "50"})
    assert resp.status_code == 422
    assert resp.json()["detail"] == "right: field required"


def test_bad_images(client: TestClient, synth: Path) -> None:
    good = _pair(synth)
    rgb = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    cases = [
        (("r.jpg", b"hello, not an image", "image/jpeg"), 415, "not an image"),
        (("r.jpg", good["right"][1][:300], "image/jpeg"), 422, "corrupt or truncated"),
        (("r.png", _png(np.full((100, 100), 90, np.uint8)), "image/png"), 422, "grayscale"),
        (("r.png", _png(np.full((100, 100), 900, np.uint16)), "image/png"), 422, "16-bit"),
        (("r.png", _png(rgb[:40, :40]), "image/png"), 422, "at least 64 px"),
        (("r.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 600_000, "image/png"), 413, "larger than"),
    ]
    for upload, status, text in cases:
        resp = client.post("/api/v1/predict/fundus", files={"left": good["left"], "right": upload}, data={"age": "50"})
        assert resp.status_code == status, (text, resp.text)
        assert text in resp.json()["detail"]
        if status != 413:
            assert resp.json()["field"] == "fundus_right"


def test_openapi_documents_the_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/predict/fundus" in spec["paths"]
    assert client.get("/docs").status_code == 200
