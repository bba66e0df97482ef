"""Register test fakes for one test only (nothing leaks into the global registries)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["temporary_analyzer", "temporary_gate"]


@contextmanager
def temporary_analyzer(name: str, cls: type, **contract: Any) -> Iterator[type]:
    """``register_analyzer(name, **contract)(cls)`` for the ``with`` block; unregistered afterwards."""
    from vitalens.analyzers import ANALYZERS, register_analyzer

    register_analyzer(name, **contract)(cls)
    try:
        yield cls
    finally:
        ANALYZERS.unregister(name)


@contextmanager
def temporary_gate(name: str, gate: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    from vitalens.quality import GATES

    with GATES.temporarily(name, gate):
        yield gate
