"""Start-up model warm-up: loads exactly the models present, survives a broken one, off in the test environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from vitalens.config import Settings
from vitalens.service.jobs.warmup import start_warmup, warm_models, warmup_enabled


@dataclass
class _Analyzer:
    artifact: str | None
    ready: bool
    broken: bool = False
    loads: int = 0

    @property
    def spec(self) -> Any:
        return SimpleNamespace(default_artifact=self.artifact)

    def availability(self) -> Any:
        return SimpleNamespace(ready=self.ready)

    def model(self) -> object:
        self.loads += 1
        if self.broken:
            raise RuntimeError("weights do not fit")
        return object()


@dataclass
class _Registry:
    analyzers: dict[str, _Analyzer] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.analyzers)

    def get(self, name: str) -> _Analyzer:
        return self.analyzers[name]


def test_loads_only_present_models_and_survives_a_broken_one(caplog: pytest.LogCaptureFixture) -> None:
    registry = _Registry(
        {
            "a.present": _Analyzer("a", ready=True),
            "b.absent": _Analyzer("b", ready=False),
            "c.no_model": _Analyzer(None, ready=True),
            "d.broken": _Analyzer("d", ready=True, broken=True),
        }
    )
    loaded = warm_models(registry)
    assert list(loaded) == ["a.present"] and loaded["a.present"] >= 0.0
    assert [registry.get(n).loads for n in registry.names()] == [1, 0, 0, 1]
    assert "warm-up of d.broken failed" in caplog.text


def test_start_warmup_runs_in_the_background() -> None:
    registry = _Registry({"a.present": _Analyzer("a", ready=True)})
    thread = start_warmup(registry)
    thread.join(timeout=10)
    assert thread.daemon and not thread.is_alive() and registry.get("a.present").loads == 1


@pytest.mark.parametrize(
    ("environment", "warm", "expected"),
    [("dev", None, True), ("prod", None, True), ("test", None, False), ("test", True, True), ("prod", False, False)],
)
def test_enabled(environment: str, warm: bool | None, expected: bool) -> None:
    settings = Settings(environment=environment, warm_models=warm, secret_key="k" * 40)
    assert warmup_enabled(settings) is expected
