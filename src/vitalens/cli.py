"""The ``vitalens`` command: thin over the package (train, evaluate, analyze, serve, analyzers, ...).

Why thin: the CLI, the API and the job workers call the same functions, so a result never depends on the
entry point. User errors print one line and exit with code 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from vitalens.errors import VitalensError

__all__ = ["app", "main", "user_errors"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = logging.getLogger(__name__)
err_console = Console(stderr=True)

app = typer.Typer(
    name="vitalens",
    help="vitalens: explainable multimodal screening. Decision support, not a diagnosis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn expected errors (bad input, bad names, bad artifacts) into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (VitalensError, FileNotFoundError, ValueError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register_subcommands() -> None:
    """Each ``vitalens._cli`` module adds its commands to ``app`` (one module per area)."""
    import importlib
    import pkgutil

    import vitalens._cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"vitalens._cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
