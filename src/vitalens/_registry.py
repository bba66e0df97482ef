"""One registry implementation for every named plug-in kind: analyzers, nets, training tasks, dataset adapters,
input slots and quality gates (timm ``register_model`` / MONAI ``look_up_option`` style).

Why one: the three registries this replaced handled a failed import three different ways (one swallowed it, so
an analyzer could silently vanish). Here every kind behaves the same:

* things **register where they are defined** (a decorator in their own module), by an explicit dotted name that
  is safe to store in database rows;
* a registry **discovers** its members on first lookup by importing every public module under its packages
  (``pkgutil.walk_packages``; modules whose name starts with ``_`` are infrastructure and skipped) and by loading
  every entry point of its group (``vitalens.analyzers``, ``vitalens.nets``, ...), so an installed plug-in
  package adds members with no edit here and no hand-kept module list anywhere;
* a module or entry point that fails to import raises :class:`~vitalens.errors.RegistryError` naming it — never a
  silently missing member;
* a duplicate name is an error, and an unknown name fails with the valid names and the closest match
  (:func:`vitalens._naming.unknown_name_error`).

Example:
    >>> from vitalens._registry import Registry
    >>> colours = Registry[str]("colour")
    >>> colours.register("red", "#f00")
    '#f00'
    >>> colours.get("rde")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    UnknownNameError: Unknown colour 'rde'. Did you mean 'red'? Valid: red
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Generic, TypeVar

from vitalens._naming import unknown_name_error
from vitalens.errors import RegistryError

__all__ = ["Registry", "ENTRY_POINT_GROUPS"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The entry-point groups a plug-in distribution may declare (``[project.entry-points."vitalens.analyzers"]``).
#: The value of an entry point is a module (importing it registers) or an object (loading it registers).
ENTRY_POINT_GROUPS: dict[str, str] = {
    "analyzer": "vitalens.analyzers",
    "net": "vitalens.nets",
    "training task": "vitalens.tasks",
    "dataset adapter": "vitalens.datasets",
    "quality gate": "vitalens.quality_gates",
}

#: One lock for all discovery: one registry's modules may register into another (an analyzer module registering
#: its input slot), so two registries discovering on two threads must not interleave.
_DISCOVERY_LOCK = threading.RLock()


class Registry(Generic[T]):
    """Named members of one ``kind``, discovered from ``packages`` and the entry-point ``group``.

    Args:
        kind: what the members are, for messages ("analyzer", "net", ...).
        packages: dotted packages whose public modules are imported on first lookup (recursively).
        group: the entry-point group of plug-ins; ``None`` for none.
        after: zero-argument callables run before this registry discovers (e.g. the slot registry first
            discovers the analyzers, whose modules define slots).
    """

    def __init__(
        self,
        kind: str,
        *,
        packages: Sequence[str] = (),
        group: str | None = None,
        after: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.kind = kind
        self.packages = tuple(packages)
        self.group = group
        self.after = tuple(after)
        self._items: dict[str, T] = {}
        self._discovered = False
        self._discovering = False

    # -- registration ---------------------------------------------------------------------------------------
    def register(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name``; a name already taken raises ``ValueError`` naming the holder."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty string without surrounding spaces, got {name!r}")
        with _DISCOVERY_LOCK:
            if name in self._items:
                holder = self._items[name]
                where = getattr(holder, "__module__", None) or type(holder).__module__
                raise ValueError(f"{self.kind} '{name}' is already registered (by {where})")
            self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")``: register the decorated object and return it unchanged."""

        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def unregister(self, name: str) -> T:
        """Remove ``name`` (for test fixtures that register a fake and must not leak it)."""
        with _DISCOVERY_LOCK:
            if name not in self._items:
                raise unknown_name_error(self.kind, name, self._items)
            return self._items.pop(name)

    @contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` for the duration of a ``with`` block (test fakes)."""
        self.register(name, obj)
        try:
            yield obj
        finally:
            with _DISCOVERY_LOCK:
                if self._items.get(name) is obj:
                    del self._items[name]

    # -- lookup ---------------------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The member ``name``; unknown names raise ``UnknownNameError`` with the valid ones and the closest."""
        if name not in self._items:
            self.discover()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown_name_error(self.kind, str(name), self._items) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a glob (``"fundus.*"``), sorted."""
        self.discover()
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def items(self) -> list[tuple[str, T]]:
        self.discover()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self.discover()
        return name in self._items

    def __len__(self) -> int:
        self.discover()
        return len(self._items)

    # -- discovery ------------------------------------------------------------------------------------------
    def discover(self) -> None:
        """Import every public module of the packages and load every entry point of the group (once).

        Raises:
            RegistryError: a module or entry point failed to import (its name and the cause are in the message).
        """
        if self._discovered:
            return
        with _DISCOVERY_LOCK:  # re-entrant: a module imported here may look things up (it sees a partial registry)
            if self._discovered or self._discovering:
                return
            self._discovering = True
            try:
                for before in self.after:
                    before()
                for package in self.packages:
                    for module in _public_modules(package, self.kind):
                        _import(module, self.kind)
                if self.group:
                    self._load_entry_points()
                self._discovered = True
            finally:
                self._discovering = False

    def _load_entry_points(self) -> None:
        if self.group is None:  # explicit, not ``assert``: the check must survive ``python -O``
            return
        for ep in sorted(metadata.entry_points(group=self.group), key=lambda e: e.name):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
            try:
                loaded = ep.load()
            except Exception as exc:
                raise RegistryError(
                    f"{self.kind} plug-in '{ep.name}' ({ep.value}, from {dist}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            logger.debug("loaded %s plug-in %s = %s (%r)", self.kind, ep.name, ep.value, loaded)


def _public_modules(package: str, kind: str) -> list[str]:
    """Dotted names of ``package``'s public modules and subpackages, recursively (``_private`` ones skipped)."""
    pkg = _import(package, kind)
    paths = getattr(pkg, "__path__", None)
    if paths is None:
        return []
    found = []
    for info in pkgutil.iter_modules(paths, prefix=f"{package}."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_"):
            continue
        found.append(info.name)
        if info.ispkg:
            found.extend(_public_modules(info.name, kind))
    return sorted(found)


def _import(module: str, kind: str) -> object:
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise RegistryError(
            f"{kind} module '{module}' failed to import: {type(exc).__name__}: {exc}. "
            "Fix or remove the module; an optional dependency must be imported inside the function that needs it."
        ) from exc
