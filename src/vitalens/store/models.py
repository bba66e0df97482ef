"""SQLAlchemy 2 ORM models: every persistent record of the clinical service, in one place.

Why one module: the Alembic migration, the ops layer, the job workers and the report builder all read the same
tables; keeping the schema in one file makes the shape of the data reviewable at a glance and keeps migration
autogeneration honest. No torch here (``store/`` must stay light), only SQLAlchemy.

Conventions:
    * Primary keys are random 32-hex-character strings (``uuid4().hex``) so ids never reveal counts or order and
      can be minted before a flush (blobs and rows are staged together). ``AuditEvent`` uses an integer key
      because its order matters and it is never exposed to other sites.
    * Every timestamp is timezone-aware UTC (:class:`UTCDateTime` restores the zone on SQLite).
    * Records that hold patient data are soft-deleted (``deleted_at``/``deleted_by_id``); queries must filter them.
    * Enumerations are stored as short strings checked in Python (``Role``, ``InputSlot``, ...), so adding a value
      needs no ``ALTER TYPE`` on PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "UTCDateTime",
    "new_id",
    "utcnow",
    "Role",
    "InputSlot",
    "Eye",
    "AnnotationShape",
    "FeedbackAction",
    "ReportStatus",
    "StageStatus",
    "Site",
    "User",
    "RefreshToken",
    "RevokedToken",
    "Patient",
    "Study",
    "Input",
    "Analysis",
    "AnalysisStage",
    "Finding",
    "Explanation",
    "Measurement",
    "Annotation",
    "Feedback",
    "Report",
    "AuditEvent",
    "Conversation",
    "ConversationMessage",
]

logger = logging.getLogger(__name__)

#: Deterministic constraint names, so Alembic migrations are portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LEN = 32


def new_id() -> str:
    """A fresh random primary key (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always returns aware UTC datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; store timezone-aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the shared naming convention and JSON type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --------------------------------------------------------------------------------------------- enumerations


class Role(StrEnum):
    """What a user may do (see ``vitalens.service.ops.PERMISSIONS``).

    ``admin`` is a *site* administrator (users and audit trail of their own site, and clinical reads there);
    ``instance_admin`` runs the installation (sites, and users of any site) and reads no patient record.
    """

    CLINICIAN = "clinician"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    INSTANCE_ADMIN = "instance_admin"


class InputSlot(StrEnum):
    """The built-in upload slots. Slots are open: analyzers register more (``vitalens.slots``), so the column is
    not constrained to these; upload validation checks the name against the slot registry."""

    FUNDUS_LEFT = "fundus_left"
    FUNDUS_RIGHT = "fundus_right"
    OCT = "oct"
    ECG = "ecg"
    CXR = "cxr"


class Eye(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class AnnotationShape(StrEnum):
    """How an annotation's region is given, always in the input image's pixel coordinates."""

    BOX = "box"  # geometry: {"x0": .., "y0": .., "x1": .., "y1": ..}
    POLYGON = "polygon"  # geometry: {"points": [[x, y], ...]}
    MASK = "mask"  # geometry: {"width": W, "height": H}; mask PNG in ``mask_blob_key``
    NONE = "none"  # whole-image note


class FeedbackAction(StrEnum):
    CONFIRM = "confirm"
    CORRECT = "correct"
    REJECT = "reject"


class ReportStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class StageStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


def _id_column(**kw: Any) -> Mapped[str]:
    return mapped_column(String(ID_LEN), primary_key=True, default=new_id, **kw)


def _fk(target: str, *, nullable: bool = False, ondelete: str | None = "CASCADE", index: bool = True) -> Any:
    return mapped_column(String(ID_LEN), ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


# --------------------------------------------------------------------------------------------- people


class Site(Base):
    """A clinic or organisation; every user and patient belongs to exactly one, and data never crosses sites."""

    __tablename__ = "sites"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="site")


class User(Base):
    """A person who logs in; ``role`` is one of :class:`Role`, ``email`` is stored lower-cased."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('clinician', 'reviewer', 'admin', 'instance_admin')", name="role"),)

    id: Mapped[str] = _id_column()
    site_id: Mapped[str] = _fk("sites.id", ondelete="RESTRICT")
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    site: Mapped[Site] = relationship(back_populates="users")


class RefreshToken(Base):
    """One issued refresh token (only its SHA-256 is stored).

    Tokens are single-use: refreshing marks ``used_at`` and issues a new one in the same ``family_id``. A token
    presented again after use (a replay) revokes the whole family.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = _fk("users.id")
    family_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)


class RevokedToken(Base):
    """A revoked access token (by ``jti``), kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = _fk("users.id", nullable=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExternalIdentity(Base):
    """A user's identity at an OpenID Provider: ``(issuer, subject)`` names one person there for good.

    Why a table of its own: e-mail addresses change and can be reassigned, the provider's ``sub`` cannot; the
    first sign-in links the account (matched by verified e-mail, or provisioned from claims) and later ones find
    it by ``(issuer, subject)`` alone.
    """

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = _fk("users.id", ondelete="CASCADE")
    issuer: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


# --------------------------------------------------------------------------------------------- patient data


class Patient(Base):
    """A pseudonymous patient of one site: no name, only a site-chosen pseudonym, year of birth and sex."""

    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("site_id", "pseudonym", name="uq_patients_site_pseudonym"),
        CheckConstraint("sex IN ('female', 'male', 'other', 'unknown')", name="sex"),
    )

    id: Mapped[str] = _id_column()
    site_id: Mapped[str] = _fk("sites.id", ondelete="RESTRICT")
    pseudonym: Mapped[str] = mapped_column(String(64))
    year_of_birth: Mapped[int | None] = mapped_column(Integer, default=None)
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)

    studies: Mapped[list[Study]] = relationship(back_populates="patient", order_by="Study.study_date")


class Study(Base):
    """One visit of a patient: its inputs, then analyses, annotations and reports. ``site_id`` mirrors the patient's.

    ``submission_key`` is the client's idempotency key for the form that created the study: a resubmission with the
    same key (a second click, a retry after fixing a missing age) completes that study instead of adding another.
    """

    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("site_id", "submission_key", name="uq_studies_site_submission_key"),)

    id: Mapped[str] = _id_column()
    patient_id: Mapped[str] = _fk("patients.id")
    site_id: Mapped[str] = _fk("sites.id", ondelete="RESTRICT")
    study_date: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    age_years: Mapped[float | None] = mapped_column(Float, default=None)
    dicom_study_uid: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    #: The clinician's free-text note (typed, pasted or dictated): the ``notes`` slot, stored with the study.
    notes: Mapped[str] = mapped_column(Text, default="")
    submission_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)

    patient: Mapped[Patient] = relationship(back_populates="studies")
    inputs: Mapped[list[Input]] = relationship(back_populates="study", order_by="Input.created_at")
    analyses: Mapped[list[Analysis]] = relationship(back_populates="study", order_by="Analysis.created_at")


class Input(Base):
    """One uploaded file of a study; the bytes live in the blob store under ``blob_key`` (= content address).

    ``filename`` is the sanitised original name, for display only: it never reaches the file system.
    """

    __tablename__ = "inputs"
    __table_args__ = (
        CheckConstraint("eye IS NULL OR eye IN ('left', 'right')", name="eye"),
        CheckConstraint("size_bytes >= 0", name="size_nonneg"),
    )

    id: Mapped[str] = _id_column()
    study_id: Mapped[str] = _fk("studies.id")
    slot: Mapped[str] = mapped_column(String(32))
    modality: Mapped[str] = mapped_column(String(16))
    eye: Mapped[str | None] = mapped_column(String(8), default=None)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    study: Mapped[Study] = relationship(back_populates="inputs")


# --------------------------------------------------------------------------------------------- analyses


class Analysis(Base):
    """One run of analyzers over a study, executed as a job of stages.

    ``status`` is a :class:`vitalens.domain.AnalysisStatus` value. ``analyzers`` lists the requested analyzer
    names; ``versions`` maps analyzer name → ``{"model": ..., "version": ..., "sha256": ...}`` as actually used.
    ``job_key`` makes job submission idempotent per study (the ops layer refuses a key reused on another study of
    the same site; other sites' keys are another namespace). A RUNNING analysis belongs to ``worker`` while
    ``lease_expires_at`` lies ahead: the owner renews it with a heartbeat, and anyone may take over an expired lease.
    """

    __tablename__ = "analyses"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'RUNNING', 'COMPLETE', 'PARTIAL', 'FAILED')", name="status"),
        UniqueConstraint("study_id", "job_key", name="uq_analyses_study_job_key"),
    )

    id: Mapped[str] = _id_column()
    study_id: Mapped[str] = _fk("studies.id")
    status: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    analyzers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_key: Mapped[str | None] = mapped_column(String(100), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: ``host:pid`` of the process executing the job (crash recovery tells live owners from dead ones).
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The owner's claim on a RUNNING job lapses at this time unless its heartbeat renews it (recovery across hosts).
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)

    study: Mapped[Study] = relationship(back_populates="analyses")
    stages: Mapped[list[AnalysisStage]] = relationship(
        back_populates="analysis", order_by="AnalysisStage.position", cascade="all, delete-orphan"
    )
    findings: Mapped[list[Finding]] = relationship(back_populates="analysis", cascade="all, delete-orphan")
    explanations: Mapped[list[Explanation]] = relationship(back_populates="analysis", cascade="all, delete-orphan")
    measurements: Mapped[list[Measurement]] = relationship(back_populates="analysis", cascade="all, delete-orphan")


class AnalysisStage(Base):
    """One stage of an analysis (``validate``, one per analyzer, ``report``) with its timing and outcome.

    For analyzer stages ``analyzer``, ``model_name``, ``model_version`` and ``demonstration`` say what ran, and
    ``result`` holds the JSON of the :class:`vitalens.domain.AnalysisResult` (arrays excluded).
    """

    __tablename__ = "analysis_stages"
    __table_args__ = (UniqueConstraint("analysis_id", "name", name="uq_analysis_stages_analysis_name"),)

    id: Mapped[str] = _id_column()
    analysis_id: Mapped[str] = _fk("analyses.id")
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    analyzer: Mapped[str | None] = mapped_column(String(100), default=None)
    model_name: Mapped[str | None] = mapped_column(String(200), default=None)
    model_version: Mapped[str | None] = mapped_column(String(100), default=None)
    demonstration: Mapped[bool | None] = mapped_column(Boolean, default=None)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    analysis: Mapped[Analysis] = relationship(back_populates="stages")


class Finding(Base):
    """One label's calibrated output (mirrors :class:`vitalens.domain.Finding`) plus the analysis band/tier."""

    __tablename__ = "findings"

    id: Mapped[str] = _id_column()
    analysis_id: Mapped[str] = _fk("analyses.id")
    stage_id: Mapped[str | None] = _fk("analysis_stages.id", nullable=True)
    analyzer: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    probability: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    positive: Mapped[bool] = mapped_column(Boolean)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    band: Mapped[str | None] = mapped_column(String(16), default=None)
    tier: Mapped[str | None] = mapped_column(String(16), default=None)
    input_name: Mapped[str | None] = mapped_column(String(32), default=None)

    analysis: Mapped[Analysis] = relationship(back_populates="findings")
    feedback: Mapped[list[Feedback]] = relationship(back_populates="finding")


class Explanation(Base):
    """A saliency map for one target in one input's coordinates; arrays/images live in blobs.

    ``heatmap_blob_key``: float32 ``.npy`` (values in [0, 1]); ``overlay_blob_key``: rendered PNG.
    """

    __tablename__ = "explanations"

    id: Mapped[str] = _id_column()
    analysis_id: Mapped[str] = _fk("analyses.id")
    stage_id: Mapped[str | None] = _fk("analysis_stages.id", nullable=True)
    analyzer: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    input_name: Mapped[str] = mapped_column(String(32))
    input_id: Mapped[str | None] = _fk("inputs.id", nullable=True, ondelete="SET NULL")
    method: Mapped[str] = mapped_column(String(64))
    heatmap_blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    overlay_blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)

    analysis: Mapped[Analysis] = relationship(back_populates="explanations")


class Measurement(Base):
    """A measured quantity (mirrors :class:`vitalens.domain.Measurement`); ``value`` is None if not computable."""

    __tablename__ = "measurements"

    id: Mapped[str] = _id_column()
    analysis_id: Mapped[str] = _fk("analyses.id")
    stage_id: Mapped[str | None] = _fk("analysis_stages.id", nullable=True)
    analyzer: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None] = mapped_column(Float, default=None)
    unit: Mapped[str] = mapped_column(String(32), default="")
    reference_low: Mapped[float | None] = mapped_column(Float, default=None)
    reference_high: Mapped[float | None] = mapped_column(Float, default=None)
    flag: Mapped[str | None] = mapped_column(String(16), default=None)
    method: Mapped[str | None] = mapped_column(String(200), default=None)

    analysis: Mapped[Analysis] = relationship(back_populates="measurements")


# --------------------------------------------------------------------------------------------- clinician input


class Annotation(Base):
    """A clinician's mark on an input, versioned: an edit adds a row with ``version + 1`` and the same ``root_id``.

    Only the newest version has ``is_current = True``. ``geometry`` depends on ``shape`` (see
    :class:`AnnotationShape`), always in the input image's pixel coordinates (x right, y down).
    """

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("root_id", "version", name="uq_annotations_root_version"),
        CheckConstraint("shape IN ('box', 'polygon', 'mask', 'none')", name="shape"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = _id_column()
    root_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    study_id: Mapped[str] = _fk("studies.id")
    input_id: Mapped[str | None] = _fk("inputs.id", nullable=True)
    analysis_id: Mapped[str | None] = _fk("analyses.id", nullable=True, ondelete="SET NULL")
    finding_id: Mapped[str | None] = _fk("findings.id", nullable=True, ondelete="SET NULL")
    author_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    label: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    shape: Mapped[str] = mapped_column(String(16), default="none")
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mask_blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Feedback(Base):
    """A clinician confirming, correcting (with the corrected label) or rejecting one finding."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("action IN ('confirm', 'correct', 'reject')", name="action"),
        CheckConstraint("action != 'correct' OR corrected_label IS NOT NULL", name="correct_has_label"),
    )

    id: Mapped[str] = _id_column()
    finding_id: Mapped[str] = _fk("findings.id")
    analysis_id: Mapped[str] = _fk("analyses.id")
    author_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    action: Mapped[str] = mapped_column(String(16))
    corrected_label: Mapped[str | None] = mapped_column(String(200), default=None)
    corrected_positive: Mapped[bool | None] = mapped_column(Boolean, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    finding: Mapped[Finding] = relationship(back_populates="feedback")


class Report(Base):
    """A PDF report of one analysis; once signed, ``content_sha256`` pins the exact bytes in ``blob_key``.

    Versions: the first sign-off is version 1. Changing a signed study needs an *amendment*: a ``draft`` row with
    ``amends_id`` (the signed report it replaces), ``version + 1`` and a required ``amendment_reason``; signing it
    makes it the current report while every earlier signed version stays retrievable. ``snapshot`` is the signed
    content as JSON (findings with their reviews, measurements, annotations, input hashes) and
    ``snapshot_sha256`` its hash, so what was signed can be compared with the study as it is now.
    ``finding_count``/``reviewed_count`` record how many findings the signer had reviewed.
    """

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'signed')", name="status"),
        UniqueConstraint("study_id", "version", name="uq_reports_study_version"),
    )

    id: Mapped[str] = _id_column()
    study_id: Mapped[str] = _fk("studies.id")
    analysis_id: Mapped[str] = _fk("analyses.id")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    content_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    media_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    signed_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    signed_at: Mapped[datetime | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    amends_id: Mapped[str | None] = _fk("reports.id", nullable=True, ondelete="SET NULL", index=False)
    amendment_reason: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    finding_count: Mapped[int | None] = mapped_column(Integer, default=None)
    reviewed_count: Mapped[int | None] = mapped_column(Integer, default=None)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    created_by_id: Mapped[str | None] = _fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------------------------- assistant


class Conversation(Base):
    """One user's conversation with the study assistant about one study (only that user sees it)."""

    __tablename__ = "conversations"

    id: Mapped[str] = _id_column()
    study_id: Mapped[str] = _fk("studies.id")
    user_id: Mapped[str] = _fk("users.id")
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    messages: Mapped[list[ConversationMessage]] = relationship(
        back_populates="conversation", order_by="ConversationMessage.position", cascade="all, delete-orphan"
    )


class ConversationMessage(Base):
    """A question (``role='user'``) or an answer (``role='assistant'``) with its tier, citations and warnings."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        UniqueConstraint("conversation_id", "position", name="uq_conversation_messages_position"),
    )

    id: Mapped[str] = _id_column()
    conversation_id: Mapped[str] = _fk("conversations.id")
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str | None] = mapped_column(String(16), default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    citations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


# --------------------------------------------------------------------------------------------- audit


class AuditEvent(Base):
    """Who did what to which record, when and from where. Append-only; written in the same transaction.

    ``action`` is ``<record_type>.<verb>`` (``patient.read``, ``study.create``, ``input.upload``, ``auth.login``).
    ``patient_id`` is set whenever the record belongs to a patient, so a patient's access history is one query.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_record", "record_type", "record_id"),
        Index("ix_audit_events_patient_at", "patient_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(ID_LEN), default=None, index=True)
    actor_email: Mapped[str | None] = mapped_column(String(320), default=None)
    site_id: Mapped[str | None] = mapped_column(String(ID_LEN), default=None)
    action: Mapped[str] = mapped_column(String(64), index=True)
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64), default=None)
    patient_id: Mapped[str | None] = mapped_column(String(ID_LEN), default=None)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
