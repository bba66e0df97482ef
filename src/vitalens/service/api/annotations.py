"""Annotation routes: add, edit (new version), delete and list region annotations on a study's inputs."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from vitalens.service.api._access import permission
from vitalens.service.deps import BlobsDep, CurrentUser, SessionDep

# ``from vitalens.service.ops import annotations`` would return the package's ``from __future__ import
# annotations`` feature object, not the submodule; import the module by its full name instead.
ops = importlib.import_module("vitalens.service.ops.annotations")

__all__ = ["router", "AnnotationCreate", "AnnotationUpdate", "AnnotationPublic"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["annotations"])

Shape = Literal["box", "polygon", "brush", "none"]


class AnnotationCreate(BaseModel):
    """A region on the input, in its pixel coordinates (x right, y down)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"shape": "box", "geometry": {"x0": 10, "y0": 12, "x1": 40, "y1": 44}, "label": "haemorrhage"},
                {"shape": "polygon", "geometry": {"points": [[5, 5], [30, 8], [18, 25]]}, "label": "exudate"},
                {
                    "shape": "brush",
                    "geometry": {"strokes": [{"points": [[20, 20], [30, 24]], "radius": 4}]},
                    "label": "drusen",
                },
            ]
        }
    )

    shape: Shape
    geometry: dict[str, Any] = Field(default_factory=dict)
    label: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=5000)
    finding_id: str | None = Field(default=None, max_length=32)


class AnnotationUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"label": "microaneurysm"}]})

    shape: Shape | None = None
    geometry: dict[str, Any] | None = None
    label: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=5000)


class AnnotationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    root_id: str
    version: int
    is_current: bool
    study_id: str
    input_id: str | None
    finding_id: str | None
    author_id: str | None
    label: str
    text: str
    shape: str
    geometry: dict[str, Any]
    has_mask: bool = False
    created_at: datetime
    deleted_at: datetime | None


def _public(row: Any) -> AnnotationPublic:
    out = AnnotationPublic.model_validate(row)
    out.has_mask = row.mask_blob_key is not None
    return out


@router.post(
    "/inputs/{input_id}/annotations",
    status_code=201,
    response_model=AnnotationPublic,
    summary="Add a region annotation on an input",
    openapi_extra=permission("annotation.create"),
)
def create_annotation(
    input_id: str, body: AnnotationCreate, session: SessionDep, user: CurrentUser, blobs: BlobsDep
) -> AnnotationPublic:
    return _public(
        ops.create_annotation(
            session=session,
            blobs=blobs,
            user=user,
            input_id=input_id,
            shape=body.shape,
            geometry=body.geometry,
            label=body.label,
            text=body.text,
            finding_id=body.finding_id,
        )
    )


@router.put(
    "/annotations/{annotation_id}",
    response_model=AnnotationPublic,
    summary="Edit an annotation (adds a new version)",
    openapi_extra=permission("annotation.create"),
)
def update_annotation(
    annotation_id: str, body: AnnotationUpdate, session: SessionDep, user: CurrentUser, blobs: BlobsDep
) -> AnnotationPublic:
    return _public(
        ops.update_annotation(
            session=session,
            blobs=blobs,
            user=user,
            annotation_id=annotation_id,
            shape=body.shape,
            geometry=body.geometry,
            label=body.label,
            text=body.text,
        )
    )


@router.delete(
    "/annotations/{annotation_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an annotation (its versions stay in the audit history)",
    openapi_extra=permission("annotation.create"),
)
def delete_annotation(annotation_id: str, session: SessionDep, user: CurrentUser) -> Response:
    ops.delete_annotation(session=session, user=user, annotation_id=annotation_id)
    return Response(status_code=204)


@router.get(
    "/studies/{study_id}/annotations",
    response_model=list[AnnotationPublic],
    summary="Current annotations of a study",
    openapi_extra=permission("annotation.read"),
)
def list_annotations(
    study_id: str, session: SessionDep, user: CurrentUser, input_id: str | None = None
) -> list[AnnotationPublic]:
    return [_public(r) for r in ops.list_annotations(session=session, user=user, study_id=study_id, input_id=input_id)]


@router.get(
    "/annotations/{annotation_id}/versions",
    response_model=list[AnnotationPublic],
    summary="Every version of an annotation",
    openapi_extra=permission("annotation.read"),
)
def annotation_versions(annotation_id: str, session: SessionDep, user: CurrentUser) -> list[AnnotationPublic]:
    return [_public(r) for r in ops.annotation_history(session=session, user=user, annotation_id=annotation_id)]
