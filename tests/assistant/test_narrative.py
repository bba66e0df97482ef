"""The narrative paragraph: exact template text, and the LLM tier that may only rephrase."""

from __future__ import annotations

from tests.assistant.conftest import ecg_intervals_result, fundus_result
from tests.utils.stub_llm import StubLLM
from vitalens.assistant import FindingReview, LLMConfig, StudyFacts, build_narrative, narrative_sentences

TEMPLATE = (
    "Fundus screening (fundus-odir-lite0 0.1.0, a demonstration model): Diabetic retinopathy above the decision "
    "threshold (Diabetic retinopathy probability 0.72, threshold 0.41). The cardiovascular proxy band is Medium "
    "(overall 0.42). ecg.intervals (neurokit2-dwt 1) reports 3 measurements. Outside the reference range: "
    "QTc_bazett_ms 472 ms (high; "
    "reference 340–450 ms). 1 of 2 measured values are within their reference ranges. Not computed: QRS_axis_deg. "
    "Clinician review: 1 confirmed; the report is not signed."
)


def _facts() -> StudyFacts:
    return StudyFacts(
        study_id="s1",
        results=[fundus_result(), ecg_intervals_result()],
        reviews=[FindingReview(analyzer="fundus.odir", code="D", action="confirm", reviewer="dr.a")],
    )


def test_template_paragraph_exact() -> None:
    narrative = build_narrative(_facts(), titles={"fundus.odir": "Fundus screening"})
    assert narrative.tier == "template"
    assert narrative.text == TEMPLATE


def test_no_positive_finding_and_nothing_reviewed() -> None:
    result = fundus_result()
    result.findings[0] = result.findings[0].model_copy(update={"positive": False, "probability": 0.3})
    facts = StudyFacts(study_id="s", results=[result], signed_by="dr.b")
    assert narrative_sentences(facts)[0] == (
        "fundus.odir (fundus-odir-lite0 0.1.0, a demonstration model): no finding above its decision threshold "
        "(highest Diabetic retinopathy at 0.30)."
    )
    assert narrative_sentences(facts)[-1] == "No finding has been reviewed by a clinician yet; signed off by dr.b."
    assert narrative_sentences(StudyFacts(study_id="e")) == [
        "No analysis has finished for this study.",
        "No finding has been reviewed by a clinician yet; the report is not signed.",
    ]


def _rephrase(stub: StubLLM, reply: str) -> tuple[str, str, list[str]]:
    stub.reply = reply
    n = build_narrative(
        _facts(),
        titles={"fundus.odir": "Fundus screening"},
        llm=LLMConfig(base_url=stub.base_url, model="stub", timeout_s=10),
    )
    return n.tier, n.text, n.warnings


FAITHFUL = (
    "On fundus screening (fundus-odir-lite0 0.1.0, a demonstration model), Diabetic retinopathy is above the decision "
    "threshold with Diabetic retinopathy probability 0.72 against a threshold of 0.41, and the cardiovascular proxy "
    "band is Medium (overall 0.42). The ecg.intervals analysis (neurokit2-dwt 1) reports 3 measurements: "
    "QTc_bazett_ms is outside the "
    "reference range at 472 ms (high; reference 340–450 ms); 1 of 2 measured values are within their reference "
    "ranges, and QRS_axis_deg was not computed. Clinician review: 1 confirmed; the report is not signed."
)


def test_a_faithful_rephrasing_is_used(stub: StubLLM) -> None:
    tier, text, warnings = _rephrase(stub, FAITHFUL)
    assert (tier, warnings) == ("llm", [])
    assert text == FAITHFUL
    assert stub.requests[0]["messages"][1]["content"] == TEMPLATE


def test_a_rephrasing_that_adds_a_finding_is_refused(stub: StubLLM) -> None:
    tier, text, warnings = _rephrase(stub, FAITHFUL + " Glaucoma is also suspected.")
    assert tier == "template" and text == TEMPLATE
    assert warnings == ["The language model's rephrasing was not used: it names what the template does not (glaucoma)."]


def test_a_rephrasing_that_changes_a_number_or_drops_a_finding_is_refused(stub: StubLLM) -> None:
    tier, _, warnings = _rephrase(stub, FAITHFUL.replace("0.72", "0.27"))
    assert tier == "template" and "its numbers differ from the template's" in warnings[0]
    tier, _, warnings = _rephrase(
        stub,
        FAITHFUL.replace("Diabetic retinopathy is above", "Something is above").replace(
            "with Diabetic retinopathy probability", "with probability"
        ),
    )
    assert tier == "template" and "it leaves out diabetic retinopathy" in warnings[0]


def test_an_unreachable_rephraser_leaves_the_template() -> None:
    n = build_narrative(_facts(), llm=LLMConfig(base_url="http://127.0.0.1:9/v1", model="x", timeout_s=2))
    assert n.tier == "template" and n.warnings[0].startswith("Not rephrased: the language model endpoint could not")
