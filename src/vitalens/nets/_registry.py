"""Net registry (timm style): variants are registered functions passing argument sets to one builder.

Why: model cards name a net and its kwargs; loading an artifact must rebuild exactly that net by name. Discovery is
the shared :class:`vitalens._registry.Registry`: every public module of ``vitalens.nets`` and every entry point of
the ``vitalens.nets`` group is imported on first lookup; a module that fails to import is an error naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vitalens._registry import ENTRY_POINT_GROUPS, Registry

__all__ = ["NETS", "register_net", "create_net", "list_nets", "is_net"]

logger = logging.getLogger(__name__)

#: Every registered net builder ``fn(pretrained: bool | str = False, **kwargs) -> nn.Module``.
NETS: Registry[Callable[..., Any]] = Registry("net", packages=("vitalens.nets",), group=ENTRY_POINT_GROUPS["net"])


def register_net(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a net builder ``fn(pretrained: bool | str = False, **kwargs) -> nn.Module`` under ``name``."""
    return NETS.decorator(name)


def create_net(name: str, pretrained: bool | str = False, **kwargs: Any) -> Any:
    """Build the registered net ``name``; unknown names fail listing the valid ones and the closest."""
    return NETS.get(name)(pretrained=pretrained, **kwargs)


def list_nets(pattern: str = "*") -> list[str]:
    return NETS.names(pattern)


def is_net(name: str) -> bool:
    return name in NETS
