"""Analyzers: one module per medical task, registered by dotted name.

Importing this package imports every analyzer module, which fills the registry.
"""

from __future__ import annotations

import importlib
import logging

from vitalens.analyzers._base import Analyzer, default_model_cache
from vitalens.analyzers._registry import (
    AnalyzerSpec,
    create_analyzer,
    get_spec,
    is_analyzer,
    list_analyzers,
    register_analyzer,
)

__all__ = [
    "Analyzer",
    "AnalyzerSpec",
    "create_analyzer",
    "default_model_cache",
    "get_spec",
    "is_analyzer",
    "list_analyzers",
    "register_analyzer",
]

logger = logging.getLogger(__name__)

#: Every analyzer module; adding a task adds one line here.
_ANALYZER_MODULES = (
    "vitalens.analyzers.fundus_odir",
    "vitalens.analyzers.ecg_ptbxl",
    "vitalens.analyzers.ecg_intervals",
)

for _module in _ANALYZER_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # a module not written yet, or an optional extra not installed
        if exc.name and exc.name.startswith("vitalens.analyzers."):
            logger.debug("analyzer module %s not present", _module)
        else:
            logger.warning("analyzer module %s unavailable: %s", _module, exc)
