"""Stateless predictions (nothing stored): decode the uploaded slots of one analyzer, run it under the predict
gate, lay the result out by its contract.

Why in ``service/ops``: ``POST /api/v1/predict/{analyzer}`` and its old aliases call these functions (no FastAPI
here), and ``vitalens analyze`` returns the same document (:func:`vitalens.analyzers._document.result_document`).

Why a gate: a prediction and a clinical job share the analyzer's model and its call lock (one call at a time per
model: explainers hook the net). Unbounded predict traffic would queue on that lock in front of the jobs; the gate
admits at most ``settings.predict_concurrency`` predictions at once per process and answers the rest at once with
"busy" (HTTP 503 + ``Retry-After``), so a job waits for at most that many predictions, never for a queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from vitalens.errors import InputError

__all__ = [
    "RawInput",
    "PredictGate",
    "PredictBusy",
    "decode_inputs",
    "predict",
    "result_document",
    "with_companions",
    "attribution_summary",
    "alias_inputs",
    "run_companions",
    "alias_answer",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawInput:
    """One slot's value as sent: a file's bytes (or a form field's text), the client's file name, its hints."""

    data: bytes | str
    filename: str = ""
    hints: Mapping[str, str] = field(default_factory=dict)


class PredictBusy(Exception):
    """Every predict slot of this process is taken; retry after ``retry_after_s`` seconds."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"the prediction service is busy ({limit} prediction(s) at a time on this server, so that clinical "
            f"analyses sharing the models are not delayed); retry in {retry_after_s} s"
        )
        self.limit = limit
        self.retry_after_s = retry_after_s


class PredictGate:
    """At most ``limit`` predictions at once; one more is refused at once (:class:`PredictBusy`), never queued.

    Example:
        >>> gate = PredictGate(1, retry_after_s=5)
        >>> with gate.slot():
        ...     gate.in_flight
        1
    """

    def __init__(self, limit: int, *, retry_after_s: int = 5) -> None:
        if limit < 1:
            raise ValueError(f"predict concurrency must be at least 1, got {limit}")
        self.limit = limit
        self.retry_after_s = retry_after_s
        self._semaphore = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.refused = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._semaphore.acquire(blocking=False):
            with self._lock:
                self.refused += 1
            logger.info("predict refused: %d in flight (limit %d)", self.in_flight, self.limit)
            raise PredictBusy(self.limit, self.retry_after_s)
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._semaphore.release()


def decode_inputs(contract: Any, raw: Mapping[str, RawInput], *, max_bytes: int, max_pixels: int) -> Any:
    """Decode each sent slot of ``contract`` with its slot's decoder into :class:`~vitalens.domain.StudyInputs`.

    A number, choice or text must meet its slot's limits here; files are checked by the analyzer when it runs
    (``Analyzer.check_inputs``: the slot's, the contract's and the card's limits, so the message names the
    tightest). A slot the analyzer does not read is refused, naming it.
    """
    from vitalens.domain import StudyInputs
    from vitalens.slots import get_slot

    unknown = [s for s in raw if s not in contract.slots]
    if unknown:
        raise InputError(
            f"{contract.name} reads {', '.join(contract.slots)}; it takes no {', '.join(unknown)}", field=unknown[0]
        )
    values: dict[str, Any] = {}
    for slot, item in raw.items():
        spec = get_slot(slot)
        decoded = spec.decode(
            item.data,
            filename=item.filename,
            max_bytes=max_bytes,
            max_pixels=max_pixels,
            hints=spec.parse_hints(item.hints),
            limits=contract.limits_for(slot),
        )
        if not spec.is_file:  # values: before StudyInputs; files: by the analyzer with its card's tighter limits
            spec.check(decoded.value)
        values[spec.attribute] = decoded.value
    try:
        return StudyInputs(**values)
    except ValueError as exc:  # pydantic's own range checks (the age attribute)
        raise InputError(str(exc).splitlines()[0], field=next(iter(raw), None)) from None


def predict(registry_get: Any, name: str, inputs: Any, *, explain: bool, gate: PredictGate | None = None) -> Any:
    """Run analyzer ``name`` on ``inputs`` inside ``gate``; an analyzer without its model is an ``ArtifactError``
    naming how to make one (HTTP 503)."""
    from vitalens.errors import ArtifactError

    analyzer = registry_get(name)
    ready = analyzer.availability()
    if not ready.ready:
        try:  # a bad input is the caller's to fix whether or not the model is installed: say that first (422)
            analyzer.check_inputs(inputs)
        except ArtifactError:
            pass  # a limit only the card knows: the missing model is the answer
        raise ArtifactError(ready.reason)
    if gate is None:
        return analyzer(inputs, explain=explain)
    with gate.slot():
        return analyzer(inputs, explain=explain)


def result_document(name: str, result: Any, *, images: bool = False) -> dict[str, Any]:
    """The contract's JSON layout of ``result`` (:func:`vitalens.analyzers._document.result_document`)."""
    from vitalens.analyzers import get_contract
    from vitalens.analyzers._document import result_document as document

    return document(get_contract(name), result, images=images)


def attribution_summary(result: Any, top_k: int = 3) -> dict[str, Any]:
    """Kept for callers of the old module: :func:`vitalens.analyzers._document.attribution_summary`."""
    from vitalens.analyzers._document import attribution_summary as summary

    return summary(result, top_k)


def with_companions(
    document: dict[str, Any], companions: Mapping[str, dict[str, Any] | Exception], *, measurements_key: str
) -> dict[str, Any]:
    """An old path's answer: one analyzer's document, plus the measurements of companion analyzers run on the same
    inputs under ``measurements_key`` (a companion that failed adds a warning), the first ECG section's attribution
    summary as ``attribution``, and the small extras (``tier_edges``, ``explanation_method``) at the top level —
    the first API version's flat fields, built from the generic document, knowing no analyzer."""
    out = dict(document)
    out[measurements_key] = []
    out["warnings"] = list(document["warnings"])
    for name, doc in companions.items():
        if isinstance(doc, Exception):
            logger.warning("%s not run: %s", name, doc)
            out["warnings"].append(f"{measurements_key} not measured ({name}): {doc}")
            continue
        out[measurements_key] += doc["measurements"]
        out["warnings"] += doc["warnings"]
    section = next((s for s in document["sections"] if s["kind"] == "ecg_attribution"), None)
    if section is not None:
        out.setdefault("attribution", section.get("attribution", {}))
    for key, value in document["extras"].items():
        out.setdefault(key, value)
    return out


# -- short names (an analyzer's aliases) --------------------------------------------------------------------------
def alias_inputs(
    fields: Iterable[Any], sent: Mapping[str, Any], *, check_choices: bool = False
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """An alias's fields as sent (field name → value; ``None``: not sent) → (slot → value, slot → hint → text).

    Hints sent empty are left out (the decoder detects). With ``check_choices`` a choice hint whose field declares
    a ``label`` must be one of its choices exactly, else an ``UnknownNameError`` naming the field (the first
    version's form answer).
    """
    from vitalens._naming import unknown_name_error
    from vitalens.slots import CategoryLimits, get_slot

    values: dict[str, Any] = {}
    hints: dict[str, dict[str, str]] = {}
    for f in fields:
        value = sent.get(f.name)
        if value is None:
            continue
        if f.hint is None:
            values[f.slot] = value
            continue
        text = str(value)
        if text == "":
            continue
        limits = get_slot(f.slot).hint(f.hint).limits
        if check_choices and f.label and isinstance(limits, CategoryLimits) and text not in limits.choices:
            error = unknown_name_error(f.label, text, limits.choices)
            error.field = f.name  # type: ignore[attr-defined]
            raise error
        hints.setdefault(f.slot, {})[f.hint] = text
    return values, hints


def run_companions(contract: Any, run: Callable[[Any], Any]) -> dict[str, Any]:
    """``run(companion contract)`` for each of ``contract``'s companions; one that fails with a ``VitalensError``
    is kept as the error (a warning in the answer), never fails the main analysis."""
    from vitalens.analyzers import get_contract
    from vitalens.errors import VitalensError

    out: dict[str, Any] = {}
    for name in contract.companions:
        try:
            out[name] = run(get_contract(name))
        except VitalensError as exc:
            out[name] = exc
    return out


def alias_answer(
    alias: Any,
    document: dict[str, Any],
    result: Any,
    companions: Mapping[str, dict[str, Any] | Exception],
    *,
    explain: bool,
) -> dict[str, Any]:
    """What a short name answers: the analyzer's document, with its companions' measurements under the alias's
    ``companions_key`` (:func:`with_companions`) when it has companions, and the alias's ``explain_extras`` when
    ``explain`` was asked."""
    out = with_companions(document, companions, measurements_key=alias.companions_key) if companions else document
    if explain:
        for key, extra in alias.explain_extras.items():
            out[key] = result.extras.get(extra, {})
    return out
