"""``POST /api/v1/predict/{analyzer}``: a signed-in user by default (or the demo setting), the per-client rate limit,
the predict gate (503 + Retry-After instead of queueing in front of clinical jobs), the form of each analyzer, and
names that are not analyzers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.service.conftest import TEST_SECRET, World
from vitalens.analyzers import ANALYZERS, Analyzer, Findings, Narrative, register_analyzer
from vitalens.config import Settings
from vitalens.domain import AnalysisResult, Finding, ModelInfo, StudyInputs

NAME = "test.age_gate"


class _Gate:
    """What the fake analyzer does: count calls, say it started, and wait until released (when ``hold``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.hold = False
        self.started = threading.Event()
        self.release = threading.Event()


GATE = _Gate()


class _AgeAnalyzer(Analyzer):
    """Age → a 'probability' equal to age / 120 (a rule of the test, computed from its input)."""

    def model_info(self) -> ModelInfo:
        return ModelInfo(name="age-rule", analyzer=NAME, version="0", demonstration=True, trained_on="nothing")

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        GATE.calls += 1
        if GATE.hold:
            GATE.started.set()
            assert GATE.release.wait(30), "the test never released the analyzer"
        p = float(inputs.get("age")) / 120.0
        return AnalysisResult(
            analyzer=NAME,
            model=self.model_info(),
            trained_on="nothing",
            demonstration=True,
            findings=[Finding(code="OLD", name="Old", probability=p, threshold=0.5, positive=p >= 0.5)],
            explanation=f"age / 120 = {p:.3f}",
        )


@pytest.fixture(autouse=True)
def age_analyzer() -> Iterator[None]:
    """Registered before the app is built, so the app generates its route."""
    GATE.__init__()  # type: ignore[misc]
    register_analyzer(NAME, modality="test", inputs=("age",), render=(Findings(), Narrative()), title="Age rule")(
        type("AgeRule", (_AgeAnalyzer,), {})
    )
    try:
        yield
    finally:
        ANALYZERS.unregister(NAME)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        predict_rate_limit="100/minute",
        predict_concurrency=1,
        predict_retry_after_s=7,
    )


def test_a_signed_in_user_is_needed_by_default(client: TestClient, world: World) -> None:
    anonymous = client.post(f"/api/v1/predict/{NAME}", data={"age": "60"})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert GATE.calls == 0
    signed_in = client.post(f"/api/v1/predict/{NAME}", data={"age": "60"}, headers=world.a.headers["reviewer"])
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["probabilities"] == {"OLD": 0.5} and body["positive"] == ["OLD"] and body["title"] == "Age rule"
    assert [s["kind"] for s in body["sections"]] == ["findings", "narrative"]
    assert body["sections"][1]["text"] == "age / 120 = 0.500"
    assert "not a diagnosis" in body["decision_support_notice"]


def test_the_demo_setting_opens_predictions(settings: Settings, app: FastAPI) -> None:
    with TestClient(app) as client:  # the lifespan installs the app's settings; the demo opens them afterwards
        app.state.settings = settings.model_copy(update={"public_predict": True})
        r = client.post(f"/api/v1/predict/{NAME}", data={"age": "90"})
    assert r.status_code == 200, r.text
    assert r.json()["probabilities"] == {"OLD": 0.75}


def test_the_rate_limit_answers_429_with_retry_after(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    app = client.app
    app.state.settings = app.state.settings.model_copy(update={"predict_rate_limit": "3/minute"})  # type: ignore[attr-defined]
    codes = [client.post(f"/api/v1/predict/{NAME}", data={"age": "30"}, headers=h).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post(f"/api/v1/predict/{NAME}", data={"age": "30"}, headers=h)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "3/minute" in limited.json()["detail"] and GATE.calls == 3


def test_a_saturated_gate_answers_503_and_queues_nothing_on_the_model(
    client: TestClient, world: World, app: FastAPI
) -> None:
    h = world.a.headers["clinician"]
    GATE.hold = True
    first: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: first.update(r=client.post(f"/api/v1/predict/{NAME}", data={"age": "60"}, headers=h))
    )
    worker.start()
    try:
        assert GATE.started.wait(30), "the first prediction never reached the analyzer"
        busy = client.post(f"/api/v1/predict/{NAME}", data={"age": "60"}, headers=h)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "7"
        assert "busy" in busy.json()["detail"] and "1 prediction(s) at a time" in busy.json()["detail"]
        gate = app.state.predict_gate
        assert (gate.in_flight, gate.refused, GATE.calls) == (1, 1, 1)  # the refused one never reached the model
    finally:
        GATE.release.set()
        worker.join(30)
    assert first["r"].status_code == 200, first["r"].text
    # a clinical job on the same analyzer (the registry's instance, the job path) runs right after
    GATE.hold = False
    result = app.state.registry.get(NAME)(StudyInputs(age_years=30))
    assert result.findings[0].probability == 0.25 and app.state.predict_gate.in_flight == 0


def test_the_form_of_each_analyzer_is_checked(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    missing = client.post(f"/api/v1/predict/{NAME}", data={"explain": "false"}, headers=h)
    assert missing.status_code == 422 and missing.json()["field"] == "age"
    assert "needs age; missing: age" in missing.json()["detail"]
    extra = client.post(f"/api/v1/predict/{NAME}", data={"age": "50", "fundus_left": "x"}, headers=h)
    assert extra.status_code == 422 and extra.json()["field"] == "fundus_left"
    bad = client.post(f"/api/v1/predict/{NAME}", data={"age": "130"}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"] == "age: must be in 0–120 years, got 130"
    as_file = client.post(f"/api/v1/predict/{NAME}", files={"age": ("a.txt", b"50")}, headers=h)
    assert as_file.status_code == 422 and "must be a text field" in as_file.json()["detail"]
    json_body = client.post(f"/api/v1/predict/{NAME}", json={"age": 50}, headers=h)
    assert json_body.status_code == 415 and "multipart/form-data" in json_body.json()["detail"]


def test_an_unknown_analyzer_is_404_with_the_closest_name(client: TestClient, world: World) -> None:
    r = client.post("/api/v1/predict/test.age_gat", data={"age": "50"}, headers=world.a.headers["clinician"])
    assert r.status_code == 404 and f"Did you mean '{NAME}'?" in r.json()["detail"]


def test_the_openapi_document_has_each_analyzers_form(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    op = paths[f"/api/v1/predict/{NAME}"]["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["age"]
    assert schema["properties"]["age"] == {
        "type": "number",
        "title": "Age",
        "description": "The patient's age at the study, in years (0–120).",
        "minimum": 0.0,
        "maximum": 120.0,
    }
    assert op["x-permission"] == "authenticated" and op["summary"] == f"Age rule ({NAME})"
    ecg = paths["/api/v1/predict/ecg.ptbxl"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert ecg["properties"]["ecg"]["format"] == "binary" and ecg["properties"]["ecg.fs_hz"]["maximum"] == 10_000.0
    assert "/api/v1/predict/fundus" in paths and "/api/v1/predict/ecg" in paths  # the old paths stay documented


def test_the_predict_limit_is_shared_by_replicas_through_redis(tmp_path: Path) -> None:
    """Two app instances on one Redis (a private prefix): 3/minute holds across both, not 3 per replica."""
    from tests.utils.shared_redis import private_redis

    with private_redis() as space:
        settings = Settings(
            environment="test",
            secret_key=TEST_SECRET,
            data_dir=tmp_path,
            public_predict=True,
            predict_rate_limit="3/minute",
            redis_url=space.url,
            redis_prefix=space.prefix,
        )
        from vitalens.service.app import create_app

        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            codes = [c.post(f"/api/v1/predict/{NAME}", data={"age": "60"}).status_code for c in (one, two, one, two)]
        assert codes == [200, 200, 200, 429]
        assert any(":limits" in k for k in space.keys())  # the windows live in the shared Redis


FLOOR = "test.floor128"


@pytest.fixture
def floor_analyzer() -> Iterator[None]:
    """An analyzer of the right fundus asking for 128 px (the slot's own floor is 64), registered before the app."""
    from vitalens.slots import ImageLimits

    register_analyzer(
        FLOOR,
        modality="test",
        inputs=("fundus_right",),
        limits={"fundus_right": ImageLimits(min_side=128)},
        render=(Findings(), Narrative()),
        title="Floor 128",
    )(type("Floor128", (_AgeAnalyzer,), {}))
    try:
        yield
    finally:
        ANALYZERS.unregister(FLOOR)


def test_a_small_image_is_told_the_analyzers_own_floor(floor_analyzer: None, client: TestClient, world: World) -> None:
    """A 40 px and a 100 px photograph are both told the analyzer's 128 px, neither the slot's 64 px: the decoder
    refuses with the contract's limits."""
    import io

    from PIL import Image

    for side in (40, 100):
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (120, 40, 20)).save(buf, format="PNG")
        r = client.post(
            f"/api/v1/predict/{FLOOR}",
            files={"fundus_right": ("eye.png", buf.getvalue(), "image/png")},
            headers=world.a.headers["clinician"],
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"].endswith(f"image is {side}×{side} px; the shorter side must be at least 128 px")
        assert GATE.calls == 0
