"""The clinician web app's pages: server-rendered Jinja templates over the same ``service/ops`` as the API.

Why server-rendered pages plus small JavaScript modules: no Node build is needed to run the app (``make serve``
serves it from this process), every page enforces the API's per-site authorisation because it reads through ops,
and all changes (login, new study, feedback, annotations, sign-off) go through the JSON API with the cookie
session and its CSRF header, so the browser exercises exactly what API clients do.

Pages answer HTML: not signed in → redirect to ``/login``; another site's record → a 404 page; a missing
permission → a 403 page with the reason.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from vitalens import DECISION_SUPPORT_NOTICE, __version__
from vitalens.reports.sections import method_title, slot_title, stage_title, warning_text
from vitalens.service.deps import SessionDep, SettingsDep, get_auth, rate_limit
from vitalens.service.ops import Forbidden, NotFound, OpsError, can, instance_wide
from vitalens.service.ops.oidc import oidc_enabled
from vitalens.store.models import User
from vitalens.web import views
from vitalens.web.glossary import glossary_sections

__all__ = ["router", "install", "STATIC_DIR", "TEMPLATES_DIR", "SetupRequest"]

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
STATIC_DIR = _HERE / "static"
TEMPLATES_DIR = _HERE / "templates"

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals.update(
    notice=DECISION_SUPPORT_NOTICE,
    version=__version__,
    band_class=views.band_class,
    findings_chart=views.findings_chart_svg,
    slot_title=slot_title,
    method_title=method_title,
    stage_title=stage_title,
    warning_text=warning_text,
)


def install(app: FastAPI) -> None:
    """Serve ``static/`` (CSS, JS modules, sample cases) at ``/static`` (called by the app factory)."""
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def _optional_user(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    try:
        return get_auth(request, session, settings).user
    except HTTPException:
        return None


PageUser = Annotated[User | None, Depends(_optional_user)]


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _page(request: Request, name: str, user: User | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    is_admin = user is not None and can(user, "user.manage")
    clinical = user is not None and can(user, "patient.read")
    return templates.TemplateResponse(
        request, name, {"user": user, "is_admin": is_admin, "clinical": clinical, **context}, status_code=status_code
    )


def _error_page(request: Request, user: User | None, exc: OpsError) -> HTMLResponse:
    title = {404: "Not found", 403: "Not allowed"}.get(exc.status_code, "Something went wrong")
    return _page(request, "error.html", user, status_code=exc.status_code, title=title, message=exc.reason)


def _admin_exists(session: Any) -> bool:
    from sqlalchemy import func, select

    from vitalens.store.models import User as UserRow

    admins = select(func.count()).select_from(UserRow).where(UserRow.role.in_(("admin", "instance_admin")))
    return bool(session.scalar(admins))


@router.get("/", response_class=HTMLResponse)
def home(user: PageUser) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    # the instance administrator reads no patient record: its home is the admin page
    return RedirectResponse("/worklist" if can(user, "patient.read") else "/admin", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: SessionDep, user: PageUser, next: str = "/worklist") -> Response:
    if not _admin_exists(session):
        return RedirectResponse("/setup", status_code=303)
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/worklist"
    settings = request.app.state.settings
    sso = {"name": settings.oidc_display_name, "url": f"/api/v1/auth/oidc/login?next={quote(safe_next, safe='')}"}
    return _page(
        request,
        "login.html",
        user,
        next=safe_next,
        sso=sso if oidc_enabled(settings) else None,
        sso_error=(request.query_params.get("error") or "")[:300] or None,
    )


class SetupRequest(BaseModel):
    """First-run administrator and site (only while no admin exists)."""

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    full_name: str = Field(default="", max_length=200)
    site_name: str = Field(max_length=200)


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, session: SessionDep, user: PageUser) -> Response:
    if _admin_exists(session):
        return RedirectResponse("/login", status_code=303)
    return _page(request, "setup.html", user)


@router.post("/setup", status_code=201, dependencies=[Depends(rate_limit("10/minute", scope="setup"))])
def setup(body: SetupRequest, session: SessionDep) -> JSONResponse:
    """Create the first admin and its site (refused with 409 once an admin exists)."""
    from vitalens.service.ops.users import bootstrap_admin

    user = bootstrap_admin(
        session=session, email=body.email, password=body.password, site_name=body.site_name, full_name=body.full_name
    )
    return JSONResponse(status_code=201, content={"id": user.id, "email": user.email})


@router.get("/worklist", response_class=HTMLResponse)
def worklist(request: Request, session: SessionDep, user: PageUser, q: str = "", review: str = "") -> Response:
    if user is None:
        return _login_redirect(request)
    from vitalens.service.ops import patients as patient_ops

    q = q[:64]
    try:
        rows = views.worklist_rows(session=session, user=user, q=q, needs_review=review == "1")
        patients = patient_ops.list_patients(session=session, user=user, q=q or None, limit=20).items
    except OpsError as exc:
        return _error_page(request, user, exc)
    return _page(request, "worklist.html", user, rows=rows, patients=patients, q=q, review=review == "1")


@router.get("/studies/new", response_class=HTMLResponse)
def new_study(request: Request, session: SessionDep, user: PageUser, patient_id: str = "") -> Response:
    if user is None:
        return _login_redirect(request)
    from vitalens.service.ops import patients as patient_ops

    try:
        patients = patient_ops.list_patients(session=session, user=user, limit=200).items
    except OpsError as exc:
        return _error_page(request, user, exc)
    return _page(
        request,
        "new_study.html",
        user,
        patients=patients,
        patient_id=patient_id,
        today=date.today().isoformat(),
        groups=views.form_groups(),
        can_create=can(user, "study.create"),
    )


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(request: Request, study_id: str, session: SessionDep, user: PageUser, settings: SettingsDep) -> Response:
    if user is None:
        return _login_redirect(request)
    from vitalens.web.assistant_views import assistant_panels

    try:
        view = views.study_view(session=session, user=user, study_id=study_id)
    except OpsError as exc:
        return _error_page(request, user, exc)
    return _page(
        request,
        "study.html",
        user,
        v=view,
        a16=assistant_panels(session=session, user=user, view=view, settings=settings),
        can_review=can(user, "feedback.create") and view.editable,
        can_annotate=can(user, "annotation.create") and view.editable,
        can_sign=can(user, "report.sign"),
        require_positive_review=settings.signoff_require_positive_review,
    )


@router.get("/studies/{study_id}/print", response_class=HTMLResponse)
def study_print(
    request: Request, study_id: str, session: SessionDep, user: PageUser, settings: SettingsDep
) -> Response:
    if user is None:
        return _login_redirect(request)
    from vitalens.web.assistant_views import assistant_panels

    try:
        view = views.study_view(session=session, user=user, study_id=study_id)
    except OpsError as exc:
        return _error_page(request, user, exc)
    a16 = assistant_panels(session=session, user=user, view=view, settings=settings)
    return _page(request, "print.html", user, v=view, a16=a16, bare=True)


@router.get("/studies/{study_id}/ecg.png")
def study_ecg_png(
    study_id: str, session: SessionDep, request: Request, user: PageUser, slot: str | None = None
) -> Response:
    """An ECG input of the study (``slot``, default its first ECG-kind slot) as the standard 12-lead sheet (PNG),
    decoded as the job decodes it (the slot's decoder with the hints it was uploaded with)."""
    if user is None:
        raise HTTPException(status_code=401, detail="not authenticated")
    from vitalens.plots.ecg import plot_12lead
    from vitalens.service.ops import inputs as input_ops
    from vitalens.service.ops import studies as study_ops

    try:
        study = study_ops.visible_study(session=session, user=user, study_id=study_id)
        live = [i for i in study.inputs if i.deleted_at is None and views.is_signal_slot(i.slot)]
        row = next((i for i in live if slot is None or i.slot == slot), None)
        if row is None:
            raise NotFound(f"this study has no ECG{f' in {slot}' if slot else ''}")
        row, data = input_ops.read_input_bytes(
            session=session, blobs=request.app.state.blobs, user=user, input_id=row.id
        )
        record = input_ops.decode_input(row, data, settings=request.app.state.settings)
    except OpsError as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.reason) from None
    png = plot_12lead(record)
    return Response(content=png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_timeline(request: Request, patient_id: str, session: SessionDep, user: PageUser) -> Response:
    if user is None:
        return _login_redirect(request)
    try:
        patient, studies, panels = views.timeline_view(session=session, user=user, patient_id=patient_id)
    except OpsError as exc:
        return _error_page(request, user, exc)
    return _page(request, "timeline.html", user, patient=patient, studies=studies, panels=panels)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, session: SessionDep, user: PageUser, created: str = "") -> Response:
    if user is None:
        return _login_redirect(request)
    from vitalens.service.ops import sites as site_ops
    from vitalens.service.ops import users as user_ops

    try:
        if not can(user, "user.manage"):
            raise Forbidden("user and site management is for admins")
        users = user_ops.list_users(session=session, user=user)
        sites = site_ops.list_sites(session=session, user=user)
    except OpsError as exc:
        return _error_page(request, user, exc)
    instance = instance_wide(user, "site.manage")
    roles = ["clinician", "reviewer", "admin"] + (["instance_admin"] if instance else [])
    site_names = {s.id: s.name for s in sites}
    return _page(
        request,
        "admin.html",
        user,
        users=users,
        sites=sites,
        site_names=site_names,
        roles=roles,
        manages_sites=instance,
        created=created[:320],
    )


def _when(value: str, *, end: bool = False) -> Any:
    """A date (``2026-12-01``: the whole day) or date-time from the audit filter form; empty or malformed: None."""
    from datetime import datetime, time

    value = (value or "").strip()[:40]
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.max if end else time.min)
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    user: PageUser,
    actor: str = "",
    patient: str = "",
    action: str = "",
    at_from: str = "",
    at_to: str = "",
    offset: int = 0,
) -> Response:
    """The audit trail for administrators: filter by user, patient, action and time; export what is shown as CSV."""
    if user is None:
        return _login_redirect(request)
    from urllib.parse import urlencode

    from vitalens.service.ops import audit as audit_ops

    filters = {"actor": actor[:320], "patient": patient[:64], "action": action[:100], "at_from": at_from[:40]}
    filters["at_to"] = at_to[:40]
    bad = [k for k in ("at_from", "at_to") if filters[k] and _when(filters[k]) is None]
    try:
        chosen = audit_ops.AuditFilter(
            actor=filters["actor"] or None,
            patient=filters["patient"] or None,
            action=filters["action"] or None,
            at_from=_when(filters["at_from"]),
            at_to=_when(filters["at_to"], end=True),
        )
        page = audit_ops.list_events(
            session=session,
            user=user,
            filters=chosen,
            limit=100,
            offset=max(0, min(offset, 1_000_000_000)),
        )
    except OpsError as exc:
        return _error_page(request, user, exc)
    query = urlencode({k: v for k, v in filters.items() if v})
    return _page(
        request,
        "audit.html",
        user,
        page=page,
        filters=filters,
        bad_times=bad,
        query=query,
        csv_href="/api/v1/audit-events.csv" + (f"?{query}" if query else ""),
    )


@router.get("/knowledge", response_class=HTMLResponse)
def knowledge(request: Request, user: PageUser) -> Response:
    """The bundled knowledge base the assistant cites (``/knowledge#<page>-<section>`` is a citation's anchor)."""
    if user is None:
        return _login_redirect(request)
    from vitalens.assistant import knowledge_version
    from vitalens.web.assistant_views import knowledge_pages

    return _page(request, "knowledge.html", user, pages=knowledge_pages(), version_kb=knowledge_version())


@router.get("/glossary", response_class=HTMLResponse)
def glossary(request: Request, user: PageUser) -> Response:
    return _page(request, "glossary.html", user, sections=glossary_sections())
