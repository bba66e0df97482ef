"""The process's analyzer registry: one analyzer instance per name, models shared through one LRU cache.

Why: a model must be loaded once per process (API replica or worker) and kept only while it fits the memory
budget; handlers get analyzers from here (``RegistryDep``), never build them per request.
"""

from __future__ import annotations

import threading
from typing import Any

from vitalens.artifacts import ModelCache
from vitalens.config import Settings

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """Lazily creates analyzers for ``settings`` and shares their model cache."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache: ModelCache[Any] = ModelCache(budget_bytes=settings.model_cache_mb * 1024 * 1024)
        self._analyzers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The analyzer ``name`` (created on first use); unknown names raise ``UnknownNameError``."""
        from vitalens.analyzers import create_analyzer

        with self._lock:
            if name not in self._analyzers:
                self._analyzers[name] = create_analyzer(
                    name, cache=self.cache, device=self.settings.device, models_dir=self.settings.models_dir
                )
            return self._analyzers[name]

    def names(self) -> list[str]:
        from vitalens.analyzers import list_analyzers

        return list_analyzers()
