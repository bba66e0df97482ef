"""View models of the web pages, assembled from the same ``service/ops`` functions the API calls.

Why a separate module: the route handlers stay thin (parse, call a builder, render), and the builders are plain
functions of ``(session, user, ...)`` that tests can call without a browser. Every record is read through ops, so
the per-site authorisation (404 for another site's records) and the audit trail are those of the API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from vitalens.reports.sections import Figure, Heading, Part, analyzer_blocks, resolve_blocks, section_heading
from vitalens.store.models import User
from vitalens.web.charts import Bar, TimelinePoint, probability_bars_svg, timeline_svg

__all__ = [
    "BAND_CLASS",
    "AnalyzerView",
    "StudyRow",
    "StudyView",
    "analysis_view",
    "FormGroup",
    "FormSlot",
    "form_groups",
    "missing_analyzer_slots",
    "study_view",
    "timeline_view",
    "worklist_rows",
]

logger = logging.getLogger(__name__)

_FINISHED = ("COMPLETE", "PARTIAL")
#: band / tier text → CSS class (the text itself is always shown: colour is never the only cue)
BAND_CLASS: dict[str, str] = {
    "low": "ok",
    "medium": "warn",
    "moderate": "warn",
    "high": "bad",
}


def band_class(value: str | None) -> str:
    """CSS class for a band or tier value (``neutral`` when unknown)."""
    return BAND_CLASS.get((value or "").lower(), "neutral")


@dataclass
class StudyRow:
    """One worklist line."""

    study: Any
    status: str
    bands: list[tuple[str, str, str]]  # (section title, kind "band"/"tier", value)
    signed: bool
    needs_review: bool


def _latest(analyses: list[Any]) -> Any | None:
    return analyses[-1] if analyses else None


def _badges(analysis: Any | None) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if analysis is None:
        return out
    for stage in analysis.stages:
        result = stage.result or {}
        for kind in ("band", "tier"):
            if result.get(kind):
                out.append((stage.analyzer or "", kind, str(result[kind])))
    return out


def worklist_rows(
    *, session: Session, user: User, q: str | None = None, needs_review: bool = False, limit: int = 50
) -> list[StudyRow]:
    """The site's studies, newest first; ``q`` matches the patient pseudonym or the description.

    Args:
        q: search text (pseudonym substring via the patients op, description substring via the studies op).
        needs_review: keep only studies with a finished analysis that nobody has signed off.
        limit: at most this many rows.
    """
    from vitalens.service.ops import analyses as analysis_ops
    from vitalens.service.ops import patients as patient_ops
    from vitalens.service.ops import reports as report_ops
    from vitalens.service.ops import studies as study_ops

    q = (q or "").strip() or None
    studies = {s.id: s for s in study_ops.list_studies(session=session, user=user, q=q, limit=limit).items}
    if q:
        for patient in patient_ops.list_patients(session=session, user=user, q=q, limit=20).items:
            for s in study_ops.list_studies(session=session, user=user, patient_id=patient.id, limit=limit).items:
                studies.setdefault(s.id, s)
    ordered = sorted(studies.values(), key=lambda s: (s.study_date, s.created_at), reverse=True)[:limit]
    rows = []
    for study in ordered:
        latest = _latest(analysis_ops.list_analyses(session=session, user=user, study_id=study.id))
        signed = report_ops.signed_report(session, study) is not None
        status = latest.status if latest is not None else "NOT ANALYSED"
        review = latest is not None and latest.status in _FINISHED and not signed
        if needs_review and not review:
            continue
        bands = [(section_heading(n).title, kind, value) for n, kind, value in _badges(latest)]
        rows.append(StudyRow(study=study, status=status, bands=bands, signed=signed, needs_review=review))
    return rows


@dataclass
class AnalyzerView:
    """One analyzer's results on the results page: its heading and the parts its contract's render blocks resolve to
    (:mod:`vitalens.reports.sections`), beside the stored fields the page's chrome shows (status, model, warnings).
    """

    name: str
    heading: Heading
    parts: list[Part]
    status: str
    error: str | None
    model_name: str | None
    model_version: str | None
    demonstration: bool
    trained_on: str | None
    band: str | None
    tier: str | None
    proxies: dict[str, float]
    explanation: str
    warnings: list[str]
    card: list[tuple[str, str]]
    findings: list[Any]
    measurements: list[Any]
    chart_svg: str | None


def findings_chart_svg(findings: list[Any], normal: str | None = None, value: str = "Probability") -> str | None:
    """The bars of a findings part (threshold tick per bar), side by side and stacked for a phone, or None without
    findings; the ``normal`` code's bar is drawn neutral (the absence of findings is not itself a finding); ``value``
    names the numbers (the block's)."""
    if not findings:
        return None
    bars = [Bar(_finding_label(f), f.probability, f.threshold, f.positive, normal=f.code == normal) for f in findings]
    # both layouts; the stylesheet shows the stacked one on a phone and the side-by-side one elsewhere
    return probability_bars_svg(bars, value=value, css_class="bars-wide") + probability_bars_svg(
        bars, value=value, width=360, stacked=True, css_class="bars-narrow"
    )


def _finding_label(f: Any) -> str:
    slot = getattr(f, "input_name", None)
    return f"{f.label} ({slot.replace('_', ' ')})" if slot else str(f.label)


def _card_items(card: dict[str, Any]) -> list[tuple[str, str]]:
    """The stored card summary as readable rows (data, metrics with n, operating points, limits, intended use)."""
    from vitalens.reports.card_text import card_summary_items

    return card_summary_items(card)


def analysis_view(analysis: Any) -> list[AnalyzerView]:
    """The per-analyzer sections of a finished (or failed) analysis."""
    views = []
    for stage in analysis.stages:
        if stage.analyzer is None:
            continue
        result = stage.result or {}
        findings = sorted(
            (f for f in analysis.findings if f.analyzer == stage.analyzer), key=lambda f: f.probability, reverse=True
        )
        chart = (
            probability_bars_svg([Bar(f.label, f.probability, f.threshold, f.positive) for f in findings])
            if findings
            else None
        )
        demo = stage.demonstration if stage.demonstration is not None else bool(result.get("demonstration", True))
        measurements = [m for m in analysis.measurements if m.analyzer == stage.analyzer]
        figures = [
            Figure(slot=e.input_name, target=e.target, method=e.method, ref=e)
            for e in analysis.explanations
            if e.analyzer == stage.analyzer and e.overlay_blob_key
        ]
        views.append(
            AnalyzerView(
                name=stage.analyzer,
                heading=section_heading(stage.analyzer, stage.model_name, stage.model_version),
                parts=resolve_blocks(
                    analyzer_blocks(stage.analyzer),
                    result=result,
                    findings=findings,
                    measurements=measurements,
                    figures=figures,
                ),
                status=stage.status,
                error=stage.error,
                model_name=stage.model_name,
                model_version=stage.model_version,
                demonstration=bool(demo),
                trained_on=result.get("trained_on"),
                band=result.get("band"),
                tier=result.get("tier"),
                proxies=dict(result.get("proxies") or {}),
                explanation=str(result.get("explanation") or ""),
                warnings=list(result.get("warnings") or []),
                card=_card_items(dict(result.get("card") or {})),
                findings=findings,
                measurements=measurements,
                chart_svg=chart,
            )
        )
    return views


@dataclass
class StudyView:
    """Everything the results / review page shows."""

    study: Any
    patient: Any
    inputs: list[Any]
    analysis: Any | None
    running: bool
    analyzers: list[AnalyzerView] = field(default_factory=list)
    explanations: dict[str, list[Any]] = field(default_factory=dict)  # input slot → explanations with overlays
    feedback: dict[str, Any] = field(default_factory=dict)  # finding id → latest feedback
    signed: Any | None = None
    has_ecg: bool = False  # some input is an ECG (signal inputs: ``signals``)
    signals: list[Any] = field(default_factory=list)  # the ECG-kind inputs, drawn as 12-lead sheets
    input_by_slot: dict[str, Any] = field(default_factory=dict)  # slot → its (live) input row
    #: ``unsigned``, ``signed`` (read-only) or ``amending``; the open amendment; the signed versions oldest first
    sign_state: str = "unsigned"
    amendment: Any | None = None
    versions: list[SignedVersion] = field(default_factory=list)
    counts: Any | None = None  # ReviewCounts of the newest finished analysis
    review: list[ReviewGroup] = field(default_factory=list)
    plan: dict[str, Any] | None = None  # which analyzers run on the saved inputs, what the others lack

    @property
    def editable(self) -> bool:
        """False while signed (changes need an amendment)."""
        return self.sign_state != "signed"


@dataclass
class SignedVersion:
    """One signed version of the report as the page lists it."""

    version: int
    signer: str
    signed_at: Any
    note: str | None
    reason: str | None
    reviewed_count: int | None
    finding_count: int | None
    content_sha256: str | None


@dataclass
class ReviewItem:
    """One finding to review, with the explanation maps of its code beside it."""

    finding: Any
    explanations: list[Any]


@dataclass
class ReviewGroup:
    """The findings of one section (its clinical title), positives first, then by probability."""

    title: str
    analyzer: str
    items: list[ReviewItem]


def review_groups(analysis: Any, analyzers: list[AnalyzerView]) -> list[ReviewGroup]:
    """The review list: grouped by section in page order, positive findings first, each with its heat maps.

    Why this order: the clinician reviews what the model flagged first, in the section where it is explained.
    """
    maps: dict[tuple[str, str], list[Any]] = {}
    for e in analysis.explanations:
        if e.overlay_blob_key:
            maps.setdefault((e.analyzer, e.target), []).append(e)
    order = {a.name: (i, a.heading.title) for i, a in enumerate(analyzers)}
    groups: dict[str, ReviewGroup] = {}
    for f in analysis.findings:
        _, title = order.get(f.analyzer, (len(order), f.analyzer))
        group = groups.setdefault(f.analyzer, ReviewGroup(title=title, analyzer=f.analyzer, items=[]))
        slot = getattr(f, "input_name", None)
        found = [e for e in maps.get((f.analyzer, f.code), []) if slot is None or e.input_name == slot]
        group.items.append(ReviewItem(finding=f, explanations=found))
    for group in groups.values():
        group.items.sort(key=lambda it: (not it.finding.positive, -float(it.finding.probability)))
    return sorted(groups.values(), key=lambda g: order.get(g.analyzer, (len(order), ""))[0])


def is_signal_slot(slot: str) -> bool:
    """True when ``slot`` is a registered ECG-kind slot (its input is drawn as a 12-lead sheet)."""
    from vitalens.slots import SlotKind, get_slot, is_slot

    return is_slot(slot) and get_slot(slot).kind == SlotKind.ECG


def study_view(*, session: Session, user: User, study_id: str) -> StudyView:
    """The study with its newest analysis, review state and sign-off (404 via ops for other sites)."""
    from vitalens.service.ops import analyses as analysis_ops
    from vitalens.service.ops import reports as report_ops
    from vitalens.service.ops import studies as study_ops
    from vitalens.service.ops.feedback import latest_feedback

    study = study_ops.get_study(session=session, user=user, study_id=study_id)
    inputs = [i for i in study.inputs if i.deleted_at is None]
    analyses = analysis_ops.list_analyses(session=session, user=user, study_id=study.id)
    latest = _latest(analyses)
    from vitalens.service.ops.signing import report_versions
    from vitalens.store.models import User as UserRow

    state, reports = report_versions(session=session, user=user, study_id=study.id)
    view = StudyView(
        study=study,
        patient=study.patient,
        inputs=inputs,
        analysis=latest,
        running=latest is not None and latest.status in ("PENDING", "RUNNING"),
        signed=state.signed,
        has_ecg=any(is_signal_slot(i.slot) for i in inputs),
        signals=[i for i in inputs if is_signal_slot(i.slot)],
        input_by_slot={i.slot: i for i in inputs},
        sign_state=state.state,
        amendment=state.amendment,
    )
    for r in reports:
        if r.status != "signed":
            continue
        signer = session.get(UserRow, r.signed_by_id) if r.signed_by_id else None
        view.versions.append(
            SignedVersion(
                version=r.version,
                signer=(signer.full_name or signer.email) if signer else "unknown",
                signed_at=r.signed_at,
                note=r.note,
                reason=r.amendment_reason,
                reviewed_count=r.reviewed_count,
                finding_count=r.finding_count,
                content_sha256=r.content_sha256,
            )
        )
    if view.editable and (latest is None or latest.status == "FAILED"):
        view.plan = analysis_ops.analysis_plan(analysis_ops.study_slots(session, study))
    if latest is not None:
        view.analyzers = analysis_view(latest)
        view.feedback = latest_feedback(session, latest.id)
        view.review = review_groups(latest, view.analyzers)
        if latest.status in _FINISHED:
            view.counts = report_ops.review_counts(session, latest)
        for e in latest.explanations:
            if e.overlay_blob_key:
                view.explanations.setdefault(e.input_name, []).append(e)
    return view


@dataclass
class TimelinePanel:
    """One section's scores over the patient's studies (eye findings and heart findings never share an axis)."""

    title: str
    analyzer: str
    svg: str


@dataclass
class TimelineStudy:
    """One study of the timeline with its band / tier badges (analyzer title, kind, value)."""

    study: Any
    badges: list[tuple[str, str, str]]


def timeline_view(*, session: Session, user: User, patient_id: str) -> tuple[Any, list[TimelineStudy], list[Any]]:
    """The patient, its studies (newest first, each with its band and tier) and one chart panel per section.

    Each panel is one analyzer's findings over the studies (its clinical title above it); each point is that
    finding's probability in the study's newest finished analysis, linked to the study page, with the study's band
    or tier in that section. Studies of one day are told apart by their creation order; the analyzer's "normal"
    output (from its contract's render blocks) is drawn as the absence of findings, not as a finding.
    """
    from vitalens.service.ops import analyses as analysis_ops
    from vitalens.service.ops import patients as patient_ops
    from vitalens.service.ops import studies as study_ops

    patient = patient_ops.get_patient(session=session, user=user, patient_id=patient_id)
    studies = study_ops.list_studies(session=session, user=user, patient_id=patient.id, limit=200).items
    points: dict[str, list[TimelinePoint]] = {}
    rows: list[TimelineStudy] = []
    created = sorted(studies, key=lambda s: (s.study_date, str(s.created_at or ""), s.id))
    order = {s.id: i for i, s in enumerate(created)}
    for study in studies:
        finished = [
            a
            for a in analysis_ops.list_analyses(session=session, user=user, study_id=study.id)
            if a.status in _FINISHED
        ]
        latest = finished[-1] if finished else None
        raw = _badges(latest)
        rows.append(TimelineStudy(study=study, badges=[(section_heading(n).title, k, v) for n, k, v in raw]))
        if latest is None:
            continue
        when: date = study.study_date
        for f in latest.findings:
            normal = {getattr(b, "normal", None) for b in analyzer_blocks(f.analyzer)} - {None}
            badge = "; ".join(f"{k.capitalize()}: {v}" for n, k, v in raw if n == f.analyzer)
            points.setdefault(f.analyzer, []).append(
                TimelinePoint(
                    _finding_label(f),
                    when,
                    f.probability,
                    f"/studies/{study.id}",
                    study=study.id,
                    order=order[study.id],
                    normal=f.code in normal,
                    badge=badge,
                )
            )
    panels = [
        TimelinePanel(title=section_heading(name).title, analyzer=name, svg=timeline_svg(pts, ident=f"tl{k}"))
        for k, (name, pts) in enumerate(sorted(points.items()))
    ]
    return patient, rows, panels


#: What an image upload slot takes, in words (the same list the server checks: ``vitalens.io.images``).
IMAGE_KINDS_TEXT = "JPEG, PNG, TIFF, BMP, WebP or DICOM"


def _accept(spec: Any) -> str:
    """The file input's ``accept``: the slot's suffixes, and for an image slot its media types and DICOM, which the
    server decodes the same way (so the picker, the hint and the server's error agree)."""
    if str(spec.kind) != "image":
        return ",".join(spec.accept)
    from vitalens.slots import IMAGE_MEDIA_TYPES

    return ",".join(dict.fromkeys([*spec.accept, ".dcm", *IMAGE_MEDIA_TYPES, "application/dicom"]))


@dataclass
class FormSlot:
    """One file slot of the new-study form, as its registered slot and the analyzers that read it declare it."""

    name: str
    title: str
    kind: str
    accept: str  # the file input's ``accept`` (suffixes)
    description: str
    laterality: str | None
    hints: list[Any]  # SlotHint values: extra fields ``<slot>.<hint>`` (the ECG's sampling rate)
    readers: list[str]  # the titles of the analyzers that read it
    kinds: str = ""  # the files it takes, in words, for the hint and the selection-time refusal

    @property
    def ready(self) -> bool:
        """True when some registered analyzer reads the slot (else it is shown disabled, saying why)."""
        return bool(self.readers)


@dataclass
class FormGroup:
    """A fieldset of the form: the file slots of one modality (both eyes side by side)."""

    legend: str
    slots: list[FormSlot]

    @property
    def bilateral(self) -> bool:
        return len(self.slots) > 1 and all(s.laterality for s in self.slots)


def form_groups() -> list[FormGroup]:
    """The new-study form's file slots, from the slot registry and the analyzers' contracts.

    Every uploadable file slot is listed, grouped by modality in registration order (a side-specific pair right
    before left, as a clinician faces the patient); a slot no registered analyzer reads is listed disabled with the
    reason. A plug-in's slot appears here without any edit in ``web/``.
    """
    from vitalens.analyzers import get_contract, list_analyzers
    from vitalens.slots import get_slot, list_slots

    readers: dict[str, list[str]] = {}
    for name in list_analyzers():
        contract = get_contract(name)
        for slot in contract.slots:
            readers.setdefault(slot, []).append(contract.title)
    groups: dict[str, list[FormSlot]] = {}
    for name in list_slots():
        spec = get_slot(name)
        if not spec.is_file or spec.source != "upload":
            continue
        groups.setdefault(spec.modality or spec.name, []).append(
            FormSlot(
                name=spec.name,
                title=spec.title,
                kind=str(spec.kind),
                accept=_accept(spec),
                description=spec.description,
                laterality=spec.laterality,
                hints=list(spec.hints),
                readers=sorted(set(readers.get(spec.name, []))),
                kinds=IMAGE_KINDS_TEXT if str(spec.kind) == "image" else ", ".join(spec.accept),
            )
        )
    out = []
    for slots in groups.values():
        slots.sort(key=lambda s: {"right": 0, "left": 1}.get(s.laterality or "", 2))
        legend = slots[0].title if len(slots) == 1 else " and ".join(s.title for s in slots)
        out.append(FormGroup(legend=legend, slots=slots))
    return out


def missing_analyzer_slots() -> dict[str, bool]:
    """For each uploadable file slot: True when some registered analyzer reads it."""
    return {s.name: s.ready for g in form_groups() for s in g.slots}
