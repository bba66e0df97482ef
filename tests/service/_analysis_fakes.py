"""Tiny fake analyzers and a store factory for the job, analysis, annotation and report tests.

Why fakes: job tests check the lifecycle (stages, timings, PARTIAL/FAILED, idempotency, recovery), not models;
``test.*`` analyzers answer in microseconds and need no artifact. Importing this module registers nothing: tests use
the ``fake_analyzers`` fixture (:func:`registered_fakes`), which unregisters them afterwards; a worker subprocess
imports ``tests.service._fakes_worker`` to register them in its own process.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from vitalens.analyzers import Analyzer, is_analyzer, register_analyzer
from vitalens.domain import (
    AnalysisResult,
    Explanation,
    Finding,
    InputName,
    Measurement,
    Modality,
    ModelInfo,
    RiskBand,
    StudyInputs,
)
from vitalens.errors import InputError

__all__ = [
    "StoreKit",
    "make_store",
    "jpeg_bytes",
    "add_study",
    "add_user",
    "GATE",
    "FAKES",
    "registered_fakes",
    "register_in_this_process",
]

#: Set to make ``test.wait`` block until released (crash-recovery tests).
GATE = threading.Event()
GATE.set()


def _info(name: str) -> ModelInfo:
    return ModelInfo(
        name=f"{name}-tiny", analyzer=name, version="0.0.1", demonstration=True, trained_on="synthetic (test)"
    )


def _result(name: str, **fields: object) -> AnalysisResult:
    return AnalysisResult(analyzer=name, model=_info(name), trained_on="synthetic (test)", demonstration=True, **fields)  # type: ignore[arg-type]


class EchoAnalyzer(Analyzer):
    """Test analyzer: finding probability = mean brightness of the left fundus."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        img = inputs.fundus_left
        assert img is not None
        p = float(img.mean() / 255.0)
        heat = np.full(img.shape[:2], 0.5, dtype=np.float32)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        return _result(
            "test.echo",
            findings=[Finding(code="D", name="Diabetic retinopathy", probability=p, threshold=0.5, positive=p >= 0.5)],
            measurements=[Measurement(name="brightness", value=round(p * 255, 3), unit="a.u.")],
            explanations=[
                Explanation(
                    target="D",
                    input_name="fundus_left",
                    method="constant",
                    heatmap=heat,
                    overlay_png=buf.getvalue(),
                )
            ],
            band=RiskBand.LOW,
            proxies={"hypertension": 0.25},
            explanation="echo explanation",
        )


class BoomAnalyzer(Analyzer):
    """Test analyzer that crashes."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        raise RuntimeError("model exploded")


class RefuseAnalyzer(Analyzer):
    """Test analyzer that refuses its input."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        raise InputError("image too dark: mean 3 < 20", field="fundus_left")


class WaitAnalyzer(Analyzer):
    """Test analyzer that waits for ``GATE`` and while the file ``$VITALENS_TEST_HOLD`` exists (≤ 20 s each)."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        import os
        import time

        GATE.wait(20)
        hold = os.environ.get("VITALENS_TEST_HOLD")
        deadline = time.monotonic() + 20
        while hold and Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return _result("test.wait", findings=[Finding(code="X", name="x", probability=0.1, positive=False)])


class HogAnalyzer(Analyzer):
    """Test analyzer that allocates (and touches) ``$VITALENS_TEST_HOG_MB`` MB in 20 MB steps, then answers: the
    poison job of the memory-guard test."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        import os
        import time

        hoard = []
        for _ in range(int(os.environ.get("VITALENS_TEST_HOG_MB", "100")) // 20):
            hoard.append(np.ones(20 * 2**20, dtype=np.uint8))
            time.sleep(0.05)  # slower than the guard samples (0.25 s), so it sees the growth on a fast machine too
        return _result(
            "test.hog", findings=[Finding(code="X", name="x", probability=float(len(hoard)) / 1e6, positive=False)]
        )


#: name → class of every fake; contracts are all "a left fundus photograph".
FAKES: dict[str, type[Analyzer]] = {
    "test.echo": EchoAnalyzer,
    "test.boom": BoomAnalyzer,
    "test.refuse": RefuseAnalyzer,
    "test.wait": WaitAnalyzer,
    "test.hog": HogAnalyzer,
}


def _title(name: str) -> str:
    return f"Test analyzer ({name.split('.', 1)[1]})"


@contextmanager
def registered_fakes() -> Iterator[None]:
    """Register every ``test.*`` analyzer for the ``with`` block only (nothing leaks into the global registry)."""
    from tests.utils.registry import temporary_analyzer

    with ExitStack() as stack:
        for name, cls in FAKES.items():
            stack.enter_context(
                temporary_analyzer(
                    name, cls, title=_title(name), modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,)
                )
            )
        yield


def register_in_this_process() -> None:
    """Register the fakes for good: only for a *separate* process (a Celery worker, a job subprocess)."""
    for name, cls in FAKES.items():
        if not is_analyzer(name):
            register_analyzer(name, title=_title(name), modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,))(cls)


def jpeg_bytes(value: int = 200, size: int = 96) -> bytes:
    """A uniform RGB JPEG of ``size``×``size`` pixels with the given grey ``value``."""
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@dataclass
class StoreKit:
    """A fresh database + blob store + job context for one test."""

    url: str
    session_factory: object
    blobs: object
    ctx: object


def make_store(tmp_path: Path) -> StoreKit:
    from vitalens.config import Settings
    from vitalens.service.jobs import JobContext
    from vitalens.service.registry import ModelRegistry
    from vitalens.store import Base, LocalBlobStore, make_engine, make_session_factory

    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    blobs = LocalBlobStore(tmp_path / "blobs")
    settings = Settings(data_dir=tmp_path, environment="test")
    ctx = JobContext(session_factory=factory, blobs=blobs, registry=ModelRegistry(settings), settings=settings)
    return StoreKit(url=url, session_factory=factory, blobs=blobs, ctx=ctx)


def add_user(session, *, site_name: str = "North", role: str = "clinician", email: str | None = None):  # noqa: ANN001, ANN201
    from vitalens.service.security import hash_password
    from vitalens.store import Site, User

    site = session.query(Site).filter_by(name=site_name).one_or_none()
    if site is None:
        site = Site(name=site_name)
        session.add(site)
        session.flush()
    user = User(
        site_id=site.id,
        email=email or f"{role}@{site_name.lower()}.example",
        role=role,
        full_name=f"Dr {role.title()}",
        password_hash=hash_password("correct horse battery"),
    )
    session.add(user)
    session.commit()
    return user


def add_study(
    session,
    blobs,
    user,
    *,
    fundus_value: int | None = 200,
    age: float | None = 60.0,  # noqa: ANN001, ANN201
    pseudonym: str = "P-0001",
):
    """A patient + study of ``user``'s site with a left (and right) fundus JPEG stored in ``blobs``."""
    from vitalens.store import Input, Patient, Study

    patient = Patient(site_id=user.site_id, pseudonym=pseudonym, sex="female", year_of_birth=1965)
    session.add(patient)
    session.flush()
    study = Study(patient_id=patient.id, site_id=user.site_id, study_date=date(2024, 5, 1), age_years=age)
    session.add(study)
    session.flush()
    if fundus_value is not None:
        for slot in ("fundus_left", "fundus_right"):
            data = jpeg_bytes(fundus_value)
            key = blobs.put(data)
            import hashlib

            session.add(
                Input(
                    study_id=study.id,
                    slot=slot,
                    modality="fundus",
                    eye=slot.split("_")[1],
                    filename=f"{slot}.jpg",
                    content_sha256=hashlib.sha256(data).hexdigest(),
                    media_type="image/jpeg",
                    size_bytes=len(data),
                    blob_key=key,
                    width=96,
                    height=96,
                )
            )
    session.commit()
    return study
