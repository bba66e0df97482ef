"""The model card: a typed object that travels with the weights (``card.json``).

Why typed: inference reads labels, input contract, thresholds and calibration from the card and nothing from
code, so a card that does not validate must fail at load time, not produce silently wrong numbers.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vitalens.domain import ModelInfo, utcnow
from vitalens.errors import ArtifactError

__all__ = [
    "ModelCard",
    "NetSpec",
    "InputSpec",
    "CalibrationSpec",
    "TrainingData",
    "OutputSpec",
    "DerivedFinding",
    "CARD_FILE",
    "WEIGHTS_FILE",
    "ONNX_FILE",
]

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


class NetSpec(BaseModel):
    """Which registered net to build and with which arguments (``vitalens.nets.create_net``)."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class InputSpec(BaseModel):
    """The input contract the analyzer checks before the model runs."""

    modality: str = Field(min_length=1, max_length=32, description="fundus, oct, ecg, cxr, text, ... (open).")
    channels: int = Field(ge=1)
    size: tuple[int, int] | None = Field(default=None, description="(height, width) the net sees, pixels.")
    min_size: int | None = Field(default=None, description="Smallest accepted input side, pixels.")
    fs_hz: float | None = Field(default=None, description="Sampling rate the net expects (signals).")
    duration_s: float | None = None
    min_duration_s: float | None = Field(
        default=None,
        gt=0,
        description="Shortest recording accepted, s; unset: duration_s (a shorter one is refused, never zero-padded).",
    )
    leads: list[str] | None = None
    dtype: str = "float32"
    value_range: tuple[float, float] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    resize_allowed: bool = True
    extra: dict[str, Any] = Field(default_factory=dict, description="E.g. age_mean/age_std for fundus.odir.")


class CalibrationSpec(BaseModel):
    """Post-hoc probability calibration fitted on the validation split."""

    method: Literal["none", "temperature", "isotonic", "platt"] = "none"
    params: dict[str, Any] = Field(default_factory=dict)
    fitted_on: str | None = None


class OutputSpec(BaseModel):
    """How the net's raw outputs become the card's label probabilities (``vitalens.artifacts.outputs``).

    ``multilabel``/``sigmoid``: one logit per label, independent probabilities (the calibration applies per label).
    ``multiclass``/``softmax``: one logit per class, probabilities sum to 1 (temperature on the logits).
    ``ordinal``: the classes are ordered grades; ``softmax`` as above, ``corn`` (Shi et al. 2021: K − 1 conditional
    logits, P(y > k) = Π_{j ≤ k} σ(z_j)) or ``regression`` (one score s, cumulative logit P(y > k) = σ(a·s − θ_k)
    with the scale ``a`` and ordered cut-points ``θ`` fitted on the validation split, in ``params``).
    """

    problem: Literal["multilabel", "multiclass", "ordinal"] = "multilabel"
    head: Literal["sigmoid", "softmax", "corn", "regression"] = "sigmoid"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _head_fits_problem(self) -> OutputSpec:
        allowed = {"multilabel": {"sigmoid"}, "multiclass": {"softmax"}, "ordinal": {"softmax", "corn", "regression"}}
        if self.head not in allowed[self.problem]:
            raise ValueError(
                f"head '{self.head}' does not fit a {self.problem} problem; use {sorted(allowed[self.problem])}"
            )
        return self


class DerivedFinding(BaseModel):
    """A binary finding derived from a multi-class output: P(finding) = the sum of its classes' probabilities.

    E.g. referable diabetic retinopathy = grades 2–4; its operating threshold is chosen on validation like a label's.
    """

    code: str
    name: str
    classes: list[str] = Field(min_length=1)
    threshold: float = Field(ge=0, le=1)
    threshold_method: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict, description="Held-out (test split) metrics.")


class TrainingData(BaseModel):
    """What trained the model, said plainly."""

    datasets: list[str]
    provenance: Literal["real", "synthetic", "mixed"]
    n_patients: int | None = None
    n_samples: int | None = None
    splits: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class ModelCard(BaseModel):
    """Everything inference and a reader need to know about one model artifact."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    name: str
    analyzer: str
    version: str = "0.1.0"
    labels: list[str] = Field(min_length=1)
    label_names: dict[str, str] = Field(default_factory=dict)
    architecture: NetSpec
    input: InputSpec
    thresholds: dict[str, float] = Field(default_factory=dict)
    threshold_method: str = "fixed 0.5"
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    derived: list[DerivedFinding] = Field(default_factory=list)
    training_data: TrainingData
    demonstration: bool = Field(description="True when synthetic or tiny data trained it: not for clinical use.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Held-out (test split) metrics.")
    subgroup_metrics: dict[str, Any] = Field(default_factory=dict)
    intended_use: str = ""
    limitations: str = ""
    licence: str = "Apache-2.0 (code and weights); data under its own terms"
    paper: str | None = None
    explanation_method: str | None = None
    recipe: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict, description="File name → sha256 hex digest.")
    created_at: datetime = Field(default_factory=utcnow)
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _thresholds_match_labels(self) -> ModelCard:
        unknown = set(self.thresholds) - set(self.labels)
        if unknown:
            raise ValueError(f"thresholds for labels not in the card: {sorted(unknown)}")
        for label, t in self.thresholds.items():
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"threshold for {label} is {t}, outside [0, 1]")
        for finding in self.derived:
            stray = set(finding.classes) - set(self.labels)
            if stray:
                raise ValueError(f"derived finding {finding.code} names classes not in the card: {sorted(stray)}")
        return self

    def threshold(self, label: str) -> float:
        """The operating threshold of ``label`` (0.5 when the card chose none)."""
        return self.thresholds.get(label, 0.5)

    def name_of(self, label: str) -> str:
        return self.label_names.get(label, label)

    @property
    def trained_on(self) -> str:
        td = self.training_data
        unit = str((td.splits or {}).get("unit", "patient"))
        if td.n_patients and not unit.startswith("image"):
            n = f"{td.n_patients} patients"
        else:  # a dataset that names no patient (APTOS) is counted in images, never as patients
            noun = "images" if unit.startswith("image") else f"{unit}s" if unit.endswith("pair") else "samples"
            n = f"{td.n_samples or td.n_patients or '?'} {noun}"
        return f"{', '.join(td.datasets)} ({td.provenance}, {n})"

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            analyzer=self.analyzer,
            version=self.version,
            demonstration=self.demonstration,
            trained_on=self.trained_on,
        )

    def summary(self) -> dict[str, Any]:
        """The part of the card shown beside every result (UI, API, PDF)."""
        return {
            "name": self.name,
            "analyzer": self.analyzer,
            "version": self.version,
            "labels": self.labels,
            "thresholds": self.thresholds,
            "threshold_method": self.threshold_method,
            "calibration": self.calibration.method,
            "training_data": self.training_data.model_dump(),
            "demonstration": self.demonstration,
            "metrics": self.metrics,
            "intended_use": self.intended_use,
            "limitations": self.limitations,
            "explanation_method": self.explanation_method,
        }

    # -- file I/O -------------------------------------------------------------------------------------------
    def write(self, folder: Path) -> Path:
        path = Path(folder) / CARD_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            raise ArtifactError(f"no {CARD_FILE} in {folder}: not a model artifact")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path} is not a valid model card: {exc}") from exc
