"""Tiny fake analyzers and a store factory for the job, analysis, annotation and report tests.

Why fakes: job tests check the lifecycle (stages, timings, PARTIAL/FAILED, idempotency, recovery), not models;
``test.*`` analyzers answer in microseconds and need no artifact.
"""

from __future__ import annotations

import io
import threading
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

__all__ = ["StoreKit", "make_store", "jpeg_bytes", "add_study", "add_user", "GATE"]

#: Set to make ``test.wait`` block until released (crash-recovery tests).
GATE = threading.Event()
GATE.set()


def _info(name: str) -> ModelInfo:
    return ModelInfo(
        name=f"{name}-tiny", analyzer=name, version="0.0.1", demonstration=True, trained_on="synthetic (test)"
    )


def _result(name: str, **fields: object) -> AnalysisResult:
    return AnalysisResult(analyzer=name, model=_info(name), trained_on="synthetic (test)", demonstration=True, **fields)  # type: ignore[arg-type]


if not is_analyzer("test.echo"):

    @register_analyzer(
        "test.echo", title="Test analyzer (echo)", modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,)
    )
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
                findings=[
                    Finding(code="D", name="Diabetic retinopathy", probability=p, threshold=0.5, positive=p >= 0.5)
                ],
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

    @register_analyzer(
        "test.boom", title="Test analyzer (boom)", modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,)
    )
    class BoomAnalyzer(Analyzer):
        """Test analyzer that crashes."""

        def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
            raise RuntimeError("model exploded")

    @register_analyzer(
        "test.refuse", title="Test analyzer (refuse)", modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,)
    )
    class RefuseAnalyzer(Analyzer):
        """Test analyzer that refuses its input."""

        def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
            raise InputError("image too dark: mean 3 < 20", field="fundus_left")

    @register_analyzer(
        "test.wait", title="Test analyzer (wait)", modality=Modality.FUNDUS, inputs=(InputName.FUNDUS_LEFT,)
    )
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
