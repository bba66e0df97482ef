"""Study reports: gather what the store holds into a :class:`~vitalens.reports.StudyReport`, render the PDF or the
FHIR DiagnosticReport, and sign a study off.

Why signing pins bytes: once signed, the exact PDF is stored as a blob with its sha256 and served from then on,
so what the clinician signed is what anyone later reads. Before sign-off the report is a draft rendered on demand.
After sign-off the study is read-only (:mod:`vitalens.service.ops.signing`); an amendment with a reason makes it
editable, and signing the amendment pins a new version while the earlier ones stay retrievable.

Why sign-off counts reviews: a study signed with 11 of 13 findings unreviewed must say so. Signing with any finding
unreviewed needs an explicit acknowledgement, the report records ``reviewed_count`` of ``finding_count``, and
``VITALENS_SIGNOFF_REQUIRE_POSITIVE_REVIEW`` refuses sign-off while a positive finding is unreviewed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.service.ops import Conflict, NotFound, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.service.ops.signing import sign_state, snapshot_hash, snapshot_of
from vitalens.store.blobs import BlobStore
from vitalens.store.models import Analysis, Annotation, Report, Site, Study, User, utcnow

__all__ = [
    "build_report_data",
    "report_signoff",
    "study_report_pdf",
    "study_report_fhir",
    "sign_off",
    "signed_report",
    "signed_version_pdf",
    "current_snapshot_hash",
    "review_counts",
    "ReviewCounts",
]

logger = logging.getLogger(__name__)

_FINISHED = ("COMPLETE", "PARTIAL")


def _latest_analysis(session: Session, study: Study) -> Analysis | None:
    return session.scalar(
        select(Analysis)
        .where(Analysis.study_id == study.id, Analysis.status.in_(_FINISHED))
        .order_by(Analysis.created_at.desc())
        .limit(1)
    )


def signed_report(session: Session, study: Study) -> Report | None:
    """The newest signed report of ``study``, if any."""
    return session.scalar(
        select(Report)
        .where(Report.study_id == study.id, Report.status == "signed")
        .order_by(Report.version.desc(), Report.signed_at.desc())
        .limit(1)
    )


def _three_panel_slots(analyzer: str) -> set[str]:
    """The slots ``analyzer``'s contract shows as original | map | overlay."""
    from vitalens.reports.sections import analyzer_blocks

    return {getattr(b, "slot", "") for b in analyzer_blocks(analyzer) if b.kind == "three_panel"}


def _panels(blobs: BlobStore, e: Any, inputs: list[Any]) -> tuple[Any, Any]:
    """The original image and the map alone of a three-panel explanation (None where a blob is missing)."""
    import io

    import numpy as np

    from vitalens.explain.overlay import heatmap_png
    from vitalens.reports import ReportImage

    original = heat = None
    row = next((i for i in inputs if i.slot == e.input_name and i.media_type in ("image/jpeg", "image/png")), None)
    try:
        if row is not None:
            original = ReportImage(title="Original", data=blobs.get(row.blob_key))
        if e.heatmap_blob_key:
            arr = np.load(io.BytesIO(blobs.get(e.heatmap_blob_key)), allow_pickle=False)
            if arr.ndim == 2:
                heat = ReportImage(title="Heat map", data=heatmap_png(arr))
    except KeyError:
        logger.warning("a blob of explanation %s is missing; its three-panel view is incomplete", e.id)
    return original, heat


def build_report_data(session: Session, blobs: BlobStore, study: Study, *, signoff: Any | None = None) -> Any:
    """A :class:`vitalens.reports.StudyReport` of ``study`` from its newest finished analysis (no access check)."""
    from vitalens.domain import Measurement as MeasurementValue
    from vitalens.domain import QualityResult
    from vitalens.reports import (
        ReportAnalysis,
        ReportAnnotation,
        ReportFigure,
        ReportFinding,
        ReportImage,
        ReportInput,
        StudyReport,
    )
    from vitalens.reports.sections import section_heading
    from vitalens.service.ops.feedback import latest_feedback
    from vitalens.store.models import User as UserRow

    analysis = _latest_analysis(session, study)
    inputs = [i for i in study.inputs if i.deleted_at is None]
    figures: dict[str, list[Any]] = {}  # analyzer → its maps with pictures (drawn by its render blocks)
    analyses: list[Any] = []
    if analysis is not None:
        reviews = latest_feedback(session, analysis.id)
        for e in analysis.explanations:
            if e.overlay_blob_key:
                try:
                    data = blobs.get(e.overlay_blob_key)
                except KeyError:
                    continue
                figure = ReportFigure(
                    slot=e.input_name,
                    target=e.target,
                    method=e.method,
                    image=ReportImage(title=f"{e.method} {e.target}", data=data, caption=e.input_name),
                )
                if e.input_name in _three_panel_slots(e.analyzer):
                    figure.original, figure.heat = _panels(blobs, e, inputs)
                figures.setdefault(e.analyzer, []).append(figure)
        for stage in analysis.stages:
            if stage.analyzer is None:
                continue
            result = stage.result or {}
            stored_codes = {f.get("code"): f.get("codes") or [] for f in result.get("findings") or []}
            stored_measures = {m.get("name"): m for m in result.get("measurements") or []}
            findings = []
            for f in (x for x in analysis.findings if x.analyzer == stage.analyzer):
                fb = reviews.get(f.id)
                findings.append(
                    ReportFinding(
                        code=f.code,
                        name=f.label,
                        probability=f.probability,
                        threshold=f.threshold,
                        positive=f.positive,
                        tier=f.tier,
                        review={"confirm": "confirmed", "correct": "corrected", "reject": "rejected"}.get(fb.action)
                        if fb
                        else None,
                        corrected_positive=fb.corrected_positive if fb else None,
                        review_note=(fb.comment or None) if fb else None,
                        codes=stored_codes.get(f.code, []),
                        input_name=f.input_name,
                    )
                )
            analyses.append(
                ReportAnalysis(
                    analyzer=stage.analyzer,
                    title=section_heading(stage.analyzer).title,
                    status=stage.status,
                    model_name=stage.model_name,
                    model_version=stage.model_version,
                    demonstration=stage.demonstration if stage.demonstration is not None else True,
                    trained_on=result.get("trained_on"),
                    band=result.get("band"),
                    tier=result.get("tier"),
                    proxies=result.get("proxies") or {},
                    explanation=result.get("explanation") or "",
                    quality=[QualityResult.model_validate(q) for q in result.get("quality") or []],
                    warnings=list(result.get("warnings") or []),
                    findings=findings,
                    measurements=[
                        MeasurementValue(
                            name=m.name,
                            value=m.value,
                            unit=m.unit,
                            reference_low=m.reference_low,
                            reference_high=m.reference_high,
                            flag=m.flag,
                            method=m.method,
                            code=(stored_measures.get(m.name) or {}).get("code"),
                            unit_ucum=(stored_measures.get(m.name) or {}).get("unit_ucum"),
                        )
                        for m in analysis.measurements
                        if m.analyzer == stage.analyzer
                    ],
                    error=stage.error,
                    extras=dict(result.get("extras") or {}),
                    figures=figures.get(stage.analyzer, []),
                )
            )
    from vitalens.reports.regions import Region, draw_regions

    annotations = session.scalars(
        select(Annotation)
        .where(Annotation.study_id == study.id, Annotation.is_current.is_(True), Annotation.deleted_at.is_(None))
        .order_by(Annotation.created_at)
    ).all()
    report_inputs = []
    for inp in inputs:
        image = None
        if inp.media_type.startswith("image/") and inp.media_type in ("image/jpeg", "image/png"):
            try:
                image_bytes: bytes | None = blobs.get(inp.blob_key)
            except KeyError:
                image_bytes = None
            if image_bytes is not None:
                regions = [
                    Region(a.shape, dict(a.geometry or {}), a.label, n)
                    for n, a in enumerate(annotations, start=1)
                    if a.input_id == inp.id and a.shape in ("box", "polygon")
                ]
                title = "Original"
                if regions:
                    try:
                        image_bytes = draw_regions(image_bytes, regions)
                        title = "Original with the clinician's annotations (numbered as in the table)"
                    except OSError as exc:
                        logger.warning("annotations of input %s not drawn: %s", inp.id, exc)
                image = ReportImage(title=title, data=image_bytes)
        size = f" {inp.width}x{inp.height} px" if inp.width and inp.height else ""
        report_inputs.append(ReportInput(name=inp.slot, kind=f"{inp.media_type}{size}", image=image))
    slot_of = {i.id: i.slot for i in inputs}
    authors = {
        u.id: u.email
        for u in session.scalars(
            select(UserRow).where(UserRow.id.in_({a.author_id for a in annotations if a.author_id}))
        ).all()
    }
    site = session.get(Site, study.site_id)
    return StudyReport(
        narrative=_narrative(session, study, signoff),
        clinician_note=study.notes or "",
        study_id=study.id,
        pseudonym=study.patient.pseudonym,
        site=site.name if site is not None else None,
        study_created_at=study.created_at,
        study_date=study.study_date,
        age_years=study.age_years,
        sex=study.patient.sex,
        inputs=report_inputs,
        analyses=analyses,
        annotations=[
            ReportAnnotation(
                input_name=slot_of.get(a.input_id or "", "study"),
                kind=a.shape,
                label=f"{n}. {a.label or '(no label)'}",
                note=a.text or None,
                author=authors.get(a.author_id or ""),
                version=a.version,
            )
            for n, a in enumerate(annotations, start=1)
        ],
        signoff=signoff,
    )


def _narrative(session: Session, study: Study, signoff: Any | None) -> str:
    """The template narrative paragraph of the study (signed by ``signoff``'s clinician when it is being signed)."""
    from vitalens.assistant import build_narrative
    from vitalens.service.ops.assistant import analyzer_titles, study_facts

    facts = study_facts(session, study)
    if signoff is not None:
        facts = facts.model_copy(update={"signed_by": signoff.clinician, "signed_at": signoff.signed_at})
    return str(build_narrative(facts, titles=analyzer_titles([r.analyzer for r in facts.results])).text)


def study_report_pdf(*, session: Session, blobs: BlobStore, user: User, study_id: str) -> bytes:
    """The study's PDF: the signed one when signed, else a draft rendered now (audited read)."""
    from vitalens.reports import build_study_report

    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    signed = signed_report(session, study)
    if signed is not None and signed.blob_key:
        pdf = blobs.get(signed.blob_key)
    else:
        pdf = build_study_report(build_report_data(session, blobs, study))
    record_event(
        session=session,
        actor=user,
        action="report.read",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"signed": signed is not None},
    )
    session.commit()
    return pdf


def _signer_name(session: Session, user_id: str | None) -> str:
    signer = session.get(User, user_id) if user_id else None
    return (signer.full_name or signer.email) if signer else "unknown"


def report_signoff(session: Session, study: Study) -> Any | None:
    """The :class:`~vitalens.reports.ReportSignoff` of the study's current signed report, or None while unsigned."""
    signed = signed_report(session, study)
    if signed is None or signed.signed_at is None:
        return None
    return _signoff_of(session, signed)


def _signoff_of(session: Session, signed: Report) -> Any:
    from vitalens.reports import ReportSignoff, ReportVersion

    earlier = session.scalars(
        select(Report)
        .where(Report.study_id == signed.study_id, Report.status == "signed", Report.version < signed.version)
        .order_by(Report.version)
    ).all()
    return ReportSignoff(
        clinician=_signer_name(session, signed.signed_by_id),
        signed_at=signed.signed_at or utcnow(),
        note=signed.note,
        amends=signed.amends_id,
        version=signed.version,
        amendment_reason=signed.amendment_reason,
        finding_count=signed.finding_count,
        reviewed_count=signed.reviewed_count,
        history=[
            ReportVersion(
                version=r.version,
                clinician=_signer_name(session, r.signed_by_id),
                signed_at=r.signed_at or r.created_at,
                reason=r.amendment_reason,
            )
            for r in earlier
        ],
    )


def study_report_fhir(*, session: Session, blobs: BlobStore, user: User, study_id: str) -> dict[str, Any]:
    """The study as a FHIR R4 DiagnosticReport (audited read)."""
    from vitalens.reports import build_diagnostic_report

    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    signoff = report_signoff(session, study)
    resource = build_diagnostic_report(build_report_data(session, blobs, study, signoff=signoff))
    record_event(
        session=session,
        actor=user,
        action="report.read",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"format": "fhir"},
    )
    session.commit()
    return resource


@dataclass(frozen=True)
class ReviewCounts:
    """How many findings of the newest finished analysis exist, are reviewed, and are positive but unreviewed."""

    findings: int
    reviewed: int
    positive_unreviewed: int

    @property
    def unreviewed(self) -> int:
        return self.findings - self.reviewed


def review_counts(session: Session, analysis: Analysis) -> ReviewCounts:
    """Count the analysis's findings and the clinician's reviews of them (the newest review of each counts)."""
    from vitalens.service.ops.feedback import latest_feedback

    reviews = latest_feedback(session, analysis.id)
    findings = list(analysis.findings)
    reviewed = sum(1 for f in findings if f.id in reviews)
    positive_unreviewed = sum(1 for f in findings if f.positive and f.id not in reviews)
    return ReviewCounts(findings=len(findings), reviewed=reviewed, positive_unreviewed=positive_unreviewed)


def sign_off(
    *,
    session: Session,
    blobs: BlobStore,
    user: User,
    study_id: str,
    note: str | None = None,
    acknowledge_unreviewed: bool = False,
    require_positive_review: bool = False,
) -> Report:
    """Sign the study off (or sign its open amendment): render the PDF with the sign-off, store it pinned by
    sha256 with a snapshot of the signed content, and record who, when and how many findings were reviewed.

    Args:
        acknowledge_unreviewed: the signer has confirmed signing although some findings are unreviewed.
        require_positive_review: refuse while any positive finding is unreviewed (the site's setting).

    Raises:
        NotFound: no such study in the user's site.
        Conflict: already signed (and no amendment open), no finished analysis, unreviewed findings without the
            acknowledgement, or unreviewed positive findings where the setting requires their review.
    """
    from vitalens.reports import ReportSignoff, build_study_report
    from vitalens.store import atomic

    require(user, "report.sign")
    study = visible(session, user, Study, study_id)
    state = sign_state(session, study)
    if state.state == "signed":
        raise Conflict(f"study {study.id} is already signed off; open an amendment with a reason to change it")
    analysis = _latest_analysis(session, study)
    if analysis is None:
        raise Conflict(f"study {study.id} has no finished analysis to sign off")
    counts = review_counts(session, analysis)
    if require_positive_review and counts.positive_unreviewed:
        raise Conflict(
            f"{counts.positive_unreviewed} positive finding(s) are unreviewed; this site requires every positive "
            "finding to be reviewed before sign-off"
        )
    if counts.unreviewed and not acknowledge_unreviewed:
        raise Conflict(
            f"{counts.unreviewed} of {counts.findings} findings are unreviewed ({counts.positive_unreviewed} "
            "positive); review them, or confirm signing with them unreviewed (acknowledge_unreviewed)"
        )
    amendment = state.amendment
    version = amendment.version if amendment is not None else 1
    now = utcnow()
    signoff = ReportSignoff(
        clinician=user.full_name or user.email,
        signed_at=now,
        note=note,
        amends=amendment.amends_id if amendment is not None else None,
        version=version,
        amendment_reason=amendment.amendment_reason if amendment is not None else None,
        finding_count=counts.findings,
        reviewed_count=counts.reviewed,
    )
    if state.signed is not None:  # the version this one amends joins the history with its own reason
        from vitalens.reports import ReportVersion

        prev = _signoff_of(session, state.signed)
        signoff.history = [
            *prev.history,
            ReportVersion(
                version=prev.version, clinician=prev.clinician, signed_at=prev.signed_at, reason=prev.amendment_reason
            ),
        ]
    data = build_report_data(session, blobs, study, signoff=signoff)
    snapshot = snapshot_of(data, {i.slot: i.content_sha256 for i in study.inputs if i.deleted_at is None})
    pdf = build_study_report(data)
    with atomic(session, blobs) as staged:
        report = amendment if amendment is not None else Report(study_id=study.id, version=1, created_by_id=user.id)
        report.analysis_id = analysis.id
        report.status = "signed"
        report.blob_key = staged.put(pdf)
        report.content_sha256 = hashlib.sha256(pdf).hexdigest()
        report.size_bytes = len(pdf)
        report.signed_by_id = user.id
        report.signed_at = now
        report.note = note
        report.finding_count = counts.findings
        report.reviewed_count = counts.reviewed
        report.snapshot = snapshot
        report.snapshot_sha256 = snapshot_hash(snapshot)
        session.add(report)
        session.flush()
        record_event(
            session=session,
            actor=user,
            action="report.sign",
            record_type="report",
            record_id=report.id,
            patient_id=study.patient_id,
            detail={
                "analysis_id": analysis.id,
                "note": note or "",
                "version": version,
                "findings": counts.findings,
                "reviewed": counts.reviewed,
                "acknowledged_unreviewed": bool(counts.unreviewed),
            },
        )
    logger.info("study %s signed off by %s (version %d)", study.id, user.id, version)
    return report


def current_snapshot_hash(session: Session, blobs: BlobStore, study: Study) -> str:
    """The hash the study's content would have if signed now (compared with the signed one: ``drifted``)."""
    data = build_report_data(session, blobs, study)
    return snapshot_hash(snapshot_of(data, {i.slot: i.content_sha256 for i in study.inputs if i.deleted_at is None}))


def signed_version_pdf(*, session: Session, blobs: BlobStore, user: User, study_id: str, version: int) -> bytes:
    """The pinned PDF of one signed version of the study's report (audited read).

    Raises:
        NotFound: no such study in the user's site, or no signed version ``version``.
    """
    require(user, "report.read")
    study = visible(session, user, Study, study_id)
    row = session.scalar(
        select(Report).where(Report.study_id == study.id, Report.version == version, Report.status == "signed")
    )
    if row is None or not row.blob_key:
        raise NotFound(f"no signed version {version} of this study's report")
    pdf = blobs.get(row.blob_key)
    record_event(
        session=session,
        actor=user,
        action="report.read",
        record_type="report",
        record_id=row.id,
        patient_id=study.patient_id,
        detail={"signed": True, "version": version},
    )
    session.commit()
    return pdf
