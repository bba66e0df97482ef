"""The analyzer contract: what the built-in analyzers declare, requirement logic (all-of, any-of), limits from the
card, the quality-gate hook and the "no bundled model" state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.registry import temporary_analyzer, temporary_gate
from vitalens.analyzers import (
    Analyzer,
    EcgAttribution,
    Findings,
    Measurements,
    Overlays,
    Scores,
    Summary,
    create_analyzer,
    get_contract,
    list_analyzers,
)
from vitalens.domain import AnalysisResult, Finding, ModelInfo, QualityVerdict, StudyInputs
from vitalens.errors import InputError, QualityRefusal
from vitalens.quality import flagged, passed, refused
from vitalens.slots import ImageLimits


def test_built_in_contracts_name_titles_slots_adapters_and_blocks() -> None:
    odir = get_contract("fundus.odir")
    assert odir.title == "Eyes → heart" and odir.dataset == "odir" and odir.default_artifact == "fundus-odir"
    assert odir.inputs == ("fundus_left", "fundus_right", "age") and odir.optional_inputs == ("sex",)
    assert [type(b) for b in odir.blocks][:4] == [Summary, Findings, Scores, Overlays]
    scores = next(b for b in odir.blocks if isinstance(b, Scores))
    assert (
        scores.formulas["hypertension"] == "0.7·P(hypertensive retinopathy) + 0.2·P(diabetic retinopathy) + 0.1·P(AMD)"
    )
    assert scores.formulas["overall"] == "0.4·hypertension + 0.35·diabetes + 0.25·atherosclerotic"
    ecg = get_contract("ecg.ptbxl")
    assert ecg.title == "12-lead ECG" and ecg.dataset == "ptbxl"
    assert any(isinstance(b, EcgAttribution) for b in ecg.blocks)
    intervals = get_contract("ecg.intervals")
    assert intervals.title == "ECG intervals" and intervals.dataset is None and intervals.default_artifact is None
    assert [type(b) for b in intervals.blocks][0] is Measurements
    public = odir.public()
    assert public["slots"][0]["title"] == "Left eye (OS)" and public["slots"][0]["limits"]["max_aspect"] == 2.0
    assert public["render"][0] == {"kind": "summary", "title": "", "fields": ["band"], "glossary": {"band": "band"}}


def test_every_analyzer_has_a_title_and_registered_slots() -> None:
    for name in list_analyzers():
        contract = get_contract(name)
        assert contract.title and contract.title != name, name
        assert contract.slots and all(u.spec.name == u.slot for u in contract.uses)


def test_limits_come_from_the_card_where_a_card_exists() -> None:
    analyzer = create_analyzer("fundus.odir")
    assert analyzer.slot_limits("fundus_left") == ImageLimits(colour="rgb", min_side=128, max_aspect=2.0)
    with pytest.raises(InputError, match="fundus_left: image is 100×100 px; the shorter side must be at least 128"):
        analyzer.validate_input("fundus_left", np.zeros((100, 100, 3), np.uint8))
    ecg = create_analyzer("ecg.ptbxl").slot_limits("ecg")
    assert ecg.required_leads is not None and len(ecg.required_leads) == 12


class _PerEye(Analyzer):
    """Test analyzer: one finding per eye present."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(None, device="cpu")

    def model_info(self) -> ModelInfo:
        return ModelInfo(name="t", analyzer=self.name, version="0", demonstration=True, trained_on="nothing")

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        findings = [
            Finding(code="X", name="x", probability=float(inputs.get(s).mean() / 255), positive=False, input_name=s)
            for s in ("fundus_left", "fundus_right")
            if inputs.has(s)
        ]
        info = self.model_info()
        return AnalysisResult(
            analyzer=self.name, model=info, trained_on=info.trained_on, demonstration=True, findings=findings
        )


def test_any_of_runs_on_whichever_eyes_are_present() -> None:
    with temporary_analyzer(
        "test.per_eye",
        _PerEye,
        modality="fundus",
        title="Per eye",
        any_of=[("fundus_left", "fundus_right")],
        limits={"fundus_left": ImageLimits(min_side=32), "fundus_right": ImageLimits(min_side=32)},
    ):
        contract = get_contract("test.per_eye")
        assert contract.applies_to({"fundus_right"}) and not contract.applies_to({"age"})
        assert contract.missing({"age"}) == ["fundus_left or fundus_right"]
        analyzer = create_analyzer("test.per_eye")
        result = analyzer(StudyInputs(fundus_right=np.full((64, 64, 3), 51, np.uint8)))
        assert [(f.input_name, f.probability) for f in result.findings] == [("fundus_right", 0.2)]
        with pytest.raises(InputError, match="test.per_eye needs fundus_left or fundus_right; missing: fundus_left or"):
            analyzer(StudyInputs(age_years=50))
    assert "test.per_eye" not in list_analyzers()


def _gate(value: np.ndarray, *, slot: str, analyzer: object = None):  # noqa: ANN202
    mean = float(value.mean())
    if mean < 10:
        return refused(slot, "test.exposure", f"image is black (mean {mean:.1f})", mean=mean)
    if mean > 240:
        return flagged(slot, "test.exposure", f"over-exposed (mean {mean:.1f})", mean=mean)
    return passed(slot, "test.exposure", mean=mean)


def test_quality_gates_pass_flag_or_refuse_before_the_analyzer_runs() -> None:
    with (
        temporary_gate("test.exposure", _gate),
        temporary_analyzer(
            "test.gated",
            _PerEye,
            modality="fundus",
            title="Gated",
            inputs=("fundus_left",),
            quality_gates={"fundus_left": ("test.exposure",)},
        ),
    ):
        analyzer = create_analyzer("test.gated")
        ok = analyzer(StudyInputs(fundus_left=np.full((80, 80, 3), 100, np.uint8)))
        assert [q.verdict for q in ok.quality] == [QualityVerdict.PASS] and ok.quality[0].metrics == {"mean": 100.0}
        bright = analyzer(StudyInputs(fundus_left=np.full((80, 80, 3), 250, np.uint8)))
        assert bright.quality[0].verdict == QualityVerdict.FLAG
        assert bright.warnings == ["input quality (fundus_left, test.exposure): over-exposed (mean 250.0)"]
        with pytest.raises(
            QualityRefusal, match="fundus_left: refused by the quality gate test.exposure: image is black"
        ):
            analyzer(StudyInputs(fundus_left=np.full((80, 80, 3), 3, np.uint8)))


def test_gates_for_slots_the_analyzer_does_not_read_are_an_error() -> None:
    with pytest.raises(ValueError, match="quality gates for slots it does not read: \\['oct'\\]"):
        with temporary_analyzer(
            "test.badgate", _PerEye, modality="fundus", inputs=("fundus_left",), quality_gates={"oct": ("x",)}
        ):
            pass
    assert "test.badgate" not in list_analyzers()


def test_unknown_slots_fail_at_registration() -> None:
    with pytest.raises(ValueError, match="Unknown input slot 'fundus_lefft'. Did you mean 'fundus_left'"):
        with temporary_analyzer("test.badslot", _PerEye, modality="fundus", inputs=("fundus_lefft",)):
            pass


class _NeedsModel(Analyzer):
    """Test analyzer that needs a model nobody bundled."""

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        raise AssertionError("not reached")


def test_no_bundled_model_is_a_clear_state(tmp_path: Path) -> None:
    with temporary_analyzer(
        "test.unbundled",
        _NeedsModel,
        modality="oct",
        title="OCT (test)",
        inputs=("oct",),
        default_artifact="oct-none",
        labels=(("A", "a"), ("B", "b")),
        train_command="vitalens train test.unbundled --data X/",
    ):
        analyzer = create_analyzer("test.unbundled", models_dir=tmp_path)
        state = analyzer.availability()
        assert not state.ready
        assert state.reason == (
            f"no bundled model for test.unbundled (looked in {tmp_path / 'oct-none'}). "
            "Train one with `vitalens train test.unbundled --data X/`."
        )
        assert analyzer.labels() == [("A", "a"), ("B", "b")]
        analyzer.validate_input("oct", np.zeros((64, 64), np.uint8))  # the contract's limits need no card
