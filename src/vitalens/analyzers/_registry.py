"""Analyzer registry (timm ``register_model`` style) with explicit dotted names stored in DB rows.

Why explicit names: ``fundus.odir`` is written into analyses and findings; renaming a Python class must not
orphan stored results.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitalens._naming import unknown_name_error
from vitalens.domain import InputName, Modality

if TYPE_CHECKING:
    from vitalens.analyzers._base import Analyzer

__all__ = ["AnalyzerSpec", "register_analyzer", "create_analyzer", "list_analyzers", "is_analyzer", "get_spec"]


@dataclass(frozen=True)
class AnalyzerSpec:
    """What an analyzer needs and where its default artifact lives (a folder name under ``models/``)."""

    name: str
    cls: type[Analyzer]
    modality: Modality
    inputs: tuple[InputName, ...]
    optional_inputs: tuple[InputName, ...] = ()
    default_artifact: str | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


_ANALYZERS: dict[str, AnalyzerSpec] = {}


def register_analyzer(
    name: str,
    *,
    modality: Modality,
    inputs: tuple[InputName, ...],
    optional_inputs: tuple[InputName, ...] = (),
    default_artifact: str | None = None,
    description: str = "",
) -> Callable[[type[Analyzer]], type[Analyzer]]:
    """Class decorator registering an analyzer under a dotted ``name``; a duplicate name is an error."""

    def decorator(cls: type[Analyzer]) -> type[Analyzer]:
        if name in _ANALYZERS:
            raise ValueError(f"analyzer '{name}' is already registered (by {_ANALYZERS[name].cls.__name__})")
        spec = AnalyzerSpec(
            name=name,
            cls=cls,
            modality=modality,
            inputs=tuple(inputs),
            optional_inputs=tuple(optional_inputs),
            default_artifact=default_artifact,
            description=description or (cls.__doc__ or "").strip().splitlines()[0],
        )
        cls.spec = spec
        _ANALYZERS[name] = spec
        return cls

    return decorator


def get_spec(name: str) -> AnalyzerSpec:
    if name not in _ANALYZERS:
        raise unknown_name_error("analyzer", name, _ANALYZERS)
    return _ANALYZERS[name]


def create_analyzer(name: str, *, artifact: Path | str | None = None, **kwargs: Any) -> Analyzer:
    """Instantiate analyzer ``name`` on ``artifact`` (a folder) or its default bundled artifact.

    Example:
        >>> from vitalens.analyzers import create_analyzer
        >>> analyzer = create_analyzer("fundus.odir")  # doctest: +SKIP
    """
    spec = get_spec(name)
    return spec.cls(artifact=Path(artifact) if artifact is not None else None, **kwargs)


def list_analyzers(pattern: str = "*") -> list[str]:
    """Registered analyzer names matching a glob (``"fundus.*"``), sorted."""
    return sorted(n for n in _ANALYZERS if fnmatch.fnmatch(n, pattern))


def is_analyzer(name: str) -> bool:
    return name in _ANALYZERS
