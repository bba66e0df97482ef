"""Analysis routes: request an analysis of a study (202 + job id), follow its stages, fetch explanation images.

Thin over :mod:`vitalens.service.ops.analyses`; the job runner (in-process pool or Celery) lives on
``app.state.jobs`` and is started by :func:`vitalens.service.jobs.jobs_lifespan`, registered here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, computed_field

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep
from vitalens.service.ops import analyses as ops

__all__ = [
    "router",
    "AnalysisCreate",
    "AnalysisAccepted",
    "AnalysisPublic",
    "StagePublic",
    "FindingPublic",
    "MeasurementPublic",
    "ExplanationPublic",
]

logger = logging.getLogger(__name__)

#: OpenAPI description of the poll hint sent with a queued or running analysis.
_RETRY_AFTER_HEADER = {
    "description": "while the analysis is PENDING or RUNNING: seconds after which asking again is worth it "
    "(half the expected remaining time, 1-30 s); absent once it is final",
    "schema": {"type": "integer", "minimum": 1, "maximum": 30},
}

router = APIRouter(prefix="/api/v1", tags=["analyses"])


def _create_examples(schema: dict[str, Any]) -> None:
    """The document's examples, from the registry when the document is built (a registered analyzer's name, never
    one written here)."""
    from vitalens.analyzers import list_analyzers

    names = list_analyzers()[:1]
    schema["examples"] = [{"analyzers": names}, {"analyzers": None, "job_key": "visit-42"}]


class AnalysisCreate(BaseModel):
    """Which analyzers to run; omit ``analyzers`` to run every analyzer that applies to the study's inputs."""

    model_config = ConfigDict(json_schema_extra=_create_examples)

    analyzers: list[str] | None = Field(
        default=None, max_length=32, description="Analyzer names (`GET /api/v1/health` lists them)."
    )
    job_key: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Idempotency key: a repeated request with the same key returns the first analysis.",
    )


class AnalysisAccepted(BaseModel):
    id: str
    job_id: str
    status: str
    analyzers: list[str]
    href: str
    notice: str = DECISION_SUPPORT_NOTICE


class StagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    status: str
    analyzer: str | None
    model_name: str | None
    model_version: str | None
    demonstration: bool | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    error: str | None
    warnings: list[str] = Field(
        default_factory=list,
        description="What must be read with this stage's findings, as the analyzer said it (demonstration model, "
        "an input-quality flag, a model's own caveat).",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title(self) -> str:
        """The stage in words ("Checking the inputs", an analyzer's section title such as "12-lead ECG")."""
        from vitalens.reports.sections import stage_title

        return stage_title(self.name, self.analyzer)


class FindingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    analyzer: str
    code: str
    label: str
    probability: float
    threshold: float | None
    positive: bool
    calibrated: bool
    band: str | None
    tier: str | None


class MeasurementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    analyzer: str
    name: str
    value: float | None
    unit: str
    reference_low: float | None
    reference_high: float | None
    flag: str | None


class ExplanationPublic(BaseModel):
    id: str
    analyzer: str
    target: str
    input_name: str
    input_id: str | None
    method: str
    overlay_href: str | None


class AnalysisPublic(BaseModel):
    """An analysis with its stages (validate, each analyzer, report), timings and results."""

    id: str
    study_id: str
    status: str = Field(description="PENDING, RUNNING, COMPLETE, PARTIAL (see error) or FAILED.")
    analyzers: list[str]
    versions: dict[str, Any]
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    stages: list[StagePublic]
    findings: list[FindingPublic]
    measurements: list[MeasurementPublic]
    explanations: list[ExplanationPublic]
    notice: str = DECISION_SUPPORT_NOTICE


def _public(a: Any) -> AnalysisPublic:
    duration = None
    if a.started_at and a.finished_at:
        duration = (a.finished_at - a.started_at).total_seconds() * 1000.0
    return AnalysisPublic(
        id=a.id,
        study_id=a.study_id,
        status=a.status,
        analyzers=list(a.analyzers or []),
        versions=dict(a.versions or {}),
        error=a.error,
        attempts=a.attempts or 0,
        created_at=a.created_at,
        started_at=a.started_at,
        finished_at=a.finished_at,
        duration_ms=duration,
        stages=[
            StagePublic.model_validate(s).model_copy(update={"warnings": list((s.result or {}).get("warnings") or [])})
            for s in a.stages
        ],
        findings=[FindingPublic.model_validate(f) for f in a.findings],
        measurements=[MeasurementPublic.model_validate(m) for m in a.measurements],
        explanations=[
            ExplanationPublic(
                id=e.id,
                analyzer=e.analyzer,
                target=e.target,
                input_name=e.input_name,
                input_id=e.input_id,
                method=e.method,
                overlay_href=f"/api/v1/explanations/{e.id}/overlay.png" if e.overlay_blob_key else None,
            )
            for e in a.explanations
        ],
    )


def _poll_hint(response: Response, session: Any, analysis: Any) -> None:
    """``Retry-After`` on ``response`` while ``analysis`` is queued or running (``ops.poll_after_s``)."""
    wait = ops.poll_after_s(session=session, analysis=analysis)
    if wait is not None:
        response.headers["Retry-After"] = str(wait)


@router.post(
    "/studies/{study_id}/analyses",
    status_code=202,
    response_model=AnalysisAccepted,
    responses={202: {"headers": {"Retry-After": _RETRY_AFTER_HEADER}}},
    summary="Queue an analysis of the study (202 + job id)",
    openapi_extra=permission("analysis.create"),
)
def create_analysis(
    study_id: str, body: AnalysisCreate, request: Request, response: Response, session: SessionDep, user: CurrentUser
) -> AnalysisAccepted:
    from vitalens.service import metrics

    analysis = ops.create_analysis(
        session=session, user=user, study_id=study_id, analyzers=body.analyzers, job_key=body.job_key
    )
    runner = getattr(request.app.state, "jobs", None)
    if runner is None:
        raise HTTPException(status_code=503, detail="the job runner is not running")
    if analysis.status == "PENDING":
        try:
            runner.submit(analysis.id)
        except Exception as exc:  # noqa: BLE001 - broker down: the analysis stays PENDING for recovery
            logger.error("analysis %s could not be queued: %s", analysis.id, exc)
            raise HTTPException(
                status_code=503, detail=f"job queue unavailable; analysis {analysis.id} is queued again when it is back"
            ) from None
        metrics.ANALYSES_SUBMITTED.labels(backend=runner.backend).inc()
    _poll_hint(response, session, analysis)
    return AnalysisAccepted(
        id=analysis.id,
        job_id=analysis.id,
        status=analysis.status,
        analyzers=list(analysis.analyzers or []),
        href=f"/api/v1/analyses/{analysis.id}",
    )


@router.get(
    "/analysis-plan",
    summary="Which analyzers would run on a study holding these inputs, and what the others lack",
    openapi_extra=permission("study.create"),
)
def analysis_plan(user: CurrentUser, slots: list[str] = Query(default=[], max_length=32)) -> dict[str, Any]:
    """For the study form before it is submitted: ``?slots=fundus_left&slots=age`` (``age``/``sex`` count)."""
    from vitalens.errors import InputError, UnknownNameError
    from vitalens.service.ops import require

    require(user, "study.create")
    try:
        return ops.analysis_plan([s for s in slots if s])
    except UnknownNameError as exc:
        raise InputError(str(exc), field="slots") from None


@router.get(
    "/studies/{study_id}/analyses",
    response_model=list[AnalysisPublic],
    summary="Analyses of a study",
    openapi_extra=permission("analysis.read"),
)
def list_analyses(study_id: str, session: SessionDep, user: CurrentUser) -> list[AnalysisPublic]:
    return [_public(a) for a in ops.list_analyses(session=session, user=user, study_id=study_id)]


@router.get(
    "/analyses/{analysis_id}",
    response_model=AnalysisPublic,
    responses={200: {"headers": {"Retry-After": _RETRY_AFTER_HEADER}}},
    summary="An analysis with stages, timings, findings, measurements and explanations",
    openapi_extra=permission("analysis.read"),
)
def get_analysis(analysis_id: str, session: SessionDep, user: CurrentUser, response: Response) -> AnalysisPublic:
    """While it is queued or running, ``Retry-After`` says when asking again is worth it (``ops.poll_after_s``)."""
    analysis = ops.get_analysis(session=session, user=user, analysis_id=analysis_id)
    _poll_hint(response, session, analysis)
    return _public(analysis)


@router.get(
    "/explanations/{explanation_id}/overlay.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The explanation overlay image",
    openapi_extra=permission("analysis.read"),
)
def explanation_overlay(explanation_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    explanation = ops.get_explanation(session=session, user=user, explanation_id=explanation_id)
    if not explanation.overlay_blob_key:
        raise HTTPException(status_code=404, detail="this explanation has no overlay image")
    return Response(
        content=blobs.get(explanation.overlay_blob_key),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(
    "/explanations/{explanation_id}/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No map, or not an image map"}},
    summary="The explanation's heat map alone (colour-coded, over the input's field of view, at most 1024 px a side)",
    openapi_extra=permission("analysis.read"),
)
def explanation_heatmap(explanation_id: str, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> Response:
    """The stored map of an image explanation drawn alone (the middle panel of the three-panel view)."""
    import io

    import numpy as np

    from vitalens.explain.overlay import heatmap_png
    from vitalens.slots import SlotKind, get_slot, is_slot

    explanation = ops.get_explanation(session=session, user=user, explanation_id=explanation_id)
    if not explanation.heatmap_blob_key:
        raise HTTPException(status_code=404, detail="this explanation has no stored map")
    heat = np.load(io.BytesIO(blobs.get(explanation.heatmap_blob_key)), allow_pickle=False)
    image_slot = is_slot(explanation.input_name) and get_slot(explanation.input_name).kind == SlotKind.IMAGE
    if heat.ndim != 2 or not image_slot:
        raise HTTPException(status_code=404, detail="this explanation's map is not an image map")
    return Response(content=heatmap_png(heat), media_type="image/png", headers={"Cache-Control": "private, no-store"})


def _register_lifespan() -> None:
    from vitalens.service.app import LIFESPAN_HOOKS
    from vitalens.service.jobs import jobs_lifespan

    if jobs_lifespan not in LIFESPAN_HOOKS:
        LIFESPAN_HOOKS.append(jobs_lifespan)


_register_lifespan()
