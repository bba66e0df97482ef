"""The ``vitalens`` command: thin over the package (train, evaluate, analyze, serve, analyzers, ...).

Why thin: the CLI, the API and the job workers call the same functions, so a result never depends on the
entry point. User errors print one line and exit with code 2.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from vitalens._cli._common import err_console, user_errors

__all__ = ["app", "err_console", "main", "user_errors"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = logging.getLogger(__name__)
app = typer.Typer(
    name="vitalens",
    help="vitalens: explainable multimodal screening. Decision support, not a diagnosis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"vitalens._cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    # ``python -m vitalens.cli``: run the package's own module so command modules share one ``app``.
    from vitalens.cli import main as _main

    _main()
else:
    _register_subcommands()
