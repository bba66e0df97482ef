"""``vitalens db upgrade`` and ``vitalens admin create``: schema migrations and the first-run admin bootstrap.

Why a CLI for the first admin: there is no self sign-up; the person installing vitalens creates the first admin
on the server itself, and that admin creates every other user through the API or web app.
"""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console

__all__ = ["register"]

logger = logging.getLogger(__name__)
console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    from vitalens._cli._common import user_errors

    db_app = typer.Typer(help="Database schema (Alembic migrations shipped in the package).", no_args_is_help=True)
    admin_app = typer.Typer(help="Administration: the first-run admin account.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    app.add_typer(admin_app, name="admin")

    @db_app.command("upgrade")
    @user_errors
    def upgrade_cmd(
        revision: str = typer.Argument("head", help="Target revision."),
        url: str | None = typer.Option(None, "--url", help="SQLAlchemy URL (default: VITALENS_DATABASE_URL)."),
    ) -> None:
        """Migrate the database to the latest schema (``alembic upgrade head``)."""
        from vitalens.config import get_settings
        from vitalens.store import upgrade

        target = url or get_settings().sqlalchemy_url
        upgrade(target, revision)
        console.print(f"database at {_redact(target)} is at revision {revision}")

    @admin_app.command("create")
    @user_errors
    def admin_create_cmd(
        email: str = typer.Option(..., "--email", help="The admin's e-mail (login name)."),
        site: str = typer.Option("Default site", "--site", help="Name of the admin's site (created if missing)."),
        full_name: str = typer.Option("", "--name", help="Display name."),
        password_env: str = typer.Option(
            "VITALENS_ADMIN_PASSWORD", "--password-env", help="Read the password from this environment variable."
        ),
    ) -> None:
        """Create the instance administrator (sites and every site's users; no patient data), once.

        The password comes from ``$VITALENS_ADMIN_PASSWORD`` or an interactive prompt, never from the command line.
        """
        from vitalens.config import get_settings
        from vitalens.service.ops import OpsError
        from vitalens.service.ops.users import bootstrap_admin
        from vitalens.store import is_sqlite, make_engine, make_session_factory, session_scope, upgrade

        settings = get_settings()
        password = os.environ.get(password_env) or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        if is_sqlite(settings.sqlalchemy_url):
            upgrade(settings.sqlalchemy_url)
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                user = bootstrap_admin(
                    session=session,
                    email=email,
                    password=password,
                    site_name=site,
                    full_name=full_name,
                    allow_site_admins=True,
                )
                console.print(f"created instance administrator {user.email} (id {user.id}), home site {site!r}")
        except OpsError as exc:
            raise ValueError(exc.reason) from None
        finally:
            engine.dispose()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
