"""Region annotations on an input: add, edit (a new version), delete, list with history.

Why versions: a clinician's mark is medical record; an edit never overwrites it but adds ``version + 1`` under the
same ``root_id`` (only the newest is current). Coordinates are validated inside the image (pixels, x right,
y down). A brush stroke set is rasterised into a mask PNG (shape ``mask``) so readers need no stroke logic.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import NotFound, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.service.ops.signing import ensure_editable
from vitalens.store.blobs import BlobStore
from vitalens.store.models import Annotation, Finding, Input, Study, User, utcnow

__all__ = [
    "SHAPES",
    "validate_geometry",
    "create_annotation",
    "update_annotation",
    "delete_annotation",
    "list_annotations",
    "annotation_history",
]

logger = logging.getLogger(__name__)

#: Shapes a client may send; ``brush`` is stored as ``mask`` with its rasterised PNG.
SHAPES = ("box", "polygon", "brush", "none")
MAX_POINTS = 5000
MAX_STROKES = 200


def _point(p: Any, width: int, height: int, *, what: str) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) != 2 or not all(isinstance(v, int | float) for v in p):
        raise InputError(f"{what}: a point must be [x, y] numbers, got {p!r}", field="geometry")
    x, y = float(p[0]), float(p[1])
    if not (0 <= x <= width and 0 <= y <= height):
        raise InputError(f"{what}: point ({x:g}, {y:g}) lies outside the image {width}x{height} px", field="geometry")
    return x, y


def validate_geometry(shape: str, geometry: dict[str, Any], *, width: int | None, height: int | None) -> dict[str, Any]:
    """Check ``geometry`` for ``shape`` against the image size; returns the normalised geometry.

    Raises:
        InputError: unknown shape, malformed geometry, or a coordinate outside ``[0, width] × [0, height]``.
    """
    if shape not in SHAPES:
        raise InputError(f"unknown shape '{shape}'; valid: {', '.join(SHAPES)}", field="shape")
    if shape == "none":
        return {}
    if width is None or height is None:
        raise InputError(f"this input has no pixel grid; only shape 'none' is allowed, got '{shape}'", field="shape")
    if shape == "box":
        try:
            x0, y0, x1, y1 = (float(geometry[k]) for k in ("x0", "y0", "x1", "y1"))
        except (KeyError, TypeError, ValueError):
            raise InputError("box geometry needs numeric x0, y0, x1, y1", field="geometry") from None
        _point([x0, y0], width, height, what="box corner")
        _point([x1, y1], width, height, what="box corner")
        if not (x1 > x0 and y1 > y0):
            raise InputError(
                f"box must have x1 > x0 and y1 > y0, got ({x0:g},{y0:g})-({x1:g},{y1:g})", field="geometry"
            )
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
    if shape == "polygon":
        points = geometry.get("points")
        if not isinstance(points, list) or not 3 <= len(points) <= MAX_POINTS:
            raise InputError(f"polygon needs 3 to {MAX_POINTS} points", field="geometry")
        return {"points": [list(_point(p, width, height, what="polygon")) for p in points]}
    strokes = geometry.get("strokes")
    if not isinstance(strokes, list) or not 1 <= len(strokes) <= MAX_STROKES:
        raise InputError(f"brush needs 1 to {MAX_STROKES} strokes", field="geometry")
    out, total = [], 0
    for stroke in strokes:
        if not isinstance(stroke, dict):
            raise InputError("a brush stroke is {'points': [[x, y], ...], 'radius': r}", field="geometry")
        radius = stroke.get("radius", 5)
        if not isinstance(radius, int | float) or not 0.5 <= float(radius) <= 500:
            raise InputError(f"brush radius must be 0.5–500 px, got {radius!r}", field="geometry")
        points = stroke.get("points")
        if not isinstance(points, list) or not points:
            raise InputError("a brush stroke needs at least one point", field="geometry")
        total += len(points)
        if total > MAX_POINTS:
            raise InputError(f"brush has more than {MAX_POINTS} points", field="geometry")
        out.append({"radius": float(radius), "points": [list(_point(p, width, height, what="brush")) for p in points]})
    return {"width": width, "height": height, "strokes": out}


def _rasterise(geometry: dict[str, Any]) -> bytes:
    """The brush strokes as a binary mask PNG (255 inside) of the image's size."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (int(geometry["width"]), int(geometry["height"])), 0)
    draw = ImageDraw.Draw(mask)
    for stroke in geometry["strokes"]:
        r = stroke["radius"]
        pts = [tuple(p) for p in stroke["points"]]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, int(round(2 * r))), joint="curve")
        for x, y in pts:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    return buf.getvalue()


def _scoped_input(session: Session, user: User, input_id: str) -> Input:
    return visible(session, user, Input, input_id)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _current(session: Session, user: User, annotation_id: str) -> Annotation:
    """The current version of the annotation whose id or root id is ``annotation_id`` (site-scoped)."""
    row = visible(session, user, Annotation, annotation_id) if _is_id(annotation_id) else None
    root = row.root_id if row is not None else None
    current = session.scalar(select(Annotation).where(Annotation.root_id == root, Annotation.is_current.is_(True)))
    if current is None or current.deleted_at is not None:
        raise NotFound("annotation not found")
    return current


def _store(
    session: Session, blobs: BlobStore, shape: str, geometry: dict[str, Any], inp: Input | None
) -> tuple[str, dict[str, Any], str | None]:
    geometry = validate_geometry(shape, geometry, width=inp.width if inp else None, height=inp.height if inp else None)
    if shape == "brush":
        return "mask", geometry, blobs.put(_rasterise(geometry))
    return shape, geometry, None


def create_annotation(
    *,
    session: Session,
    blobs: BlobStore,
    user: User,
    input_id: str,
    shape: str,
    geometry: dict[str, Any],
    label: str,
    text: str = "",
    finding_id: str | None = None,
) -> Annotation:
    """Add a region annotation (version 1) on input ``input_id``.

    Raises:
        NotFound: no such input (or finding) in the user's site.
        InputError: bad shape or coordinates outside the image.
    """
    require(user, "annotation.create")
    inp = _scoped_input(session, user, input_id)
    ensure_editable(session, inp.study)
    if finding_id is not None:
        finding = visible(session, user, Finding, finding_id)
        if finding.analysis.study_id != inp.study_id:
            raise NotFound("finding not found in this study")
    stored_shape, geometry, mask_key = _store(session, blobs, shape, geometry, inp)
    from vitalens.store.models import new_id

    root = new_id()
    row = Annotation(
        id=root,
        root_id=root,
        version=1,
        is_current=True,
        study_id=inp.study_id,
        input_id=inp.id,
        finding_id=finding_id,
        author_id=user.id,
        label=label,
        text=text,
        shape=stored_shape,
        geometry=geometry,
        mask_blob_key=mask_key,
    )
    session.add(row)
    record_event(
        session=session,
        actor=user,
        action="annotation.create",
        record_type="annotation",
        record_id=root,
        patient_id=inp.study.patient_id,
        detail={"shape": shape, "input_id": inp.id},
    )
    session.commit()
    return row


def update_annotation(
    *,
    session: Session,
    blobs: BlobStore,
    user: User,
    annotation_id: str,
    shape: str | None = None,
    geometry: dict[str, Any] | None = None,
    label: str | None = None,
    text: str | None = None,
) -> Annotation:
    """Edit an annotation: a new version (``version + 1``) becomes current; older versions are kept."""
    require(user, "annotation.create")
    current = _current(session, user, annotation_id)
    ensure_editable(session, _study_of(session, current))
    inp = session.get(Input, current.input_id) if current.input_id else None
    if shape is None and geometry is None:
        new_shape, new_geometry, mask_key = current.shape, current.geometry, current.mask_blob_key
    else:
        requested = shape or ("brush" if current.shape == "mask" else current.shape)
        new_shape, new_geometry, mask_key = _store(session, blobs, requested, geometry or {}, inp)
    current.is_current = False
    session.flush()
    row = Annotation(
        root_id=current.root_id,
        version=current.version + 1,
        is_current=True,
        study_id=current.study_id,
        input_id=current.input_id,
        analysis_id=current.analysis_id,
        finding_id=current.finding_id,
        author_id=user.id,
        label=current.label if label is None else label,
        text=current.text if text is None else text,
        shape=new_shape,
        geometry=new_geometry,
        mask_blob_key=mask_key,
    )
    session.add(row)
    record_event(
        session=session,
        actor=user,
        action="annotation.update",
        record_type="annotation",
        record_id=current.root_id,
        patient_id=current_patient(session, current),
        detail={"version": row.version},
    )
    session.commit()
    return row


def current_patient(session: Session, annotation: Annotation) -> str | None:
    from vitalens.store.models import Study

    study = session.get(Study, annotation.study_id)
    return study.patient_id if study else None


def _study_of(session: Session, annotation: Annotation) -> Study:
    study = session.get(Study, annotation.study_id)
    if study is None:  # the foreign key cascades: an annotation never outlives its study
        raise NotFound(f"annotation {annotation.id} not found")
    return study


def delete_annotation(*, session: Session, user: User, annotation_id: str) -> Annotation:
    """Soft-delete an annotation (all its versions stay in the database for the audit trail)."""
    require(user, "annotation.create")
    current = _current(session, user, annotation_id)
    ensure_editable(session, _study_of(session, current))
    current.deleted_at = utcnow()
    record_event(
        session=session,
        actor=user,
        action="annotation.delete",
        record_type="annotation",
        record_id=current.root_id,
        patient_id=current_patient(session, current),
    )
    session.commit()
    return current


def list_annotations(*, session: Session, user: User, study_id: str, input_id: str | None = None) -> list[Annotation]:
    """Current, not deleted annotations of a study (optionally of one input), oldest first (audited read)."""
    require(user, "annotation.read")
    study = visible(session, user, Study, study_id)
    query = select(Annotation).where(
        Annotation.study_id == study.id, Annotation.is_current.is_(True), Annotation.deleted_at.is_(None)
    )
    if input_id:
        query = query.where(Annotation.input_id == input_id)
    rows = list(session.scalars(query.order_by(Annotation.created_at)).all())
    record_event(
        session=session,
        actor=user,
        action="annotation.list",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
    )
    session.commit()
    return rows


def annotation_history(*, session: Session, user: User, annotation_id: str) -> list[Annotation]:
    """Every version of an annotation, oldest first (audited read)."""
    require(user, "annotation.read")
    row = visible(session, user, Annotation, annotation_id)
    rows = list(
        session.scalars(select(Annotation).where(Annotation.root_id == row.root_id).order_by(Annotation.version)).all()
    )
    record_event(
        session=session,
        actor=user,
        action="annotation.read",
        record_type="annotation",
        record_id=row.root_id,
        patient_id=current_patient(session, row),
    )
    session.commit()
    return rows
