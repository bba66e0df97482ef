"""Analyzers: one module per medical task, registered by dotted name with its contract.

No module list: the registry imports every public module of this package (and every ``vitalens.analyzers``
entry point of installed plug-ins) on first lookup; a module that fails to import is an error naming it.
"""

from __future__ import annotations

from vitalens.analyzers._base import Analyzer, Availability, default_model_cache
from vitalens.analyzers._contract import (
    Alias,
    AliasField,
    AnalyzerContract,
    Block,
    Classes,
    EcgAttribution,
    Entities,
    Findings,
    Measurements,
    Narrative,
    Overlays,
    Scores,
    SlotUse,
    Summary,
    Table,
    ThreePanel,
    default_render,
)
from vitalens.analyzers._registry import (
    ANALYZERS,
    AnalyzerSpec,
    create_analyzer,
    get_contract,
    get_spec,
    is_analyzer,
    list_aliases,
    list_analyzers,
    register_analyzer,
    resolve_alias,
)

__all__ = [
    "ANALYZERS",
    "Alias",
    "AliasField",
    "Analyzer",
    "AnalyzerContract",
    "AnalyzerSpec",
    "Availability",
    "Block",
    "Classes",
    "EcgAttribution",
    "Entities",
    "Findings",
    "Measurements",
    "Narrative",
    "Overlays",
    "Scores",
    "SlotUse",
    "Summary",
    "Table",
    "ThreePanel",
    "create_analyzer",
    "default_model_cache",
    "default_render",
    "get_contract",
    "get_spec",
    "is_analyzer",
    "list_aliases",
    "list_analyzers",
    "register_analyzer",
    "resolve_alias",
]
