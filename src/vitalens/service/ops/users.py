"""User accounts: first-run admin bootstrap and admin-created users (no self sign-up).

Why no self sign-up: users of a clinical system are vouched for by their site; an admin creates them with a role.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vitalens.errors import InputError
from vitalens.service.ops import Conflict, NotFound, require
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


def bootstrap_admin(*, session: Session, email: str, password: str, site_name: str, full_name: str = "") -> User:
    """Create the first admin (and its site) on a fresh database; refuses once any admin exists.

    Raises:
        Conflict: an admin exists already (create further users through the API as that admin).
    """
    if session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN.value)):
        raise Conflict("an admin exists already; log in as that admin to create users")
    email = normalise_email(email)
    check_password_policy(password)
    site = get_or_create_site(session=session, name=site_name)
    user = User(
        site_id=site.id, email=email, full_name=full_name, role=Role.ADMIN.value, password_hash=hash_password(password)
    )
    session.add(user)
    session.flush()
    record_event(session=session, actor=user, action="user.bootstrap", record_type="user", record_id=user.id)
    session.commit()
    logger.info("bootstrapped admin %s at site %s", email, site.name)
    return user


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
    """An admin creates a user at their own site (or at ``site_id``).

    Raises:
        Forbidden: ``user`` is not an admin.
        Conflict: the e-mail is in use.
        InputError / UnknownNameError: bad e-mail, weak password, unknown role.
    """
    require(user, "user.manage")
    email = normalise_email(email)
    check_password_policy(password)
    site = get_site(session=session, site_id=site_id or user.site_id)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("this e-mail address is in use")
    new = User(
        site_id=site.id,
        email=email,
        full_name=full_name.strip()[:200],
        role=_role(role),
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
    """A user of the caller's site: themselves, or anyone when the caller is an admin."""
    if user_id == user.id:
        return user
    require(user, "user.manage")
    found = session.get(User, user_id)
    if found is None or found.site_id != user.site_id:
        raise NotFound("user not found")
    return found


def list_users(*, session: Session, user: User) -> list[User]:
    """Users of the admin's own site, by e-mail."""
    require(user, "user.manage")
    return list(session.scalars(select(User).where(User.site_id == user.site_id).order_by(User.email)))


def deactivate_user(*, session: Session, user: User, user_id: str) -> User:
    """Deactivate a user of the admin's site and revoke their refresh tokens (their access tokens stop working)."""
    from vitalens.service.ops.auth import revoke_all_sessions

    target = get_user(session=session, user=user, user_id=user_id)
    require(user, "user.manage")
    if target.id == user.id:
        raise Conflict("you cannot deactivate yourself")
    target.is_active = False
    revoke_all_sessions(session=session, user_id=target.id)
    record_event(session=session, actor=user, action="user.deactivate", record_type="user", record_id=target.id)
    session.commit()
    return target
