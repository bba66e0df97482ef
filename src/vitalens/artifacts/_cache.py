"""A least-recently-used cache of loaded models under a memory budget.

Why: a worker serving several analyzers must not load a model per request (slow) nor keep every model
resident (memory); it keeps the recently used ones that fit the budget and evicts the oldest.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["ModelCache", "module_nbytes"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def module_nbytes(obj: Any) -> int:
    """Bytes held by a torch module's parameters and buffers (0 for anything without them)."""
    total = 0
    for attr in ("parameters", "buffers"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            total += sum(int(t.numel()) * int(t.element_size()) for t in fn())
    return total


class ModelCache(Generic[T]):
    """Thread-safe LRU keyed by artifact, bounded by total bytes.

    Args:
        budget_bytes: the most bytes the cached entries may hold together. An entry larger than the whole
            budget is still returned but not kept.
        sizeof: how to measure an entry (default: torch parameter + buffer bytes).

    Example:
        >>> cache = ModelCache(budget_bytes=10, sizeof=len)
        >>> cache.get("a", lambda: "xxxxxx")
        'xxxxxx'
    """

    def __init__(self, budget_bytes: int, sizeof: Callable[[T], int] = module_nbytes) -> None:
        if budget_bytes <= 0:
            raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0
        self.evictions = 0

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def get(self, key: Hashable, loader: Callable[[], T]) -> T:
        """Return the cached entry for ``key``, loading (and possibly evicting others) on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
            value = loader()
            self.loads += 1
            size = int(self._sizeof(value))
            if size > self.budget_bytes:
                logger.warning(
                    "model %s (%d B) exceeds the cache budget (%d B); not cached", key, size, self.budget_bytes
                )
                return value
            while self._entries and self.nbytes + size > self.budget_bytes:
                old_key, _ = self._entries.popitem(last=False)
                self.evictions += 1
                logger.info("evicted model %s from the cache", old_key)
            self._entries[key] = (value, size)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
