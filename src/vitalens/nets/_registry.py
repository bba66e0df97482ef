"""Net registry (timm style): variants are registered functions passing argument sets to one builder.

Why: model cards name a net and its kwargs; loading an artifact must rebuild exactly that net by name.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from typing import Any

from vitalens._naming import unknown_name_error

__all__ = ["register_net", "create_net", "list_nets", "is_net"]

logger = logging.getLogger(__name__)

_NETS: dict[str, Callable[..., Any]] = {}


def register_net(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a net builder ``fn(pretrained: bool | str = False, **kwargs) -> nn.Module`` under ``name``."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _NETS:
            raise ValueError(f"net '{name}' is already registered")
        _NETS[name] = fn
        return fn

    return decorator


def create_net(name: str, pretrained: bool | str = False, **kwargs: Any) -> Any:
    """Build the registered net ``name``; unknown names fail listing the valid ones and the closest."""
    if name not in _NETS:
        raise unknown_name_error("net", name, _NETS)
    return _NETS[name](pretrained=pretrained, **kwargs)


def list_nets(pattern: str = "*") -> list[str]:
    return sorted(n for n in _NETS if fnmatch.fnmatch(n, pattern))


def is_net(name: str) -> bool:
    return name in _NETS
