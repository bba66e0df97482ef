"""``vitalens serve``: the web app and API (uvicorn) on the configured database and bundled models."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
        port: int = typer.Option(8000, help="TCP port."),
        workers: int = typer.Option(1, help="Uvicorn worker processes."),
        reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    ) -> None:
        """Start the web app + API (SQLite and the bundled models unless configured otherwise)."""
        import uvicorn

        uvicorn.run(
            "vitalens.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            log_level="info",
        )
