"""Shared CLI plumbing: one-line user errors with exit code 2, and the stderr console.

Why a module of its own: command modules import it while ``vitalens.cli`` is still being built (and when the CLI
runs as ``python -m vitalens.cli``), so it must not depend on ``vitalens.cli`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from vitalens.errors import VitalensError

__all__ = ["err_console", "user_errors"]

err_console = Console(stderr=True)

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
