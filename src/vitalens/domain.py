"""The shared vocabulary of vitalens: pydantic types every layer speaks (analyzers, service, store, reports).

Why here and not per layer: a Finding written by an analyzer must be the same object the API returns, the
store persists and the PDF prints; one definition keeps their fields and constraints in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vitalens import DECISION_SUPPORT_NOTICE

__all__ = [
    "Modality",
    "InputName",
    "RiskBand",
    "RiskTier",
    "AnalysisStatus",
    "Sex",
    "StudyInputs",
    "QualityVerdict",
    "QualityResult",
    "Coding",
    "Finding",
    "Measurement",
    "Explanation",
    "ModelInfo",
    "AnalysisResult",
    "utcnow",
]


def utcnow() -> datetime:
    """Timezone-aware UTC now (naive datetimes are never stored)."""
    return datetime.now(UTC)


class Modality(StrEnum):
    FUNDUS = "fundus"
    OCT = "oct"
    ECG = "ecg"
    CXR = "cxr"
    TEXT = "text"


class InputName(StrEnum):
    """The built-in input slots (``vitalens.slots`` registers them; analyzers may register more, by name)."""

    FUNDUS_LEFT = "fundus_left"
    FUNDUS_RIGHT = "fundus_right"
    AGE = "age"
    SEX = "sex"
    OCT = "oct"
    ECG = "ecg"
    CXR = "cxr"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class RiskBand(StrEnum):
    """Cardiovascular risk band of the eyes → heart proxies (edges in ``vitalens.risk.cardio``)."""

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class RiskTier(StrEnum):
    """ECG risk tier from calibrated probabilities (edges in the model card)."""

    LOW = "Low"
    MODERATE = "Moderate"
    HIGH = "High"


class AnalysisStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class StudyInputs(BaseModel):
    """Decoded, validated inputs of one study, as analyzers receive them: one value per registered slot present.

    Generic over :mod:`vitalens.slots`: the built-in slots have typed fields below; a slot an analyzer registers
    (``notes``, ...) is passed by its name and read as an attribute (``inputs.notes``) or with :meth:`get`. Images
    are ``uint8`` arrays (``(H, W, 3)`` colour, ``(H, W)`` gray); the ECG is an ``io.ecg.ECGRecord`` (mV, leads ×
    samples, with its rate); numbers are floats, categories and text are strings. Only the slots a study has are set.

    Example:
        >>> StudyInputs(age_years=61).has("age")
        True
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, extra="allow")

    fundus_left: np.ndarray | None = None
    fundus_right: np.ndarray | None = None
    age_years: float | None = Field(default=None, ge=0, le=120)
    sex: Sex | None = None
    oct: np.ndarray | None = None
    cxr: np.ndarray | None = None
    ecg: Any | None = None

    @model_validator(mode="after")
    def _known_slots(self) -> StudyInputs:
        from vitalens.slots import SLOTS, slot_for_attribute

        for key in self.model_extra or {}:
            if slot_for_attribute(key) is None:
                from vitalens._naming import unknown_name_error

                raise unknown_name_error("input slot", key, [s.attribute for _, s in SLOTS.items()])
        return self

    @staticmethod
    def _attribute(name: str) -> str:
        from vitalens.slots import SLOTS

        spec = SLOTS._items.get(str(name))
        return spec.attribute if spec is not None else str(name)

    def get(self, name: InputName | str, default: Any = None) -> Any:
        """The value of slot ``name`` (``age`` reads ``age_years``), or ``default`` when absent."""
        value = getattr(self, self._attribute(str(name)), None)
        return default if value is None else value

    def has(self, name: InputName | str) -> bool:
        """True when the slot ``name`` holds a value (``age`` maps to ``age_years``)."""
        return self.get(name) is not None

    def present(self) -> set[str]:
        """Names of the slots holding a value (slot names, e.g. ``age`` rather than ``age_years``)."""
        from vitalens.slots import slot_for_attribute

        names = set()
        for attr, value in {**dict(self), **(self.model_extra or {})}.items():
            if value is None:
                continue
            spec = slot_for_attribute(attr)
            names.add(spec.name if spec is not None else attr)
        return names


class QualityVerdict(StrEnum):
    """What an input quality gate decided (``vitalens.quality``)."""

    PASS = "pass"
    FLAG = "flag"
    REFUSE = "refuse"


class QualityResult(BaseModel):
    """One quality gate's verdict on one input, before an analyzer runs.

    ``flag`` means "analysed, but read with care" (shown beside the findings); ``refuse`` means the analyzer does
    not run on this input (the reason is the error). ``metrics`` carries the numbers the verdict came from.
    """

    slot: str
    gate: str
    verdict: QualityVerdict
    reasons: list[str] = Field(default_factory=list)
    metrics: dict[str, float | str | None] = Field(default_factory=dict)

    @property
    def message(self) -> str:
        return "; ".join(self.reasons) or str(self.verdict)


class Coding(BaseModel):
    """A code from a standard terminology, as FHIR writes it (``system`` is the terminology's URI).

    Analyzers attach these to what they output (LOINC for measurements, SNOMED CT for findings where a code
    exists), so every exporter (FHIR, DICOM SR) codes results without knowing any analyzer.
    """

    model_config = ConfigDict(frozen=True)

    system: str = Field(description="e.g. http://loinc.org, http://snomed.info/sct")
    code: str
    display: str | None = None


class Finding(BaseModel):
    """One label's output: probability, the card's threshold, and whether it is positive."""

    code: str = Field(description="Label code in the card's order, e.g. 'D' or 'MI'.")
    name: str = Field(description="Human-readable name, e.g. 'Diabetic retinopathy'.")
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    positive: bool
    calibrated: bool = False
    tier: RiskTier | None = None
    input_name: str | None = Field(
        default=None, description="The input slot this finding concerns, for per-input analyzers (e.g. one eye)."
    )
    codes: list[Coding] = Field(default_factory=list, description="Standard codes of the finding (SNOMED CT).")


class Measurement(BaseModel):
    """A measured quantity with its unit and reference range; ``value`` is None when it could not be computed."""

    name: str
    value: float | None
    unit: str
    reference_low: float | None = None
    reference_high: float | None = None
    flag: str | None = Field(default=None, description="'low', 'high', 'normal' or None when not computed.")
    method: str | None = None
    code: Coding | None = Field(default=None, description="Standard code of the quantity (LOINC).")
    unit_ucum: str | None = Field(default=None, description="The unit as a UCUM code ('ms', '/min', 'deg').")

    def reference_text(self) -> str:
        """The reference range in words: ``340–450 ms``, or one-sided ``≤ 110 ms`` / ``≥ 60 bpm`` where the
        guideline gives one edge only (never ``–110``); ``""`` without a range."""
        unit = f" {self.unit}" if self.unit and self.unit not in ("1", "ratio") else ""
        lo, hi = self.reference_low, self.reference_high
        if lo is not None and hi is not None:
            return f"{lo:g}–{hi:g}{unit}"
        if hi is not None:
            return f"≤ {hi:g}{unit}"
        if lo is not None:
            return f"≥ {lo:g}{unit}"
        return ""


class Explanation(BaseModel):
    """A saliency map for one target, in the coordinates of one input.

    ``heatmap`` (float32, values in [0, 1], same height/width or sample count as the input) and the rendered
    ``overlay_png`` are kept out of JSON by default: they are written to files or blobs instead.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    target: str
    input_name: str
    method: str
    heatmap: np.ndarray | None = Field(default=None, exclude=True)
    overlay_png: bytes | None = Field(default=None, exclude=True)
    note: str | None = None


class ModelInfo(BaseModel):
    """Which model produced a result (copied from its card)."""

    name: str
    analyzer: str
    version: str
    demonstration: bool = Field(description="True when trained on synthetic or tiny data: not for clinical use.")
    trained_on: str


class AnalysisResult(BaseModel):
    """What one analyzer returns for one study."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    analyzer: str
    model: ModelInfo
    card: dict[str, Any] = Field(default_factory=dict, description="Model card summary shown beside the result.")
    trained_on: str
    demonstration: bool
    decision_support_notice: str = DECISION_SUPPORT_NOTICE
    findings: list[Finding] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    explanations: list[Explanation] = Field(default_factory=list)
    band: RiskBand | None = None
    tier: RiskTier | None = None
    proxies: dict[str, float] = Field(default_factory=dict)
    explanation: str = ""
    extras: dict[str, Any] = Field(default_factory=dict)
    quality: list[QualityResult] = Field(default_factory=list, description="Input quality gates' verdicts.")
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def probabilities(self) -> dict[str, float]:
        return {f.code: f.probability for f in self.findings}

    @property
    def positive(self) -> list[str]:
        return [f.code for f in self.findings if f.positive]

    def public_dict(self) -> dict[str, Any]:
        """JSON-ready view shared by the CLI ``--json`` and the API: the fields plus ``probabilities``,
        ``positive`` and, where this result has them, the proxies and band."""
        data = self.model_dump(mode="json")
        data["probabilities"] = self.probabilities
        data["positive"] = self.positive
        return data
