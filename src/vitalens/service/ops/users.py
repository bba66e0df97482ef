"""User accounts: first-run admin bootstrap and admin-created users (no self sign-up).

Why no self sign-up: users of a clinical system are vouched for by their site; an admin creates them with a role.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import Conflict, Forbidden, NotFound, instance_wide, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.sites import get_or_create_site, get_site
from vitalens.service.security import MIN_PASSWORD_LENGTH, hash_password
from vitalens.store.models import Role, User

__all__ = [
    "bootstrap_admin",
    "create_user",
    "deactivate_user",
    "get_user",
    "list_users",
    "normalise_email",
    "check_password_policy",
]

logger = logging.getLogger(__name__)

_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


def normalise_email(email: str) -> str:
    """Lower-cased, stripped e-mail; raises :class:`InputError` when it does not look like one."""
    clean = email.strip().lower()
    if not _EMAIL_RE.match(clean):
        raise InputError(f"{email!r} is not an e-mail address", field="email")
    return clean


def check_password_policy(password: str) -> None:
    """At least :data:`MIN_PASSWORD_LENGTH` characters, not all the same character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"password has {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are required",
            field="password",
        )
    if len(set(password)) < 4:
        raise InputError("password is too repetitive (fewer than 4 distinct characters)", field="password")


def _role(role: str) -> str:
    from vitalens._naming import unknown_name_error

    valid = [r.value for r in Role]
    if role not in valid:
        raise unknown_name_error("role", role, valid)
    return role


def _admins(session: Session, roles: tuple[str, ...]) -> int:
    return int(session.scalar(select(func.count()).select_from(User).where(User.role.in_(roles))) or 0)


def bootstrap_admin(
    *,
    session: Session,
    email: str,
    password: str,
    site_name: str,
    full_name: str = "",
    allow_site_admins: bool = False,
) -> User:
    """Create the instance administrator (and its home site) on a fresh installation.

    The first account runs the installation (sites, and the users of every site) and reads no patient record;
    clinical work is done under accounts it creates (see :mod:`vitalens.service.ops`).

    Args:
        allow_site_admins: also when site admins exist but no instance administrator (an installation upgraded
            from before instance administrators; the CLI passes it, the web first-run page never does).

    Raises:
        Conflict: an instance administrator exists already (or any admin, unless ``allow_site_admins``).
    """
    roles = (Role.INSTANCE_ADMIN.value,) if allow_site_admins else (Role.ADMIN.value, Role.INSTANCE_ADMIN.value)
    if _admins(session, roles):
        raise Conflict("an admin exists already; log in as that admin to create users")
    email = normalise_email(email)
    check_password_policy(password)
    site = get_or_create_site(session=session, name=site_name)
    user = User(
        site_id=site.id,
        email=email,
        full_name=full_name,
        role=Role.INSTANCE_ADMIN.value,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    record_event(session=session, actor=user, action="user.bootstrap", record_type="user", record_id=user.id)
    session.commit()
    logger.info("bootstrapped instance administrator %s (home site %s)", email, site.name)
    return user


def _manageable(session: Session, user: User, target: User | None) -> User:
    """``target`` if ``user`` may manage it: an instance admin anyone, a site admin their own site's users except
    instance administrators; else :class:`NotFound` (another site's user answers like a missing one)."""
    if target is None:
        raise NotFound("user not found")
    if instance_wide(user, "user.manage"):
        return target
    if target.site_id != user.site_id:
        raise NotFound("user not found")
    if target.role == Role.INSTANCE_ADMIN.value and target.id != user.id:
        raise Forbidden("only an instance administrator may manage an instance administrator")
    return target


def create_user(
    *,
    session: Session,
    user: User,
    email: str,
    password: str,
    role: str,
    full_name: str = "",
    site_id: str | None = None,
) -> User:
    """An admin creates a user: a site admin at their own site only, an instance admin at any site.

    Raises:
        Forbidden: ``user`` is not an admin, or a site admin asks for an instance administrator.
        NotFound: ``site_id`` is not a site the admin manages (another site answers like a missing one).
        Conflict: the e-mail is in use.
        InputError / UnknownNameError: bad e-mail, weak password, unknown role.
    """
    require(user, "user.manage")
    role = _role(role)
    target_site = site_id or user.site_id
    if target_site != user.site_id and not instance_wide(user, "user.manage"):
        raise NotFound("site not found")  # a site admin manages one site; others' ids must not leak
    if role == Role.INSTANCE_ADMIN.value and not instance_wide(user, "user.manage"):
        raise Forbidden("only an instance administrator may create an instance administrator")
    email = normalise_email(email)
    check_password_policy(password)
    site = get_site(session=session, site_id=target_site)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("this e-mail address is in use")
    new = User(
        site_id=site.id,
        email=email,
        full_name=full_name.strip()[:200],
        role=role,
        password_hash=hash_password(password),
    )
    session.add(new)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="user.create",
        record_type="user",
        record_id=new.id,
        site_id=site.id,
        detail={"role": new.role},
    )
    session.commit()
    return new


def get_user(*, session: Session, user: User, user_id: str) -> User:
    """A user: themselves; for a site admin anyone of their site; for an instance admin anyone."""
    if user_id == user.id:
        return user
    require(user, "user.manage")
    found = session.get(User, user_id) if isinstance(user_id, str) and len(user_id) <= 64 else None
    return _manageable(session, user, found)


def list_users(*, session: Session, user: User, site_id: str | None = None) -> list[User]:
    """Users by e-mail: a site admin's own site; an instance admin's every site (or ``site_id``)."""
    require(user, "user.manage")
    query = select(User).order_by(User.email)
    if not instance_wide(user, "user.manage"):
        if site_id is not None and site_id != user.site_id:
            raise NotFound("site not found")
        query = query.where(User.site_id == user.site_id)
    elif site_id is not None:
        query = query.where(User.site_id == get_site(session=session, site_id=site_id).id)
    return list(session.scalars(query))


def deactivate_user(*, session: Session, user: User, user_id: str) -> User:
    """Deactivate a user the admin manages and revoke their refresh tokens (their access tokens stop working)."""
    from vitalens.service.ops.auth import revoke_all_sessions

    require(user, "user.manage")
    target = get_user(session=session, user=user, user_id=user_id)
    if target.id == user.id:
        raise Conflict("you cannot deactivate yourself")
    target.is_active = False
    revoke_all_sessions(session=session, user_id=target.id)
    record_event(
        session=session,
        actor=user,
        action="user.deactivate",
        record_type="user",
        record_id=target.id,
        site_id=target.site_id,
    )
    session.commit()
    return target
