"""The Analyzer base: resolves and lazily loads its artifact, checks inputs against its contract, runs its
quality gates, analyses.

Why a base: every analyzer shares artifact resolution, the model cache, the input checks (presence and limits from
the contract, tightened by the card) and the quality-gate hook, so a new task is only its preprocessing, its
forward pass and its result.

The forward pass (:meth:`Analyzer.forward_outputs`) runs on ONNX Runtime when the artifact holds a verified
``model.onnx`` (listed in the card, so its sha256 was checked), onnxruntime is installed and the device is the CPU;
else on PyTorch. :attr:`Analyzer.backend` says which, for the result's ``extras["backend"]``. Explanations that need
gradients (Grad-CAM) always use the PyTorch net.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vitalens.artifacts import ModelCache, ModelCard, load_model, verify_artifact
from vitalens.config import get_settings
from vitalens.domain import AnalysisResult, ModelInfo, QualityResult, QualityVerdict, StudyInputs
from vitalens.errors import ArtifactError, InputError, QualityRefusal

if TYPE_CHECKING:
    import torch

    from vitalens.analyzers._contract import AnalyzerContract
    from vitalens.slots import SlotLimits

__all__ = ["Analyzer", "Availability", "default_model_cache"]

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


@dataclass(frozen=True)
class Availability:
    """Whether an analyzer can run here: ``ready``, or why not (no bundled model, and how to make one)."""

    ready: bool
    reason: str = ""


class Analyzer(ABC):
    """One medical capability. Subclasses are registered with ``@register_analyzer`` (which sets ``spec``).

    Args:
        artifact: folder of the model artifact; ``None`` uses ``<models_dir>/<spec.default_artifact>``.
        device: torch device for inference.
        cache: the model cache shared by analyzers of this process.

    Hooks a subclass may override: :meth:`slot_limits` (limits from the card), :meth:`validate_input` (checks no
    limit can express), :meth:`model_info` (analyzers without a model card).
    """

    spec: ClassVar[AnalyzerContract]

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
    def contract(self) -> AnalyzerContract:
        return self.spec

    def availability(self) -> Availability:
        """``ready`` when the analyzer needs no model or its artifact folder holds a card; else why not."""
        if self.spec.default_artifact is None and self.artifact is None:
            return Availability(True)
        if self.artifact is not None and (Path(self.artifact) / "card.json").is_file():
            return Availability(True)
        how = f" Train one with `{self.spec.train_command}`." if self.spec.train_command else ""
        return Availability(False, f"no bundled model for {self.name} (looked in {self.artifact}).{how}")

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

    def _ort_session(self) -> Any | None:
        """An ONNX Runtime session on the artifact's verified ``model.onnx``, or None (then PyTorch runs)."""
        from vitalens.artifacts import ONNX_FILE

        if self.artifact is None or not (Path(self.artifact) / "card.json").is_file():
            return None
        if ONNX_FILE not in self.card.files:
            return None
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        key = str((Path(self.artifact) / ONNX_FILE).resolve())
        with _ORT_LOCK:
            session = _ORT_SESSIONS.get(key)
            if session is None:
                options = ort.SessionOptions()
                options.log_severity_level = 3
                session = ort.InferenceSession(key, options, providers=["CPUExecutionProvider"])
                _ORT_SESSIONS[key] = session
        return session

    def onnx_session(self) -> Any | None:
        """The ONNX Runtime session the forward pass uses here, or None where PyTorch runs it (no verified
        ``model.onnx``, no onnxruntime, or a device other than the CPU)."""
        return self._ort_session() if str(self.device) == "cpu" else None

    @property
    def backend(self) -> str:
        """``onnxruntime`` or ``pytorch``: what :meth:`forward_outputs` runs on here."""
        return "onnxruntime" if self.onnx_session() is not None else "pytorch"

    def forward_outputs(self, *inputs: torch.Tensor | np.ndarray) -> np.ndarray:
        """The net's raw output (float32 numpy) for ``inputs`` in ``forward`` order, on :attr:`backend`.

        ONNX Runtime gets the inputs by the graph's input order (the net's ``onnx_signature``, which follows its
        ``forward``), so the same call serves single- and multi-input nets.
        """
        session = self.onnx_session()
        if session is not None:
            arrays = [_as_float32(x) for x in inputs]
            names = [i.name for i in session.get_inputs()]
            if len(names) != len(arrays):
                raise ArtifactError(f"{self.name}: model.onnx takes {len(names)} inputs, got {len(arrays)}")
            return np.asarray(session.run(None, dict(zip(names, arrays, strict=True)))[0], dtype=np.float32)
        import torch

        net = self.model()
        tensors = [torch.as_tensor(x).to(self.device) for x in inputs]
        with torch.inference_mode():
            return np.asarray(net(*tensors).float().cpu().numpy(), dtype=np.float32)

    def labels(self) -> list[tuple[str, str]]:
        """(code, name) of each output label: the card's when a card exists, else the contract's."""
        if self.artifact is not None and (Path(self.artifact) / "card.json").is_file():
            card = self.card
            return [(code, card.name_of(code)) for code in card.labels]
        return list(self.spec.labels)

    def model_info(self) -> ModelInfo:
        """Which model produces the results (from the card; analyzers without a model override this)."""
        return self.card.model_info()

    # -- inputs -------------------------------------------------------------------------------------------
    def slot_limits(self, slot: str) -> SlotLimits:
        """The limits a value of ``slot`` must meet here: the contract's; override to tighten from the card."""
        return self.spec.limits_for(slot)

    def validate_input(self, slot: str, value: Any) -> None:
        """Raise ``InputError(field=slot)`` when ``value`` cannot be analysed by this analyzer.

        The same check runs at upload time (so nothing is stored that the analyzer would refuse) and before
        ``analyze``. Override to add checks no limit expresses, calling ``super().validate_input`` first.
        """
        from vitalens.slots import get_slot

        get_slot(slot).limits_with(None)  # an unknown slot fails with the valid names
        self.slot_limits(slot).check(value, field=slot)

    def check_inputs(self, inputs: StudyInputs) -> None:
        """Raise ``InputError`` naming what the study lacks, then the first value outside the limits."""
        present = inputs.present()
        missing = self.spec.missing(present)
        if missing:
            raise InputError(
                f"{self.name} needs {self.spec.requirement_text()}; missing: {', '.join(missing)}",
                field=missing[0].split(" or ")[0],
            )
        for slot in self.spec.slots:
            value = inputs.get(slot)
            if value is not None:
                self.validate_input(slot, value)

    def applies_to(self, inputs: StudyInputs) -> bool:
        """True when the study holds every input this analyzer needs."""
        return self.spec.applies_to(inputs.present())

    def quality(self, inputs: StudyInputs) -> list[QualityResult]:
        """Run the contract's quality gates on the slots present (in contract order)."""
        from vitalens.quality import run_gate

        results = []
        for slot, gates in self.spec.quality_gates.items():
            value = inputs.get(slot)
            if value is None:
                continue
            results += [run_gate(gate, value, slot=slot, analyzer=self) for gate in gates]
        return results

    def __call__(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        """Check the inputs, run the quality gates, analyse; a refusing gate raises ``QualityRefusal``."""
        self.check_inputs(inputs)
        verdicts = self.quality(inputs)
        refusal = next((q for q in verdicts if q.verdict == QualityVerdict.REFUSE), None)
        if refusal is not None:
            raise QualityRefusal(f"refused by the quality gate {refusal.gate}: {refusal.message}", field=refusal.slot)
        # One call at a time per model: Grad-CAM registers hooks on the shared net, and two threads explaining
        # (or one forwarding while another explains) corrupt each other's activations or crash the process.
        with _call_lock((self.name, str(self.artifact), str(self.device))):
            result = self.analyze(inputs, explain=explain)
        if verdicts:
            result.quality.extend(verdicts)
            result.warnings.extend(
                f"input quality ({q.slot}, {q.gate}): {q.message}" for q in verdicts if q.verdict == QualityVerdict.FLAG
            )
        return result

    @abstractmethod
    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        """Turn validated inputs into a result; ``explain`` adds saliency maps for positive findings."""

    def base_result(self, **fields: Any) -> AnalysisResult:
        """An ``AnalysisResult`` pre-filled with the model identity, card summary and provenance."""
        card = self.card
        return AnalysisResult(
            analyzer=self.name,
            model=self.model_info(),
            card=card.summary(),
            trained_on=card.trained_on,
            demonstration=card.demonstration,
            **fields,
        )


def _as_float32(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


_ORT_SESSIONS: dict[str, Any] = {}
_ORT_LOCK = threading.Lock()
