"""Export clinicians' reviewed labels with their inputs in the public layouts the training adapters read.

Why: the feedback loop closes only if what clinicians confirm or correct can be trained on without custom code.
Each analyzer names its dataset adapter in its contract (``dataset="odir"``, ``"ptbxl"``, ``"kermany"``...); its
reviewed studies go to ``OUT/<adapter>/`` through that adapter's own :class:`~vitalens.data.DatasetWriter`, which
writes exactly the layout the adapter reads (ODIR-5K sheet and images, PTB-XL database and WFDB records, the
Kermany class folders...). Nothing here knows an analyzer or a layout: an analyzer without an adapter has nothing
to export, and a writer that cannot place a record says why (:class:`~vitalens.data.SkipRecord`). Rows are keyed
by the random study/patient ids of the service, never by pseudonyms or names.

Label rules (per study, analyzer and label code — per input slot for per-input findings such as one eye — the
newest review across the study's analyses wins):
    * ``confirm``: the finding's own label and outcome (``positive``) as the model gave it;
    * ``correct``: the corrected label takes ``corrected_positive``; when the corrected label names another
      code and is positive, the finding's own code is set negative (the clinician relabelled it);
    * ``reject``: the finding was unusable (e.g. a bad image): the study (or, for a per-input finding, that
      input's labels) is left out of that analyzer's export;
    * no review: left out, unless ``include_unreviewed`` (then the newest model output is used, and counted).
What a record needs beyond its labels (all 8 ODIR labels, both eyes, a 12-lead ECG, one class per image) is the
writer's rule; skipped studies are counted by reason in ``EXPORT.json``.

The whole export is built in a temporary sibling folder and renamed into place, so a failure leaves nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops.scope import LIVE_STUDY
from vitalens.store.blobs import BlobStore
from vitalens.store.models import Analysis, Feedback, Finding, Input, Patient, Site, Study

__all__ = ["ExportSummary", "export_feedback", "exportable_analyzers", "EXPORT_MANIFEST"]

logger = logging.getLogger(__name__)

EXPORT_MANIFEST = "EXPORT.json"


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        out: the export folder.
        by_analyzer: analyzer → records written for it.
        by_dataset: adapter name → records written to ``out/<adapter>``.
        labels_from_feedback: label values taken from a clinician's review.
        labels_from_model: label values taken from the model (only with ``include_unreviewed``).
        skipped: reason → number of studies left out.
    """

    out: Path
    by_analyzer: dict[str, int] = field(default_factory=dict)
    by_dataset: dict[str, int] = field(default_factory=dict)
    labels_from_feedback: int = 0
    labels_from_model: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.by_dataset.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "records": self.records,
            "by_analyzer": dict(self.by_analyzer),
            "by_dataset": dict(self.by_dataset),
            "labels_from_feedback": self.labels_from_feedback,
            "labels_from_model": self.labels_from_model,
            "skipped": dict(self.skipped),
        }


@dataclass
class _Label:
    value: bool
    source: str  # "feedback" | "model"
    at: datetime
    finding_id: str
    feedback_id: str | None = None


@dataclass
class _StudyLabels:
    """Labels of one study for one analyzer (study-level and per input slot), and what was rejected."""

    labels: dict[str, _Label] = field(default_factory=dict)
    by_input: dict[str, dict[str, _Label]] = field(default_factory=dict)
    rejected: bool = False
    rejected_inputs: set[str] = field(default_factory=set)
    analysis_ids: set[str] = field(default_factory=set)

    def used(self) -> list[_Label]:
        return list(self.labels.values()) + [lb for per in self.by_input.values() for lb in per.values()]


def exportable_analyzers() -> dict[str, str]:
    """Analyzer → the dataset adapter its contract names (analyzers without one have nothing to export)."""
    from vitalens.analyzers import get_spec, list_analyzers

    return {name: str(get_spec(name).dataset) for name in list_analyzers() if get_spec(name).dataset}


def _since_dt(since: date | datetime | None) -> datetime | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=UTC)
    return datetime.combine(since, time.min, tzinfo=UTC)


def _resolve_site(session: Session, site: str | None) -> str | None:
    if site is None:
        return None
    row = session.get(Site, site) or session.scalar(select(Site).where(Site.name == site))
    if row is None:
        names = list(session.scalars(select(Site.name)).all())
        raise InputError(
            f"unknown site {site!r} (give its id or name); sites: {', '.join(names) or 'none'}", field="site"
        )
    return row.id


def _resolve_analyzers(wanted: Iterable[str] | None) -> dict[str, str]:
    """The analyzers to export (all with an adapter by default); an unknown or adapter-less name is an error."""
    from vitalens._naming import unknown_name_error
    from vitalens.analyzers import get_spec, is_analyzer, list_analyzers

    exportable = exportable_analyzers()
    if wanted is None:
        return exportable
    chosen: dict[str, str] = {}
    for name in wanted:
        if not is_analyzer(name):
            raise unknown_name_error("analyzer", name, list_analyzers())
        if name not in exportable:
            reason = get_spec(name).no_export_reason or "its contract names no dataset adapter"
            raise InputError(f"analyzer {name} has nothing to export: {reason}", field="analyzer")
        chosen[name] = exportable[name]
    return chosen


def _collect(
    session: Session,
    *,
    analyzers: Sequence[str],
    site_id: str | None,
    since: datetime | None,
    include_unreviewed: bool,
) -> dict[tuple[str, str], _StudyLabels]:
    """(study id, analyzer) → labels, from the findings and feedback of finished analyses of live studies of live
    patients (:data:`vitalens.service.ops.scope.LIVE_STUDY`: a deleted patient is never exported)."""
    query = (
        select(Finding, Analysis, Study)
        .join(Analysis, Finding.analysis_id == Analysis.id)
        .join(Study, Analysis.study_id == Study.id)
        .where(LIVE_STUDY, Analysis.status.in_(("COMPLETE", "PARTIAL")), Finding.analyzer.in_(list(analyzers)))
    )
    if site_id is not None:
        query = query.where(Study.site_id == site_id)
    rows = session.execute(query).all()
    finding_ids = [f.id for f, _, _ in rows]
    feedback: dict[str, list[Feedback]] = {}
    for start in range(0, len(finding_ids), 500):
        chunk = finding_ids[start : start + 500]
        for fb in session.scalars(select(Feedback).where(Feedback.finding_id.in_(chunk))).all():
            feedback.setdefault(fb.finding_id, []).append(fb)
    out: dict[tuple[str, str], _StudyLabels] = {}
    recent: set[tuple[str, str]] = set()
    for finding, analysis, study in rows:
        key = (study.id, finding.analyzer)
        entry = out.setdefault(key, _StudyLabels())
        target = entry.by_input.setdefault(finding.input_name, {}) if finding.input_name else entry.labels
        reviews = sorted(feedback.get(finding.id, []), key=lambda r: r.created_at)
        model_at = analysis.finished_at or analysis.created_at
        if reviews:
            newest = reviews[-1]
            entry.analysis_ids.add(analysis.id)
            if since is None or newest.created_at >= since:
                recent.add(key)
            if newest.action == "reject":
                if finding.input_name:
                    entry.rejected_inputs.add(finding.input_name)
                else:
                    entry.rejected = True
                continue
            if newest.action == "confirm":
                _put(target, finding.code, bool(finding.positive), "feedback", newest.created_at, finding, newest)
            else:  # correct
                code = newest.corrected_label or finding.code
                value = bool(newest.corrected_positive)
                _put(target, code, value, "feedback", newest.created_at, finding, newest)
                if code != finding.code and value:
                    _put(target, finding.code, False, "feedback", newest.created_at, finding, newest)
        elif include_unreviewed:
            entry.analysis_ids.add(analysis.id)
            if since is None or model_at >= since:
                recent.add(key)
            _put(target, finding.code, bool(finding.positive), "model", model_at, finding, None)
    for entry in out.values():
        for slot in entry.rejected_inputs:
            entry.by_input.pop(slot, None)
    return {k: v for k, v in out.items() if k in recent}


def _put(
    labels: dict[str, _Label],
    code: str,
    value: bool,
    source: str,
    at: datetime,
    finding: Finding,
    review: Feedback | None,
) -> None:
    """Keep the newest value per code; a clinician's review always beats a model output."""
    old = labels.get(code)
    if old is not None:
        if old.source == "feedback" and source == "model":
            return
        if old.source == source and old.at > at:
            return
    labels[code] = _Label(value, source, at, finding.id, review.id if review else None)


def _age_years(study: Study, patient: Patient) -> float | None:
    if study.age_years is not None:
        return float(study.age_years)
    if patient.year_of_birth is not None and study.study_date is not None:
        return float(study.study_date.year - patient.year_of_birth)
    return None


def _live_inputs(session: Session, study_id: str) -> dict[str, Input]:
    rows = session.scalars(
        select(Input).where(Input.study_id == study_id, Input.deleted_at.is_(None)).order_by(Input.created_at)
    ).all()
    return {r.slot: r for r in rows}  # newest per slot


def _export_record(session: Session, blobs: BlobStore, study: Study, patient: Patient, entry: _StudyLabels) -> Any:
    """The writer's view of one study: its labels, its live inputs (loaded lazily) and the patient facts."""
    from vitalens.data import ExportInput, ExportRecord

    def loader(key: str) -> Any:
        return lambda: blobs.get(key)

    inputs = {
        slot: ExportInput(
            slot=slot,
            filename=row.filename or slot,
            media_type=row.media_type or "application/octet-stream",
            load=loader(row.blob_key),
            size_bytes=int(row.size_bytes or 0),
            meta=dict(row.meta or {}),
        )
        for slot, row in _live_inputs(session, study.id).items()
    }
    return ExportRecord(
        record_id=study.id,
        patient_id=study.patient_id,
        labels={c: lb.value for c, lb in entry.labels.items()},
        labels_by_input={slot: {c: lb.value for c, lb in per.items()} for slot, per in entry.by_input.items()},
        inputs=inputs,
        age_years=_age_years(study, patient),
        sex=patient.sex,
        study_date=study.study_date,
    )


def _provenance(
    dataset: str, analyzer: str, record_id: Any, study: Study, entry: _StudyLabels, used: list[_Label]
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "analyzer": analyzer,
        "id": record_id,
        "study_id": study.id,
        "patient_id": study.patient_id,
        "site_id": study.site_id,
        "analysis_ids": sorted(entry.analysis_ids),
        "feedback_ids": sorted({lb.feedback_id for lb in used if lb.feedback_id}),
        "labels_from_model": sorted({lb.finding_id for lb in used if lb.source == "model"}),
    }


def export_feedback(
    *,
    session: Session,
    blob_store: BlobStore,
    out: Path,
    site_id: str | None = None,
    since: date | datetime | None = None,
    include_unreviewed: bool = False,
    analyzers: Iterable[str] | None = None,
) -> ExportSummary:
    """Write reviewed labels and their inputs under ``out`` (``<adapter>/`` per dataset, ``EXPORT.json``).

    Args:
        session: a database session (read only, plus one audit event).
        blob_store: where the inputs' bytes live.
        out: the export folder; must not exist or be empty (it is created by an atomic rename).
        site_id: only this site (its id or its name); None exports every site.
        since: only studies reviewed (or, with ``include_unreviewed``, analysed) at or after this UTC date/time.
        include_unreviewed: fill labels nobody reviewed with the model's output (counted in the summary).
        analyzers: only these analyzers (default: every analyzer whose contract names a dataset adapter).

    Returns:
        Counts of records written per analyzer and dataset, and studies skipped by reason.

    Raises:
        InputError: ``out`` exists and is not empty, the site is unknown, or an analyzer has nothing to export.
    """
    from vitalens import DECISION_SUPPORT_NOTICE, __version__
    from vitalens.data import SkipRecord, get_adapter
    from vitalens.service.ops.audit import record_event

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"export folder {out} already exists and is not empty; choose a new folder", field="out")
    chosen = _resolve_analyzers(analyzers)
    resolved_site = _resolve_site(session, site_id)
    since_dt = _since_dt(since)
    collected = _collect(
        session, analyzers=sorted(chosen), site_id=resolved_site, since=since_dt, include_unreviewed=include_unreviewed
    )
    studies = {s.id: s for s in session.scalars(select(Study).where(Study.id.in_({k[0] for k in collected}))).all()}
    order = sorted(collected.items(), key=lambda kv: (studies[kv[0][0]].created_at, kv[0]))
    summary = ExportSummary(out=out)
    skipped: Counter[str] = Counter()
    provenance: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        adapters = {name: get_adapter(name) for name in sorted(set(chosen.values()))}
        writers = {name: adapter.writer(tmp / name) for name, adapter in adapters.items()}
        for (study_id, analyzer), entry in order:
            study = studies[study_id]
            patient = session.get(Patient, study.patient_id)
            if patient is None or patient.deleted_at is not None:  # _collect leaves them out; never export one
                continue
            if entry.rejected:
                skipped[f"a finding was rejected ({analyzer})"] += 1
                continue
            dataset = chosen[analyzer]
            try:
                record_id = writers[dataset].add(_export_record(session, blob_store, study, patient, entry))
            except SkipRecord as skip:
                skipped[f"{skip.reason} ({analyzer})"] += 1
                continue
            used = entry.used()
            summary.by_analyzer[analyzer] = summary.by_analyzer.get(analyzer, 0) + 1
            summary.by_dataset[dataset] = summary.by_dataset.get(dataset, 0) + 1
            summary.labels_from_feedback += sum(lb.source == "feedback" for lb in used)
            summary.labels_from_model += sum(lb.source == "model" for lb in used)
            provenance.append(_provenance(dataset, analyzer, record_id, study, entry, used))
        for writer in writers.values():
            writer.close()
        summary.skipped = dict(sorted(skipped.items()))
        manifest = {
            "notice": DECISION_SUPPORT_NOTICE,
            "created_at": datetime.now(UTC).isoformat(),
            "vitalens_version": __version__,
            "filters": {
                "site_id": resolved_site,
                "since": since_dt.isoformat() if since_dt else None,
                "include_unreviewed": include_unreviewed,
                "analyzers": sorted(chosen),
            },
            "counts": {k: v for k, v in summary.as_dict().items() if k != "out"},
            "layouts": {
                name: {
                    "title": a.title,
                    "layout": a.layout,
                    "analyzers": sorted(n for n, d in chosen.items() if d == name),
                }
                for name, a in adapters.items()
                if summary.by_dataset.get(name)
            },
            "records": provenance,
        }
        (tmp / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record_event(
        session=session,
        actor=None,
        action="feedback.export",
        record_type="export",
        site_id=resolved_site,
        detail={k: v for k, v in summary.as_dict().items() if k != "out"},
    )
    session.commit()
    logger.info(
        "exported %d records (%s) to %s (skipped: %s)",
        summary.records,
        summary.by_dataset or "none",
        out,
        summary.skipped or "none",
    )
    return summary
