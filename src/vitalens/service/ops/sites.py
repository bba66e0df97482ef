"""Sites (clinics): the boundary that patient data never crosses."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from vitalens.service.ops import Conflict, NotFound, instance_wide, require
from vitalens.service.ops.audit import record_event
from vitalens.store.models import Site, User

__all__ = ["create_site", "get_site", "list_sites", "get_or_create_site"]

logger = logging.getLogger(__name__)


def _name(name: str) -> str:
    from vitalens.errors import InputError

    clean = " ".join(name.split())
    if not 1 <= len(clean) <= 200:
        raise InputError(f"site name must have 1-200 characters, got {len(clean)}", field="name")
    return clean


def get_or_create_site(*, session: Session, name: str) -> Site:
    """The site called ``name``, created if missing (bootstrap; the caller commits)."""
    clean = _name(name)
    site = session.scalar(select(Site).where(Site.name == clean))
    if site is None:
        site = Site(name=clean)
        session.add(site)
        session.flush()
    return site


def create_site(*, session: Session, user: User, name: str) -> Site:
    """Create a site (instance administrators only); a duplicate name is a :class:`Conflict`."""
    require(user, "site.manage")
    clean = _name(name)
    if session.scalar(select(Site.id).where(Site.name == clean)):
        raise Conflict(f"a site named {clean!r} exists already")
    site = Site(name=clean)
    session.add(site)
    session.flush()
    record_event(session=session, actor=user, action="site.create", record_type="site", record_id=site.id)
    session.commit()
    return site


def get_site(*, session: Session, site_id: str) -> Site:
    """The site ``site_id`` (no access check: callers decide who may name it)."""
    site = session.get(Site, site_id) if isinstance(site_id, str) and len(site_id) <= 64 else None
    if site is None:
        raise NotFound("site not found")
    return site


def list_sites(*, session: Session, user: User) -> list[Site]:
    """All sites (instance administrators) or the user's own site."""
    if instance_wide(user, "site.manage"):
        return list(session.scalars(select(Site).order_by(Site.name)))
    return [get_site(session=session, site_id=user.site_id)]
