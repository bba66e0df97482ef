"""The Analyzer base: declares inputs, resolves and lazily loads its artifact, checks inputs, analyses.

Why a base: every analyzer shares artifact resolution, the model cache and the input-presence check, so a new
task is only its preprocessing, its forward pass and its result.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vitalens.artifacts import ModelCache, ModelCard, load_model, verify_artifact
from vitalens.config import get_settings
from vitalens.domain import AnalysisResult, StudyInputs
from vitalens.errors import ArtifactError, InputError

if TYPE_CHECKING:
    import torch

    from vitalens.analyzers._registry import AnalyzerSpec

__all__ = ["Analyzer", "default_model_cache"]

logger = logging.getLogger(__name__)

_default_cache: ModelCache[Any] | None = None
_default_cache_lock = threading.Lock()


def default_model_cache() -> ModelCache[Any]:
    """The process's model cache (one per worker process), sized by ``VITALENS_MODEL_CACHE_MB``."""
    global _default_cache
    with _default_cache_lock:
        if _default_cache is None:
            _default_cache = ModelCache(budget_bytes=get_settings().model_cache_mb * 1024 * 1024)
        return _default_cache


#: One lock per (analyzer, artifact, device): nets are shared through the model cache and explainers hook them.
_call_locks: dict[tuple[str, str, str], threading.Lock] = {}


def _call_lock(key: tuple[str, str, str]) -> threading.Lock:
    with _default_cache_lock:
        return _call_locks.setdefault(key, threading.Lock())


class Analyzer(ABC):
    """One medical capability. Subclasses are registered with ``@register_analyzer``.

    Args:
        artifact: folder of the model artifact; ``None`` uses ``<models_dir>/<spec.default_artifact>``.
        device: torch device for inference.
        cache: the model cache shared by analyzers of this process.
    """

    spec: ClassVar[AnalyzerSpec]

    def __init__(
        self,
        artifact: Path | None = None,
        *,
        device: str | None = None,
        cache: ModelCache[Any] | None = None,
        models_dir: Path | None = None,
    ) -> None:
        settings = get_settings()
        self.device = device or settings.device
        if self.device == "auto":
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.cache = cache if cache is not None else default_model_cache()
        if artifact is None and self.spec.default_artifact is not None:
            artifact = Path(models_dir or settings.models_dir) / self.spec.default_artifact
        self.artifact = artifact
        self._card: ModelCard | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def card(self) -> ModelCard:
        """The verified card (hashes and analyzer name checked once per instance)."""
        if self._card is None:
            if self.artifact is None:
                raise ArtifactError(f"analyzer {self.name} has no model artifact")
            self._card = verify_artifact(self.artifact, expected_analyzer=self.name)
        return self._card

    def model(self) -> torch.nn.Module:
        """The net, loaded once per process and kept by the LRU cache."""
        if self.artifact is None:
            raise ArtifactError(f"analyzer {self.name} has no model artifact")
        key = (self.name, str(Path(self.artifact).resolve()), self.device)

        def _load() -> torch.nn.Module:
            net, card = load_model(self.artifact, expected_analyzer=self.name, device=self.device)  # type: ignore[arg-type]
            self._card = card
            return net

        return self.cache.get(key, _load)

    def check_inputs(self, inputs: StudyInputs) -> None:
        """Raise ``InputError`` naming every required input the study lacks."""
        missing = [str(n) for n in self.spec.inputs if not inputs.has(n)]
        if missing:
            needed = ", ".join(str(n) for n in self.spec.inputs)
            raise InputError(f"{self.name} needs {needed}; missing: {', '.join(missing)}", field=missing[0])

    def applies_to(self, inputs: StudyInputs) -> bool:
        """True when the study holds every input this analyzer needs."""
        return all(inputs.has(n) for n in self.spec.inputs)

    def __call__(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        self.check_inputs(inputs)
        # One call at a time per model: Grad-CAM registers hooks on the shared net, and two threads explaining
        # (or one forwarding while another explains) corrupt each other's activations or crash the process.
        with _call_lock((self.name, str(self.artifact), str(self.device))):
            return self.analyze(inputs, explain=explain)

    @abstractmethod
    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        """Turn validated inputs into a result; ``explain`` adds saliency maps for positive findings."""

    def base_result(self, **fields: Any) -> AnalysisResult:
        """An ``AnalysisResult`` pre-filled with the model identity, card summary and provenance."""
        card = self.card
        return AnalysisResult(
            analyzer=self.name,
            model=card.model_info(),
            card=card.summary(),
            trained_on=card.trained_on,
            demonstration=card.demonstration,
            **fields,
        )
