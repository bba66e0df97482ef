"""One record of every kind hanging from a patient, for the access tests (another site's, or a deleted patient's).

Why shared: the cross-site matrix and the deleted-patient walk must address exactly the same kinds of record, and a
path parameter added later (a new route) must get a record here once, for both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tests.utils import factories as f
from vitalens.store.models import (
    Analysis,
    AnalysisStage,
    Annotation,
    Conversation,
    Explanation,
    Feedback,
    Finding,
    Input,
    Report,
)

__all__ = ["records_of", "MISSING_ID", "NOT_RECORDS"]

MISSING_ID = "0" * 32
#: Path parameters that name no stored record (an input slot), so the access walks leave their routes out.
NOT_RECORDS = frozenset({"slot"})


def records_of(db: Session, world: Any, blobs: Any | None = None) -> dict[str, str]:
    """A record of every kind at ``world``'s site (its patient and study), by the path parameter addressing it.

    With ``blobs`` the input and the explanation overlay have real bytes (so a route that would serve them can).
    """
    data = f.png_bytes(seed=5)
    key = blobs.put(data) if blobs is not None else "sha256/ee/ee/" + "e" * 64
    inp = Input(
        study_id=world.study.id,
        slot="fundus_left",
        modality="fundus",
        eye="left",
        content_sha256="e" * 64,
        media_type="image/png",
        size_bytes=len(data),
        blob_key=key,
        width=96,
        height=80,
    )
    analysis = Analysis(study_id=world.study.id, status="COMPLETE", analyzers=["fundus.odir"])
    db.add_all([inp, analysis])
    db.flush()
    stage = AnalysisStage(analysis_id=analysis.id, name="fundus.odir", analyzer="fundus.odir", status="COMPLETE")
    db.add(stage)
    db.flush()
    finding = Finding(
        analysis_id=analysis.id,
        stage_id=stage.id,
        analyzer="fundus.odir",
        code="D",
        label="DR",
        probability=0.9,
        threshold=0.5,
        positive=True,
    )
    explanation = Explanation(
        analysis_id=analysis.id,
        analyzer="fundus.odir",
        target="D",
        input_name="fundus_left",
        input_id=inp.id,
        method="gradcam",
        overlay_blob_key=key if blobs is not None else None,
    )
    db.add_all([finding, explanation])
    db.flush()
    annotation = Annotation(
        root_id="a" * 32,
        study_id=world.study.id,
        input_id=inp.id,
        author_id=world.users["reviewer"].id,
        label="x",
        shape="box",
        geometry={"x0": 1, "y0": 1, "x1": 5, "y1": 5},
    )
    feedback = Feedback(
        finding_id=finding.id, analysis_id=analysis.id, author_id=world.users["reviewer"].id, action="confirm"
    )
    report = Report(
        study_id=world.study.id,
        analysis_id=analysis.id,
        status="signed",
        signed_by_id=world.users["reviewer"].id,
        signed_at=datetime.now(UTC),
        content_sha256="f" * 64,
        version=1 + db.query(Report).filter(Report.study_id == world.study.id).count(),  # unique per study
    )
    conversation = Conversation(study_id=world.study.id, user_id=world.users["clinician"].id, title="what?")
    db.add_all([annotation, feedback, report, conversation])
    world.study.dicom_study_uid = f"2.25.{uuid.uuid4().int}"  # as if received over DICOMweb
    db.commit()
    annotation.root_id = annotation.id
    db.commit()
    return {
        "patient_id": world.patient.id,
        "study_id": world.study.id,
        "input_id": inp.id,
        "analysis_id": analysis.id,
        "stage_id": stage.id,
        "finding_id": finding.id,
        "explanation_id": explanation.id,
        "annotation_id": annotation.id,
        "feedback_id": feedback.id,
        "report_id": report.id,
        "user_id": world.users["clinician"].id,
        "study_uid": world.study.dicom_study_uid,
        "conversation_id": conversation.id,
        "version": "1",  # a report version of the study (reached through study_id: unsigned answers 404 by version)
    }
