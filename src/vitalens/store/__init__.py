"""Persistence of the clinical service: SQLAlchemy models, engines, migrations and blob storage (no torch).

Why a separate layer: the API, the job workers and the CLI share one schema and one blob store; none of them
should need torch to read or write a record.
"""

from __future__ import annotations

import logging

from vitalens.store.blobs import BlobStore, LocalBlobStore, S3BlobStore, StagedBlobs, atomic, make_blob_store
from vitalens.store.db import is_sqlite, make_engine, make_session_factory, session_scope
from vitalens.store.migrate import upgrade
from vitalens.store.models import (
    Analysis,
    AnalysisStage,
    Annotation,
    AnnotationShape,
    AuditEvent,
    Base,
    Conversation,
    ConversationMessage,
    Explanation,
    Eye,
    Feedback,
    FeedbackAction,
    Finding,
    Input,
    InputSlot,
    Measurement,
    Patient,
    RefreshToken,
    Report,
    ReportStatus,
    RevokedToken,
    Role,
    Site,
    StageStatus,
    Study,
    User,
    new_id,
    utcnow,
)

__all__ = [
    "Analysis",
    "AnalysisStage",
    "Annotation",
    "AnnotationShape",
    "AuditEvent",
    "Base",
    "BlobStore",
    "Conversation",
    "ConversationMessage",
    "Explanation",
    "Eye",
    "Feedback",
    "FeedbackAction",
    "Finding",
    "Input",
    "InputSlot",
    "LocalBlobStore",
    "Measurement",
    "Patient",
    "RefreshToken",
    "Report",
    "ReportStatus",
    "RevokedToken",
    "Role",
    "S3BlobStore",
    "Site",
    "StageStatus",
    "StagedBlobs",
    "Study",
    "User",
    "atomic",
    "is_sqlite",
    "make_blob_store",
    "make_engine",
    "make_session_factory",
    "new_id",
    "session_scope",
    "upgrade",
    "utcnow",
]

logger = logging.getLogger(__name__)
