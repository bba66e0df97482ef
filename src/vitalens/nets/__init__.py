"""Architectures, registered by name; every net exposes forward_features / forward_head / get_classifier."""

from __future__ import annotations

import importlib

from vitalens.nets._registry import create_net, is_net, list_nets, register_net

__all__ = ["create_net", "is_net", "list_nets", "register_net"]

_NET_MODULES = ("vitalens.nets.bilateral", "vitalens.nets.resnet1d", "vitalens.nets.unet")

for _module in _NET_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if not (exc.name and exc.name.startswith("vitalens.nets.")):
            raise
