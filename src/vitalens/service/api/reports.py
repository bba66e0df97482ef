"""Report routes: the study PDF, its FHIR DiagnosticReport, sign-off, amendments and the signed versions."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep, SettingsDep
from vitalens.service.ops import reports as ops
from vitalens.service.ops import signing
from vitalens.store.models import Study

__all__ = ["router", "SignOff", "Amendment", "ReportPublic", "ReportHistory"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["reports"])


class SignOff(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"note": "Refer to ophthalmology within 4 weeks.", "acknowledge_unreviewed": True}]
        }
    )

    note: str | None = Field(default=None, max_length=2000)
    acknowledge_unreviewed: bool = Field(
        default=False,
        description="Sign although some findings are unreviewed (the report records how many were reviewed). Without "
        "it, sign-off with unreviewed findings answers 409 with the counts.",
    )


class Amendment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Right-eye cataract finding re-graded."}]})

    reason: str = Field(min_length=1, max_length=2000, description="Why the signed report must change.")


class ReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    study_id: str
    analysis_id: str
    status: str
    content_sha256: str | None
    size_bytes: int | None
    signed_by_id: str | None
    signed_at: datetime | None
    version: int
    amends_id: str | None
    amendment_reason: str | None
    note: str | None
    finding_count: int | None
    reviewed_count: int | None
    snapshot_sha256: str | None
    notice: str = DECISION_SUPPORT_NOTICE


class ReportHistory(BaseModel):
    """Every version of a study's report and where the study stands."""

    state: str = Field(description="'unsigned', 'signed' (read-only) or 'amending' (an amendment is open).")
    drifted: bool = Field(
        description="True when the study's content no longer matches the current signed snapshot (never expected: "
        "every change of a signed study goes through an amendment)."
    )
    items: list[ReportPublic]
    notice: str = DECISION_SUPPORT_NOTICE


@router.get(
    "/studies/{study_id}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="The study report (PDF)",
    openapi_extra=permission("report.read"),
)
def report_pdf(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    pdf = ops.study_report_pdf(session=session, blobs=blobs, user=user, study_id=study_id)
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vitalens-{study_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/studies/{study_id}/report.fhir.json",
    summary="The study as a FHIR R4 DiagnosticReport",
    openapi_extra=permission("report.read"),
)
def report_fhir(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> dict[str, Any]:
    return ops.study_report_fhir(session=session, blobs=blobs, user=user, study_id=study_id)


@router.post(
    "/studies/{study_id}/signoff",
    status_code=201,
    response_model=ReportPublic,
    summary="Sign the study off (pins the signed PDF)",
    openapi_extra=permission("report.sign"),
)
def sign_off(
    study_id: str, body: SignOff, session: SessionDep, user: CurrentUser, blobs: BlobsDep, settings: SettingsDep
) -> ReportPublic:
    return ReportPublic.model_validate(
        ops.sign_off(
            session=session,
            blobs=blobs,
            user=user,
            study_id=study_id,
            note=body.note,
            acknowledge_unreviewed=body.acknowledge_unreviewed,
            require_positive_review=settings.signoff_require_positive_review,
        )
    )


@router.post(
    "/studies/{study_id}/amendments",
    status_code=201,
    response_model=ReportPublic,
    summary="Open an amendment of the signed report (the study becomes editable until it is signed again)",
    openapi_extra=permission("report.sign"),
)
def open_amendment(study_id: str, body: Amendment, session: SessionDep, user: CurrentUser) -> ReportPublic:
    return ReportPublic.model_validate(
        signing.open_amendment(session=session, user=user, study_id=study_id, reason=body.reason)
    )


@router.get(
    "/studies/{study_id}/reports",
    response_model=ReportHistory,
    summary="The report versions of a study (signed ones and an open amendment), oldest first",
    openapi_extra=permission("report.read"),
)
def report_history(study_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> ReportHistory:
    state, rows = signing.report_versions(session=session, user=user, study_id=study_id)
    drifted = False
    if state.signed is not None and state.state == "signed" and state.signed.snapshot_sha256:
        study = session.get(Study, study_id)
        drifted = study is not None and ops.current_snapshot_hash(session, blobs, study) != state.signed.snapshot_sha256
    return ReportHistory(state=state.state, drifted=drifted, items=[ReportPublic.model_validate(r) for r in rows])


@router.get(
    "/studies/{study_id}/reports/{version}.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="One signed version of the study report (PDF), as it was signed",
    openapi_extra=permission("report.read"),
)
def report_version_pdf(
    study_id: str, version: int, session: SessionDep, user: CurrentUser, blobs: BlobsDep
) -> Response:
    pdf = ops.signed_version_pdf(session=session, blobs=blobs, user=user, study_id=study_id, version=version)
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vitalens-{study_id}-v{version}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
