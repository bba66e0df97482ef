"""The analyzer registry (timm ``register_model`` style) with explicit dotted names stored in DB rows.

Why explicit names: ``fundus.odir`` is written into analyses and findings; renaming a Python class must not
orphan stored results. Registration records the analyzer's :class:`~vitalens.analyzers._contract.AnalyzerContract`
(title, slots, dataset adapter, render blocks, quality gates), which every surface reads. Discovery is the shared
:class:`vitalens._registry.Registry`: every public module under ``vitalens.analyzers`` and every entry point of
the ``vitalens.analyzers`` group is imported on first lookup; a module that fails to import is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitalens._registry import ENTRY_POINT_GROUPS, Registry
from vitalens.analyzers._contract import RESERVED_ALIAS_FIELDS, Alias, AnalyzerContract, Block, SlotUse
from vitalens.errors import RegistryError
from vitalens.slots import SlotLimits, get_slot

if TYPE_CHECKING:
    from vitalens.analyzers._base import Analyzer

__all__ = [
    "ANALYZERS",
    "AnalyzerSpec",
    "AnalyzerContract",
    "register_analyzer",
    "create_analyzer",
    "list_analyzers",
    "is_analyzer",
    "get_spec",
    "get_contract",
    "list_aliases",
    "resolve_alias",
]

#: An alias is one lowercase word (a path segment and a command name), so it can never be a dotted analyzer name.
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

#: Kept for callers that say "spec": it is the contract.
AnalyzerSpec = AnalyzerContract

#: Every registered analyzer's contract, by name.
ANALYZERS: Registry[AnalyzerContract] = Registry(
    "analyzer", packages=("vitalens.analyzers",), group=ENTRY_POINT_GROUPS["analyzer"]
)


def _uses(
    inputs: Sequence[str],
    optional_inputs: Sequence[str],
    any_of: Sequence[Sequence[str]],
    limits: Mapping[str, SlotLimits],
) -> tuple[SlotUse, ...]:
    uses: list[SlotUse] = [SlotUse(str(s), limits=limits.get(str(s))) for s in inputs]
    for i, group in enumerate(any_of):
        uses += [SlotUse(str(s), any_of=f"group{i + 1}", limits=limits.get(str(s))) for s in group]
    uses += [SlotUse(str(s), required=False, limits=limits.get(str(s))) for s in optional_inputs]
    return tuple(uses)


def register_analyzer(
    name: str,
    *,
    modality: str,
    inputs: Sequence[str] = (),
    optional_inputs: Sequence[str] = (),
    any_of: Sequence[Sequence[str]] = (),
    limits: Mapping[str, SlotLimits] | None = None,
    uses: Sequence[SlotUse] | None = None,
    title: str | None = None,
    default_artifact: str | None = None,
    dataset: str | None = None,
    no_export_reason: str | None = None,
    render: Iterable[Block] = (),
    quality_gates: Mapping[str, Sequence[str]] | None = None,
    labels: Iterable[tuple[str, str]] = (),
    description: str = "",
    train_command: str | None = None,
    tags: Sequence[str] = (),
    aliases: Sequence[Alias | str] = (),
    companions: Sequence[str] = (),
) -> Callable[[type[Analyzer]], type[Analyzer]]:
    """Class decorator registering an analyzer and its contract under a dotted ``name``.

    Args:
        name: the dotted name (``oct.kermany4``); a duplicate name is an error.
        modality: what it screens (``fundus``, ``oct``, ``ecg``, ``cxr``, ``text``...).
        inputs: slots that must all be present.
        optional_inputs: slots read when present.
        any_of: groups of slots of which at least one must be present (the analyzer runs on each present).
        limits: slot → this analyzer's limits on top of the slot's (``{"fundus_left": ImageLimits(min_side=128)}``).
        uses: the full :class:`SlotUse` list instead of ``inputs``/``optional_inputs``/``any_of``/``limits``.
        title: the clinician's section title ("Eyes → heart"); default: the name.
        default_artifact: folder of the bundled model under ``models/`` (``None``: no model needed).
        dataset: name of the dataset adapter that reads and writes its data (``odir``, ``ptbxl``...).
        no_export_reason: why its reviewed studies cannot be exported and trained on (no adapter, or a writer
            that needs what a review does not hold); the feedback export and the round-trip test read it.
        render: the render blocks (:mod:`vitalens.analyzers._contract`); default :func:`default_render`.
        quality_gates: slot → quality gate names run before the analyzer.
        labels: (code, name) pairs for when no card is at hand.
        description: one line; default the class docstring's first line.
        train_command: how to make its model when none is bundled.
        tags: free-form tags.
        aliases: short names (:class:`~vitalens.analyzers._contract.Alias`, or a plain name for the full-name
            form): each gets ``POST /api/v1/predict/<alias>`` and ``vitalens analyze <alias>``.
        companions: analyzers run alongside on the same inputs by the aliases (their measurements are added).

    Example:
        >>> @register_analyzer("oct.kermany4", modality="oct", inputs=("oct",), title="OCT B-scan",
        ...                    default_artifact="oct-kermany4", dataset="kermany")  # doctest: +SKIP
        ... class OctKermany4(Analyzer): ...
    """

    def decorator(cls: type[Analyzer]) -> type[Analyzer]:
        slot_uses = tuple(uses) if uses is not None else _uses(inputs, optional_inputs, any_of, limits or {})
        for use in slot_uses:
            spec = get_slot(use.slot)  # unknown slots fail here, at import, naming the valid ones
            spec.limits_with(use.limits)  # limits of the wrong kind fail here too
        gates = {str(k): tuple(v) for k, v in (quality_gates or {}).items()}
        unknown = [k for k in gates if k not in {u.slot for u in slot_uses}]
        if unknown:
            raise ValueError(f"analyzer '{name}': quality gates for slots it does not read: {unknown}")
        short = tuple(a if isinstance(a, Alias) else Alias(str(a)) for a in aliases)
        _check_aliases(name, short, slot_uses, tuple(companions))
        contract = AnalyzerContract(
            name=name,
            cls=cls,
            title=title or name,
            modality=str(modality),
            uses=slot_uses,
            default_artifact=default_artifact,
            dataset=dataset,
            no_export_reason=no_export_reason,
            render=tuple(render),
            quality_gates=gates,
            labels=tuple((str(c), str(n)) for c, n in labels),
            description=description or _first_line(cls.__doc__),
            train_command=train_command,
            tags=tuple(tags),
            aliases=short,
            companions=tuple(str(c) for c in companions),
        )
        ANALYZERS.register(name, contract)
        cls.spec = contract
        return cls

    return decorator


def _check_aliases(
    name: str, aliases: tuple[Alias, ...], uses: tuple[SlotUse, ...], companions: tuple[str, ...]
) -> None:
    """At import, so that a bad declaration names its analyzer: alias names, each field's slot or hint, one
    positional argument at most, no field taking a reserved name, no companion naming the analyzer itself."""
    slots = {u.slot for u in uses}
    seen: set[str] = set()
    for alias in aliases:
        if not _ALIAS_NAME.match(alias.name):
            raise ValueError(f"analyzer '{name}': alias {alias.name!r} must be one lowercase word (a-z, 0-9, _, -)")
        if alias.name in seen:
            raise ValueError(f"analyzer '{name}': alias {alias.name!r} declared twice")
        seen.add(alias.name)
        fields = alias.fields_for(uses)
        names = [f.name for f in fields]
        options = [f.cli_option for f in fields]
        for f in fields:
            if f.slot not in slots:
                raise ValueError(
                    f"analyzer '{name}': alias {alias.name!r} field {f.name!r} fills {f.slot!r}, a slot "
                    f"it does not read ({', '.join(sorted(slots))})"
                )
            if f.hint is not None:
                get_slot(f.slot).hint(f.hint)  # an unknown hint fails here, naming the valid ones
            if f.name in RESERVED_ALIAS_FIELDS or f.cli_option.removeprefix("--") in RESERVED_ALIAS_FIELDS:
                raise ValueError(
                    f"analyzer '{name}': alias {alias.name!r} field {f.name!r} takes a reserved name "
                    f"({', '.join(sorted(RESERVED_ALIAS_FIELDS))})"
                )
        if options.count("") > 1:
            raise ValueError(f"analyzer '{name}': alias {alias.name!r} has more than one positional argument")
        named = [o for o in options if o]
        duplicated = sorted({n for n in names if names.count(n) > 1} | {o for o in named if named.count(o) > 1})
        if duplicated:
            raise ValueError(f"analyzer '{name}': alias {alias.name!r} repeats {duplicated}")
    if name in companions:
        raise ValueError(f"analyzer '{name}' cannot be its own companion")


def list_aliases() -> dict[str, AnalyzerContract]:
    """Every registered analyzer's short names: alias → the analyzer's contract, sorted by alias.

    Raises:
        RegistryError: two analyzers declare the same alias, or an alias is an analyzer's name, or a companion is
            not a registered analyzer (naming both sides).
    """
    found: dict[str, AnalyzerContract] = {}
    for analyzer, contract in ANALYZERS.items():
        for alias in contract.aliases:
            if alias.name in found:
                raise RegistryError(f"alias '{alias.name}' is declared by both {found[alias.name].name} and {analyzer}")
            if alias.name in ANALYZERS:
                raise RegistryError(f"alias '{alias.name}' of {analyzer} is the name of an analyzer")
            found[alias.name] = contract
        for companion in contract.companions:
            if companion not in ANALYZERS:
                raise RegistryError(f"companion '{companion}' of {analyzer} is not a registered analyzer")
    return dict(sorted(found.items()))


def resolve_alias(name: str) -> tuple[AnalyzerContract, Alias] | None:
    """(the contract, its alias) for a short name; ``None`` when ``name`` is no alias."""
    contract = list_aliases().get(name)
    if contract is None:
        return None
    alias = contract.alias(name)
    return None if alias is None else (contract, alias)


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def get_contract(name: str) -> AnalyzerContract:
    """The contract of analyzer ``name``; unknown names fail with the valid ones and the closest match."""
    return ANALYZERS.get(name)


get_spec = get_contract


def create_analyzer(name: str, *, artifact: Path | str | None = None, **kwargs: Any) -> Analyzer:
    """Instantiate analyzer ``name`` on ``artifact`` (a folder) or its default bundled artifact.

    Example:
        >>> from vitalens.analyzers import create_analyzer
        >>> analyzer = create_analyzer("fundus.odir")  # doctest: +SKIP
    """
    contract = get_contract(name)
    return contract.cls(artifact=Path(artifact) if artifact is not None else None, **kwargs)


def list_analyzers(pattern: str = "*") -> list[str]:
    """Registered analyzer names matching a glob (``"fundus.*"``), sorted."""
    return ANALYZERS.names(pattern)


def is_analyzer(name: str) -> bool:
    return name in ANALYZERS
