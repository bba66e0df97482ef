"""Architectures, registered by name; every net exposes forward_features / forward_head / get_classifier /
target_layer. No module list: the registry imports every public module here (and ``vitalens.nets`` plug-ins)."""

from __future__ import annotations

from vitalens.nets._registry import NETS, create_net, is_net, list_nets, register_net

__all__ = ["NETS", "create_net", "is_net", "list_nets", "register_net"]
