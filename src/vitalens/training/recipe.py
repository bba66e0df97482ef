"""Training recipes: one YAML file per analyzer, validated by a pydantic model before anything runs.

Why validated and closed (unknown keys fail): a misspelt key in a recipe (``max_epoch: 50``) would otherwise be
ignored silently and train a different model than the one the card claims. Task-specific options live under
``task:`` and are validated by the task plug-in's own model, so one recipe schema serves every analyzer.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vitalens.errors import InputError

__all__ = [
    "Recipe",
    "DataSection",
    "NetSection",
    "TrainSection",
    "LossSection",
    "ThresholdRule",
    "ThresholdSection",
    "CalibrationSection",
    "CardSection",
    "parse_overrides",
    "apply_overrides",
    "default_recipe_path",
    "RECIPES_DIR",
]

logger = logging.getLogger(__name__)

#: ``recipes/`` at the repository root (src layout: src/vitalens/training/recipe.py → parents[3]).
RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Closed):
    """How the dataset root becomes patient-level splits."""

    fractions: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15), description="train / val / test fractions of patients."
    )
    split_seed: int | None = Field(default=None, description="Seed of the split; the recipe seed when null.")
    num_workers: int = Field(default=0, ge=0)
    provenance: Literal["auto", "real", "synthetic"] = Field(
        default="auto", description="'auto' detects a synthetic twin by its marker file."
    )
    max_patients: int | None = Field(default=None, ge=3, description="Use only the first N patients (smoke runs).")
    fold: int | None = Field(
        default=None,
        ge=0,
        description="k-fold cross-validation: hold out patient fold `fold` of `n_folds` as the test split "
        "(train/val are split from the rest by the val share of `fractions`); null uses `fractions`.",
    )
    n_folds: int = Field(default=5, ge=2)

    @model_validator(mode="after")
    def _fold_in_range(self) -> DataSection:
        if self.fold is not None and self.fold >= self.n_folds:
            raise ValueError(f"data.fold must be < data.n_folds ({self.n_folds}), got {self.fold}")
        return self

    @field_validator("fractions")
    @classmethod
    def _fractions_sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be positive and sum to 1, got {list(v)} (sum {sum(v):.4f})")
        return v


class NetSection(_Closed):
    """Which registered net to build (``vitalens.nets.create_net``)."""

    name: str
    pretrained: bool | str = False
    kwargs: dict[str, Any] = Field(default_factory=dict)
    init_encoder: str | None = Field(
        default=None,
        description="A model artifact folder (absolute, or relative to the working directory, else to the "
        "repository) whose encoder tensors replace the starting weights after `pretrained`, e.g. models/fundus-odir "
        "for an in-domain start; its backbone must match.",
    )


class TrainSection(_Closed):
    """Optimisation: AdamW with two learning rates, LR on plateau, early stopping, gradual unfreezing."""

    batch_size: int = Field(default=16, ge=1)
    max_epochs: int = Field(default=25, ge=1)
    unfreeze_after: int = Field(default=5, ge=0, description="Epochs with the encoder frozen (0: never frozen).")
    unfreeze_stages: int | None = Field(
        default=None, ge=1, description="After unfreezing, train only the encoder's last N stages (None: all)."
    )
    freeze_bn: bool = Field(
        default=False, description="BatchNorm of frozen encoder layers in eval mode (small data, small batches)."
    )
    finetune_epochs: int = Field(
        default=0, ge=0, description="Low-LR fine-tuning stage after the best epoch (all layers); 0: none."
    )
    finetune_lr: float = Field(default=1e-5, gt=0, description="Learning rate of the fine-tuning stage.")
    max_time_minutes: float | None = Field(
        default=None, gt=0, description="Wall-clock budget; training stops after it (best epoch kept)."
    )
    lr_head: float = Field(default=3e-4, gt=0)
    lr_encoder: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    early_stopping_patience: int = Field(default=6, ge=1)
    plateau_patience: int = Field(default=2, ge=0)
    plateau_factor: float = Field(default=0.5, gt=0, lt=1)
    min_lr: float = Field(default=1e-7, ge=0)
    optimizer: Literal["adamw", "adam"] = Field(
        default="adamw", description="AdamW (decoupled weight decay) or Adam (L2 weight decay), both two-LR."
    )
    monitor: Literal["val_macro_auroc", "val_accuracy", "val_qwk", "val_loss"] = Field(
        default="val_macro_auroc",
        description="What early stopping, the best checkpoint and LR on plateau watch (val_loss: lower is better).",
    )
    weighted_sampling: bool = False
    gradient_clip_val: float | None = Field(default=None, gt=0)
    precision: str = Field(default="32-true", description="Lightning precision, e.g. '16-mixed' on a GPU.")
    accelerator: str = "auto"
    deterministic: bool = True
    progress_bar: bool = True
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None


class TrainerSection(_Closed):
    """Where Lightning runs the recipe: one CPU or GPU by default, many GPUs or nodes by changing keys only.

    Example: ``--set trainer.strategy=ddp --set trainer.devices=4`` trains on four GPUs of one machine (Lightning
    launches one process per device); add ``trainer.num_nodes=2`` and start it with ``torchrun`` or SLURM on each
    node for two machines. Only rank 0 evaluates and writes the artifact.
    """

    strategy: str = Field(
        default="auto", description="Lightning strategy: auto, ddp, ddp_spawn, ddp_find_unused_parameters_true, fsdp."
    )
    devices: int | str | list[int] = Field(
        default=1, description="Devices per node: a count, 'auto' (all visible), or a list of GPU indices."
    )
    num_nodes: int = Field(default=1, ge=1, description="Machines taking part (multi-node DDP).")
    sync_batchnorm: bool = Field(default=False, description="Synchronise BatchNorm statistics across processes.")


class LossSection(_Closed):
    """The loss, which also fixes the head: multi-label ``bce``/``focal`` (sigmoid); multi-class and ordinal ``ce``
    (softmax); ordinal ``corn`` (K − 1 conditional logits) or ``regression`` (one score, cut-points fitted on val)."""

    name: Literal["bce", "focal", "ce", "corn", "regression"] | None = Field(
        default=None, description="null: the task's natural loss (multi-label bce, multi-class and ordinal ce)."
    )
    class_weight: Literal["none", "auto"] | list[float] = Field(
        default="none", description="ce: 'auto' inverse class frequency on the training split (clipped), or values."
    )
    pos_weight: Literal["none", "auto"] | list[float] = Field(
        default="none", description="'auto': negatives/positives per label on the training split, clipped."
    )
    pos_weight_max: float = Field(default=20.0, ge=1)
    focal_gamma: float = Field(default=2.0, ge=0)
    focal_alpha: float | None = Field(default=0.25, ge=0, le=1)
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5)


class ThresholdRule(_Closed):
    """How one label's operating threshold is chosen on the validation split."""

    method: Literal["youden", "target_sensitivity", "f1", "fixed"] = "youden"
    target: float = Field(default=0.9, gt=0, le=1, description="Sensitivity for target_sensitivity.")
    value: float = Field(default=0.5, ge=0, le=1, description="Threshold for fixed.")

    def describe(self) -> str:
        if self.method == "target_sensitivity":
            return f"target_sensitivity {self.target:g}"
        if self.method == "fixed":
            return f"fixed {self.value:g}"
        return self.method


class ThresholdSection(ThresholdRule):
    """The default rule plus per-label overrides (``per_label: {D: {method: target_sensitivity, target: .95}}``)."""

    per_label: dict[str, ThresholdRule] = Field(default_factory=dict)

    def rule_for(self, label: str) -> ThresholdRule:
        return self.per_label.get(label, ThresholdRule(method=self.method, target=self.target, value=self.value))


class CalibrationSection(_Closed):
    """Post-hoc calibration fitted on the validation split."""

    method: Literal["none", "temperature", "platt", "isotonic"] = "temperature"
    per_label: bool = Field(default=False, description="Temperature: one T per label instead of one shared T.")
    n_bins: int = Field(default=10, ge=2, description="Bins of the reliability diagram and ECE.")


class CardSection(_Closed):
    """Text of the model card that the recipe, not the code, should own."""

    name: str | None = None
    version: str = "0.1.0"
    intended_use: str | None = None
    limitations: str | None = None
    paper: str | None = None
    explanation_method: str | None = None
    min_real_patients: int = Field(
        default=1000, ge=0, description="Below this many patients the artifact is marked a demonstration."
    )


class Recipe(_Closed):
    """A whole training recipe. Load with :meth:`Recipe.load`; unknown keys anywhere fail.

    Example:
        >>> r = Recipe.load("recipes/fundus.odir.yaml", overrides={"train.max_epochs": 2})
    """

    analyzer: str
    seed: int = 0
    description: str = ""
    data: DataSection = Field(default_factory=DataSection)
    net: NetSection
    train: TrainSection = Field(default_factory=TrainSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    loss: LossSection = Field(default_factory=LossSection)
    thresholds: ThresholdSection = Field(default_factory=ThresholdSection)
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    card: CardSection = Field(default_factory=CardSection)
    task: dict[str, Any] = Field(default_factory=dict, description="Task-specific options (the task validates).")

    @model_validator(mode="after")
    def _task_options_valid(self) -> Recipe:
        """Validate ``task:`` with the task plug-in's own model when the analyzer has a registered task."""
        from vitalens.training.tasks import get_task_class, is_task

        if is_task(self.analyzer):
            cls = get_task_class(self.analyzer)
            try:
                self.task = cls.Options.model_validate(self.task).model_dump()
            except ValidationError as exc:
                problems = "; ".join(
                    f"task.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
                )
                raise ValueError(problems) from None
        return self

    @classmethod
    def load(
        cls,
        source: Path | str | dict[str, Any],
        *,
        overrides: dict[str, Any] | list[str] | None = None,
    ) -> Recipe:
        """Read a recipe from a YAML file (or a dict), apply dotted overrides, validate.

        Args:
            source: path of a YAML file, or the recipe as a mapping.
            overrides: ``{"train.max_epochs": 2}`` or CLI strings ``["train.max_epochs=2"]``.

        Raises:
            FileNotFoundError: the file does not exist.
            InputError: YAML or validation errors, one line per problem with its dotted location.
        """
        if isinstance(source, dict):
            raw = copy.deepcopy(source)
            origin = "<dict>"
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"recipe file {path} does not exist")
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise InputError(f"recipe {path} is not valid YAML: {exc}", field="recipe") from exc
            origin = str(path)
        if not isinstance(raw, dict):
            raise InputError(f"recipe {origin} must be a mapping, got {type(raw).__name__}", field="recipe")
        if overrides:
            parsed = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
            raw = apply_overrides(raw, parsed)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise InputError(f"invalid recipe {origin}: {problems}", field="recipe") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in the model card and the report)."""
        return self.model_dump(mode="json")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse CLI ``key.sub=value`` strings; values are read as YAML (``2`` → int, ``[1,2]`` → list).

    Raises:
        InputError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override '{item}' must look like key.sub=value", field="set")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted key set (intermediate mappings are created)."""
    result = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InputError(f"override '{dotted}': '{part}' is not a section", field="set")
            node = child
        node[parts[-1]] = value
    return result


def default_recipe_path(analyzer: str) -> Path:
    """``recipes/<analyzer>.yaml`` at the repository root."""
    return RECIPES_DIR / f"{analyzer}.yaml"
