"""Export clinicians' reviewed labels with their inputs in the public layouts the training adapters read.

Why: the feedback loop closes only if what clinicians confirm or correct can be trained on without custom code.
Fundus studies become an ODIR-5K folder (``odir/labels.csv`` + ``odir/images/<ID>_left|right.jpg``) read by
:class:`vitalens.data.odir.OdirDataset`; ECG studies become a PTB-XL folder (``ptbxl/ptbxl_database.csv``,
``ptbxl/scp_statements.csv``, WFDB records at 100 Hz and 500 Hz) read by :class:`vitalens.data.ptbxl.PTBXLDataset`.
Rows are keyed by the random study/patient ids of the service, never by pseudonyms or names.

Label rules (per study and label code, the newest review across the study's analyses wins):
    * ``confirm``: the finding's own label and outcome (``positive``) as the model gave it;
    * ``correct``: the corrected label takes ``corrected_positive``; when the corrected label names another
      code and is positive, the finding's own code is set negative (the clinician relabelled it);
    * ``reject``: the finding was unusable (e.g. a bad image): the whole study is left out of that dataset;
    * no review: left out, unless ``include_unreviewed`` (then the newest model output is used, and counted).
A fundus study is exported only when all 8 ODIR labels are known and the patient's sex is female/male (the ODIR
sheet has no other value); skipped studies are counted by reason in ``EXPORT.json``.

The whole export is built in a temporary sibling folder and renamed into place, so a failure leaves nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
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

__all__ = ["ExportSummary", "export_feedback", "EXPORT_MANIFEST", "PTBXL_STATEMENT_COLUMNS"]

logger = logging.getLogger(__name__)

EXPORT_MANIFEST = "EXPORT.json"

#: Columns of ``scp_statements.csv`` written (the first, unnamed, is the SCP code).
PTBXL_STATEMENT_COLUMNS: tuple[str, ...] = ("", "description", "diagnostic", "form", "rhythm", "diagnostic_class")

#: PTB-XL writes ages above 89 as 300 (de-identification); the adapter maps 300 back to 90.
_PTBXL_AGE_CAP = 89


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        out: the export folder.
        odir_records: fundus studies written to ``out/odir``.
        ptbxl_records: ECG studies written to ``out/ptbxl``.
        labels_from_feedback: label values taken from a clinician's review.
        labels_from_model: label values taken from the model (only with ``include_unreviewed``).
        skipped: reason → number of studies left out.
    """

    out: Path
    odir_records: int = 0
    ptbxl_records: int = 0
    labels_from_feedback: int = 0
    labels_from_model: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "odir_records": self.odir_records,
            "ptbxl_records": self.ptbxl_records,
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
    """Labels of one study and one modality, plus why it cannot be exported (if so)."""

    labels: dict[str, _Label] = field(default_factory=dict)
    rejected: bool = False
    analysis_ids: set[str] = field(default_factory=set)


def _since_dt(since: date | datetime | None) -> datetime | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=UTC)
    return datetime.combine(since, time.min, tzinfo=UTC)


def _modality_of(analyzer: str, code: str) -> str | None:
    """``fundus``/``ecg`` for a finding: the analyzer's declared modality, else known label codes."""
    from vitalens.data.odir import ODIR_LABELS
    from vitalens.data.ptbxl import PTBXL_LABELS

    try:
        from vitalens.analyzers import get_spec, is_analyzer

        if is_analyzer(analyzer):
            return str(get_spec(analyzer).modality)
    except Exception:  # noqa: BLE001 - an analyzer module that fails to import: fall back on the code
        logger.debug("analyzer %s spec unavailable; classifying finding %s by code", analyzer, code)
    if code in ODIR_LABELS:
        return "fundus"
    if code in PTBXL_LABELS:
        return "ecg"
    return None


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


def _collect(
    session: Session, *, site_id: str | None, since: datetime | None, include_unreviewed: bool
) -> dict[tuple[str, str], _StudyLabels]:
    """(study id, modality) → labels, from the findings and feedback of finished analyses of live studies of live
    patients (:data:`vitalens.service.ops.scope.LIVE_STUDY`: a deleted patient is never exported)."""
    query = (
        select(Finding, Analysis, Study)
        .join(Analysis, Finding.analysis_id == Analysis.id)
        .join(Study, Analysis.study_id == Study.id)
        .where(LIVE_STUDY, Analysis.status.in_(("COMPLETE", "PARTIAL")))
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
        modality = _modality_of(finding.analyzer, finding.code)
        if modality not in ("fundus", "ecg"):
            continue
        key = (study.id, modality)
        entry = out.setdefault(key, _StudyLabels())
        reviews = sorted(feedback.get(finding.id, []), key=lambda r: r.created_at)
        model_at = analysis.finished_at or analysis.created_at
        if reviews:
            newest = reviews[-1]
            entry.analysis_ids.add(analysis.id)
            if since is None or newest.created_at >= since:
                recent.add(key)
            if newest.action == "reject":
                entry.rejected = True
                continue
            if newest.action == "confirm":
                _put(entry, finding.code, bool(finding.positive), "feedback", newest.created_at, finding, newest)
            else:  # correct
                code = newest.corrected_label or finding.code
                value = bool(newest.corrected_positive)
                _put(entry, code, value, "feedback", newest.created_at, finding, newest)
                if code != finding.code and value:
                    _put(entry, finding.code, False, "feedback", newest.created_at, finding, newest)
        elif include_unreviewed:
            entry.analysis_ids.add(analysis.id)
            if since is None or model_at >= since:
                recent.add(key)
            _put(entry, finding.code, bool(finding.positive), "model", model_at, finding, None)
    return {k: v for k, v in out.items() if k in recent}


def _put(
    entry: _StudyLabels,
    code: str,
    value: bool,
    source: str,
    at: datetime,
    finding: Finding,
    review: Feedback | None,
) -> None:
    """Keep the newest value per code; a clinician's review always beats a model output."""
    old = entry.labels.get(code)
    if old is not None:
        if old.source == "feedback" and source == "model":
            return
        if old.source == source and old.at > at:
            return
    entry.labels[code] = _Label(value, source, at, finding.id, review.id if review else None)


def _age_years(study: Study, patient: Patient) -> float | None:
    if study.age_years is not None:
        return float(study.age_years)
    if patient.year_of_birth is not None and study.study_date is not None:
        return float(study.study_date.year - patient.year_of_birth)
    return None


def _jpeg(data: bytes) -> bytes:
    """The image as JPEG bytes (JPEG uploads are copied byte for byte)."""
    if data[:3] == b"\xff\xd8\xff":
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _live_inputs(session: Session, study_id: str) -> dict[str, Input]:
    rows = session.scalars(
        select(Input).where(Input.study_id == study_id, Input.deleted_at.is_(None)).order_by(Input.created_at)
    ).all()
    return {r.slot: r for r in rows}  # newest per slot


def _keywords(labels: dict[str, int]) -> str:
    from vitalens.data.odir import ODIR_LABEL_NAMES

    positive = [ODIR_LABEL_NAMES[c].lower() for c, v in labels.items() if v and c != "N"]
    if not positive:
        return "normal fundus" if labels.get("N") else ""
    return "，".join(positive)  # ODIR separates keywords with a full-width comma


def _write_odir(
    session: Session,
    blobs: BlobStore,
    root: Path,
    items: list[tuple[Study, _StudyLabels]],
    skipped: Counter[str],
    provenance: list[dict[str, Any]],
) -> tuple[int, int, int]:
    import pandas as pd

    from vitalens.data.odir import ODIR_LABELS, ODIR_SHEET_COLUMNS

    images = root / "images"
    rows: list[dict[str, Any]] = []
    n_feedback = n_model = 0
    for study, entry in items:
        patient = session.get(Patient, study.patient_id)
        if patient is None or patient.deleted_at is not None:  # _collect leaves them out; never export one
            continue
        inputs = _live_inputs(session, study.id)
        reason = None
        if entry.rejected:
            reason = "fundus: a finding was rejected"
        elif any(c not in entry.labels for c in ODIR_LABELS):
            reason = "fundus: not all 8 ODIR labels reviewed"
        elif "fundus_left" not in inputs or "fundus_right" not in inputs:
            reason = "fundus: left or right image missing"
        elif patient.sex not in ("female", "male"):
            reason = "fundus: patient sex not female/male"
        age = _age_years(study, patient)
        if reason is None and (age is None or not 0 <= age <= 120):
            reason = "fundus: age unknown"
        if reason:
            skipped[reason] += 1
            continue
        images.mkdir(parents=True, exist_ok=True)
        names = {}
        for side in ("left", "right"):
            name = f"{study.id}_{side}.jpg"
            (images / name).write_bytes(_jpeg(blobs.get(inputs[f"fundus_{side}"].blob_key)))
            names[side] = name
        values = {c: int(entry.labels[c].value) for c in ODIR_LABELS}
        keywords = _keywords(values)
        rows.append(
            {
                "ID": study.id,
                "Patient Age": round(float(age), 1),  # type: ignore[arg-type]
                "Patient Sex": patient.sex.title(),
                "Left-Fundus": names["left"],
                "Right-Fundus": names["right"],
                "Left-Diagnostic Keywords": keywords,
                "Right-Diagnostic Keywords": keywords,
                **values,
            }
        )
        used = [entry.labels[c] for c in ODIR_LABELS]
        n_feedback += sum(lb.source == "feedback" for lb in used)
        n_model += sum(lb.source == "model" for lb in used)
        provenance.append(_provenance("odir", study.id, study, entry, used))
    if rows:
        pd.DataFrame(rows, columns=list(ODIR_SHEET_COLUMNS)).to_csv(root / "labels.csv", index=False)
    return len(rows), n_feedback, n_model


def _provenance(dataset: str, record_id: Any, study: Study, entry: _StudyLabels, used: list[_Label]) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "id": record_id,
        "study_id": study.id,
        "patient_id": study.patient_id,
        "site_id": study.site_id,
        "analysis_ids": sorted(entry.analysis_ids),
        "feedback_ids": sorted({lb.feedback_id for lb in used if lb.feedback_id}),
        "labels_from_model": sorted({lb.finding_id for lb in used if lb.source == "model"}),
    }


def _fold(patient_id: str) -> int:
    """A stable ``strat_fold`` 1..10 per patient (so a patient never spans folds)."""
    return int(hashlib.sha256(patient_id.encode()).hexdigest(), 16) % 10 + 1


def _write_wfdb(folder: Path, name: str, signal_mv: Any, fs: int) -> None:
    from vitalens.data.ptbxl import PTBXL_LEADS
    from vitalens.io.ecg import write_wfdb

    write_wfdb(folder, name, signal_mv, fs, tuple(PTBXL_LEADS))


def _write_ptbxl(
    session: Session,
    blobs: BlobStore,
    root: Path,
    items: list[tuple[Study, _StudyLabels]],
    skipped: Counter[str],
    provenance: list[dict[str, Any]],
) -> tuple[int, int, int]:
    import numpy as np
    import pandas as pd

    from vitalens.data.ptbxl import PTBXL_LABEL_NAMES, PTBXL_LABELS
    from vitalens.io.ecg import read_ecg_bytes, resample

    rows: list[dict[str, Any]] = []
    codes_used: set[str] = set()
    n_feedback = n_model = 0
    for study, entry in items:
        patient = session.get(Patient, study.patient_id)
        if patient is None or patient.deleted_at is not None:  # _collect leaves them out; never export one
            continue
        inputs = _live_inputs(session, study.id)
        if entry.rejected:
            skipped["ecg: a finding was rejected"] += 1
            continue
        if "ecg" not in inputs:
            skipped["ecg: no ECG input"] += 1
            continue
        row = inputs["ecg"]
        try:
            record = read_ecg_bytes(
                blobs.get(row.blob_key), filename=row.filename or "ecg", max_bytes=row.size_bytes + 1
            )
            record = record.to_standard12()
        except InputError as exc:
            logger.warning("export: study %s ECG unreadable: %s", study.id, exc)
            skipped["ecg: ECG unreadable or not 12-lead"] += 1
            continue
        ecg_id = len(rows) + 1
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        lr, hr = f"records100/{sub}/{ecg_id:05d}_lr", f"records500/{sub}/{ecg_id:05d}_hr"
        for rel, fs in ((lr, 100), (hr, 500)):
            _write_wfdb(root / Path(rel).parent, Path(rel).name, resample(record, fs).signal, fs)
        scp = {code: 100.0 for code, lb in sorted(entry.labels.items()) if lb.value}
        codes_used.update(scp)
        age = _age_years(study, patient)
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": study.patient_id,
                "study_id": study.id,
                "age": np.nan if age is None else (300.0 if age > _PTBXL_AGE_CAP else round(age, 1)),
                "sex": {"male": 0, "female": 1}.get(patient.sex, np.nan),
                "scp_codes": str(scp),
                "strat_fold": _fold(study.patient_id),
                "source_fs_hz": float(record.fs_hz),
                "filename_lr": lr,
                "filename_hr": hr,
            }
        )
        used = list(entry.labels.values())
        n_feedback += sum(lb.source == "feedback" for lb in used)
        n_model += sum(lb.source == "model" for lb in used)
        provenance.append(_provenance("ptbxl", ecg_id, study, entry, used))
    if rows:
        pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
        statements = [
            (
                code,
                PTBXL_LABEL_NAMES.get(code, code),
                1.0 if code in PTBXL_LABELS else np.nan,
                np.nan,
                np.nan,
                code if code in PTBXL_LABELS else np.nan,
            )
            for code in sorted(codes_used | set(PTBXL_LABELS))
        ]
        pd.DataFrame(statements, columns=list(PTBXL_STATEMENT_COLUMNS)).to_csv(root / "scp_statements.csv", index=False)
    return len(rows), n_feedback, n_model


def export_feedback(
    *,
    session: Session,
    blob_store: BlobStore,
    out: Path,
    site_id: str | None = None,
    since: date | datetime | None = None,
    include_unreviewed: bool = False,
) -> ExportSummary:
    """Write reviewed labels and their inputs under ``out`` (``odir/``, ``ptbxl/``, ``EXPORT.json``).

    Args:
        session: a database session (read only, plus one audit event).
        blob_store: where the inputs' bytes live.
        out: the export folder; must not exist or be empty (it is created by an atomic rename).
        site_id: only this site (its id or its name); None exports every site.
        since: only studies reviewed (or, with ``include_unreviewed``, analysed) at or after this UTC date/time.
        include_unreviewed: fill labels nobody reviewed with the model's output (counted in the summary).

    Returns:
        Counts of records written and studies skipped by reason.

    Raises:
        InputError: ``out`` exists and is not empty, or the site is unknown.
    """
    from vitalens import DECISION_SUPPORT_NOTICE, __version__
    from vitalens.service.ops.audit import record_event

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"export folder {out} already exists and is not empty; choose a new folder", field="out")
    resolved_site = _resolve_site(session, site_id)
    since_dt = _since_dt(since)
    collected = _collect(session, site_id=resolved_site, since=since_dt, include_unreviewed=include_unreviewed)
    studies = {s.id: s for s in session.scalars(select(Study).where(Study.id.in_({k[0] for k in collected}))).all()}
    by_modality: dict[str, list[tuple[Study, _StudyLabels]]] = {"fundus": [], "ecg": []}
    for (study_id, modality), entry in sorted(collected.items(), key=lambda kv: (studies[kv[0][0]].created_at, kv[0])):
        by_modality[modality].append((studies[study_id], entry))
    summary = ExportSummary(out=out)
    skipped: Counter[str] = Counter()
    provenance: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        n, fb, md = _write_odir(session, blob_store, tmp / "odir", by_modality["fundus"], skipped, provenance)
        summary.odir_records, summary.labels_from_feedback, summary.labels_from_model = n, fb, md
        n, fb, md = _write_ptbxl(session, blob_store, tmp / "ptbxl", by_modality["ecg"], skipped, provenance)
        summary.ptbxl_records = n
        summary.labels_from_feedback += fb
        summary.labels_from_model += md
        summary.skipped = dict(sorted(skipped.items()))
        manifest = {
            "notice": DECISION_SUPPORT_NOTICE,
            "created_at": datetime.now(UTC).isoformat(),
            "vitalens_version": __version__,
            "filters": {
                "site_id": resolved_site,
                "since": since_dt.isoformat() if since_dt else None,
                "include_unreviewed": include_unreviewed,
            },
            "counts": {k: v for k, v in summary.as_dict().items() if k != "out"},
            "layouts": {
                "odir": "ODIR-5K labels.csv + images/<ID>_left|right.jpg; ID = study id; keywords are patient-level",
                "ptbxl": "PTB-XL ptbxl_database.csv + scp_statements.csv + records100/ and records500/ (WFDB, mV)",
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
        "exported %d ODIR and %d PTB-XL records to %s (skipped: %s)",
        summary.odir_records,
        summary.ptbxl_records,
        out,
        summary.skipped or "none",
    )
    return summary
