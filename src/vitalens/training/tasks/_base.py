"""The task plug-in contract of the training engine, and its registry.

Why plug-ins: one engine (optimiser, callbacks, thresholds, calibration, report, artifact) serves every analyzer;
what differs per task — reading a dataset root into patient-level splits, building the net, running a batch,
filling the model card — lives in one small module per task under ``training/tasks/``. Adding a task is adding
one module with ``@register_task("name")``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from vitalens._naming import unknown_name_error
from vitalens._registry import ENTRY_POINT_GROUPS, Registry

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard, TrainingData
    from vitalens.training.problems import Problem
    from vitalens.training.recipe import Recipe

__all__ = [
    "TASKS",
    "DataBundle",
    "EvalSplit",
    "TaskOptions",
    "TrainingTask",
    "register_task",
    "get_task",
    "get_task_class",
    "list_tasks",
    "is_task",
    "SYNTHETIC_MARKERS",
    "detect_synthetic",
]

logger = logging.getLogger(__name__)

#: A synthetic twin writes one of these files at its root; real dataset roots never hold them.
SYNTHETIC_MARKERS = ("SYNTHETIC", "SYNTHETIC.md", "SYNTHETIC.txt", ".synthetic", "synthetic.json")

SplitName = Literal["train", "val", "test"]


@dataclass
class DataBundle:
    """A dataset root read into patient-level splits, ready for the engine.

    Attributes:
        train, val, test: torch datasets whose items the task's ``forward``/``targets`` understand.
        targets: split name → ``(N, L)`` 0/1 array, row-aligned with the dataset items.
        groups: split name → subgroup column (``sex``, ``age_band``...) → ``(N,)`` array of group names,
            row-aligned; the report computes metrics per group.
        provenance: ``real`` or ``synthetic``.
        datasets: names of the public datasets behind it (``ODIR-5K``).
        n_patients: distinct patients over all splits.
        meta: anything the card needs (``age_mean``, ``age_std``, split sizes...).
    """

    train: Any
    val: Any
    test: Any
    targets: dict[str, np.ndarray]
    provenance: Literal["real", "synthetic"]
    datasets: list[str]
    n_patients: int
    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Any:
        if name not in ("train", "val", "test"):
            raise unknown_name_error("split", name, ["train", "val", "test"])
        return getattr(self, name)

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in ("train", "val", "test")}


@dataclass
class EvalSplit:
    """The records of one split of a dataset root, preprocessed with a model card's numbers, for ``evaluate()``.

    Attributes:
        dataset: a torch dataset whose items the task's ``forward``/``targets`` understand.
        targets: ``(N, L)`` 0/1, row-aligned with the items.
        groups: subgroup column → ``(N,)`` group names, row-aligned.
        provenance: ``real`` or ``synthetic``.
        n_patients: distinct patients among the records scored.
        selection: how the records were chosen, in words (written into the report).
        n_excluded: records of the root left out because they belong to another split (e.g. seen in training).
        warnings: what the report must say about the selection (e.g. a split recomputed from the folder).
    """

    dataset: Any
    targets: np.ndarray
    groups: dict[str, np.ndarray]
    provenance: Literal["real", "synthetic"]
    n_patients: int
    selection: str
    n_excluded: int = 0
    warnings: list[str] = field(default_factory=list)


class TaskOptions(BaseModel):
    """Task-specific recipe options (``task:`` section); subclasses add fields. Unknown keys fail."""

    model_config = ConfigDict(extra="forbid")


class TrainingTask(ABC):
    """Base of every task plug-in. Subclasses set the class attributes and implement the abstract methods.

    Class attributes:
        name: the analyzer name (``fundus.odir``), set by :func:`register_task`.
        labels: output columns in order (codes, e.g. ``N D G C A H M O``).
        label_names: code → human name.
        problem: ``multilabel`` (sigmoid per label), ``multiclass`` (one class per sample), ``ordinal`` (ordered
            grades; the recipe's ``loss.name`` picks the head, :mod:`vitalens.training.problems`) or ``segmentation``
            (a logit per pixel), which ``train()`` hands to ``training.segmentation``.
        derived_findings: binary findings derived from an exclusive-class output, code → (name, classes), e.g.
            ``{"RDR": ("Referable diabetic retinopathy", ["2", "3", "4"])}``; thresholds chosen on validation.
        Options: pydantic model of the recipe's ``task:`` section.
    """

    name: ClassVar[str] = ""
    labels: ClassVar[list[str]] = []
    label_names: ClassVar[dict[str, str]] = {}
    problem: ClassVar[Literal["multilabel", "multiclass", "ordinal", "segmentation"]] = "multilabel"
    derived_findings: ClassVar[dict[str, tuple[str, list[str]]]] = {}
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    modality: ClassVar[str] = "fundus"
    default_intended_use: ClassVar[str] = ""
    default_limitations: ClassVar[str] = ""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.options = self.Options.model_validate(recipe.task)

    # -- data -------------------------------------------------------------------------------------------------
    @abstractmethod
    def build_data(self, data_root: Path) -> DataBundle:
        """Read ``data_root`` (the dataset's published layout) into patient-level splits."""

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """Read only the records of ``split`` (``all``: every record) and preprocess them with ``card``'s numbers.

        Why its own method: scoring must not depend on the other records of the folder. ``build_data`` fits
        training statistics (lead or age z-scores) on the train split of the folder, so a folder holding only test
        records (a hospital's own export) fails and a folder with other training records changes the result. A
        task overrides this to select its records by a property of each record (a fold, a published split, the
        card's record lists) and to normalise with the card. The default rebuilds the folder's splits with
        ``build_data`` (the old behaviour) and says so in ``warnings``.
        """
        bundle = self.build_data(data_root)
        names = ("train", "val", "test") if split == "all" else (split,)
        datasets = [bundle.split(n) for n in names]
        from torch.utils.data import ConcatDataset

        columns = bundle.groups.get(names[0], {})
        return EvalSplit(
            dataset=datasets[0] if len(datasets) == 1 else ConcatDataset(datasets),
            targets=np.concatenate([np.asarray(bundle.targets[n]) for n in names]),
            groups={c: np.concatenate([bundle.groups[n][c] for n in names]) for c in columns},
            provenance=bundle.provenance,
            n_patients=bundle.n_patients,
            selection=f"the {split} split rebuilt from this folder by {self.name}'s training split rule",
            warnings=[
                f"{self.name} rebuilds its splits and statistics from the data folder: a folder with other "
                "records gives another result"
            ],
        )

    def provenance(self, data_root: Path) -> Literal["real", "synthetic"]:
        """``synthetic`` when the recipe says so or the root holds a synthetic-twin marker file."""
        setting = self.recipe.data.provenance
        if setting != "auto":
            return setting
        return "synthetic" if detect_synthetic(data_root) else "real"

    def collate(self, batch: list[Any]) -> Any:
        """Collate dataset items into a batch (torch's default collate unless overridden)."""
        from torch.utils.data import default_collate

        return default_collate(batch)

    # -- training ---------------------------------------------------------------------------------------------
    def run_training(self, *, data_root: Path, out: Path, resume: bool = False) -> Path | None:
        """Train the whole artifact here instead of in the engine's classifier loop; ``None`` (default): don't.

        A task whose model is not one network fitted end to end on labelled batches (a staged, self-supervised or
        normal-only design) overrides this, writes ``out/artifact`` and ``out/report.json`` itself, and returns
        the artifact folder. The engine has already validated the recipe and seeded every RNG.
        """
        return None

    # -- model ------------------------------------------------------------------------------------------------
    @property
    def output_problem(self) -> Problem:
        """The problem and head this task trains with the recipe's loss (a loss that does not fit is an error)."""
        from vitalens.training.problems import make_problem

        return make_problem(self.problem, self.recipe.loss.name, len(self.labels))

    def net_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``create_net``, recorded in the card so ``load_model`` rebuilds the same net.

        ``num_classes`` is the head's output width: K labels, K − 1 for CORN, 1 for a regression score (and one
        logit map per label for segmentation).
        """
        n = len(self.labels) if self.problem == "segmentation" else self.output_problem.n_outputs
        return {"num_classes": n, **self.recipe.net.kwargs}

    def build_net(self, bundle: DataBundle) -> torch.nn.Module:
        """Build the recipe's net (pretrained weights per the recipe, then ``net.init_encoder`` where given)."""
        from vitalens.nets import create_net

        net = create_net(self.recipe.net.name, pretrained=self.recipe.net.pretrained, **self.net_kwargs())
        if self.recipe.net.init_encoder:
            from vitalens.nets.pretrained import load_encoder_from_artifact
            from vitalens.training.recipe import RECIPES_DIR

            path = Path(self.recipe.net.init_encoder).expanduser()
            if not path.is_absolute() and not path.exists():
                path = RECIPES_DIR.parent / path
            load_encoder_from_artifact(net, path)
        return net

    @abstractmethod
    def forward(self, net: torch.nn.Module, batch: Any) -> torch.Tensor:
        """Run one batch through the net; returns logits ``(B, L)``."""

    def targets(self, batch: Any) -> torch.Tensor:
        """The batch's 0/1 targets ``(B, L)`` as float."""
        return batch["target"].float()

    def batch_meta(self, batch: Any) -> dict[str, list[Any]]:
        """Per-item identifiers kept with predictions (e.g. ``patient_id``)."""
        return {}

    # -- card -------------------------------------------------------------------------------------------------
    @abstractmethod
    def input_spec(self, bundle: DataBundle) -> InputSpec:
        """The input contract written into the card (modality, size or rate, normalisation)."""

    def training_data(self, bundle: DataBundle) -> TrainingData:
        from vitalens.artifacts import TrainingData

        return TrainingData(
            datasets=bundle.datasets,
            provenance=bundle.provenance,
            n_patients=bundle.n_patients,
            n_samples=sum(bundle.split_sizes.values()),
            splits={
                "unit": "patient",
                "fractions": list(self.recipe.data.fractions),
                "seed": self.split_seed,
                "sizes": bundle.split_sizes,
            },
            description=f"{'Synthetic twin of ' if bundle.provenance == 'synthetic' else ''}"
            f"{', '.join(bundle.datasets)}; patient-level {'/'.join(str(f) for f in self.recipe.data.fractions)} "
            "train/val/test split; thresholds and calibration fitted on val, metrics on test.",
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        """Task-specific card fields (``ModelCard.extra``)."""
        return {}

    def count_phrase(self, bundle: DataBundle) -> str:
        """``bundle.n_patients`` named by what it counts, for the card ("only 85 patients").

        Why: a dataset that names no patient (APTOS, the COVID-19 Radiography Database) counts images, and "700
        patients" would overstate it; a task whose count mixes units (two datasets) overrides this.
        """
        unit = "patients" if bundle.meta.get("has_patient_ids", True) else "images, no patient ids"
        return f"{bundle.n_patients} {unit}"

    def extra_metrics(self, y_true: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
        """Task-specific held-out metrics (e.g. the ODIR challenge score)."""
        return {}

    @property
    def split_seed(self) -> int:
        seed = self.recipe.data.split_seed
        return self.recipe.seed if seed is None else seed


#: Every registered task class, by analyzer name; discovered from the public modules of
#: ``vitalens.training.tasks`` and the ``vitalens.tasks`` entry-point group.
TASKS: Registry[type[TrainingTask]] = Registry(
    "training task", packages=("vitalens.training.tasks",), group=ENTRY_POINT_GROUPS["training task"]
)


def register_task(name: str) -> Callable[[type[TrainingTask]], type[TrainingTask]]:
    """Class decorator registering a task plug-in under an analyzer name; duplicates are an error."""

    def decorator(cls: type[TrainingTask]) -> type[TrainingTask]:
        TASKS.register(name, cls)
        cls.name = name
        return cls

    return decorator


def get_task_class(name: str) -> type[TrainingTask]:
    """The registered task class; unknown names raise ``UnknownNameError`` listing the valid ones."""
    return TASKS.get(name)


def get_task(name: str, recipe: Recipe) -> TrainingTask:
    """Instantiate the task ``name`` configured by ``recipe``."""
    return get_task_class(name)(recipe)


def list_tasks(pattern: str = "*") -> list[str]:
    return TASKS.names(pattern)


def is_task(name: str) -> bool:
    return name in TASKS


def detect_synthetic(root: Path) -> bool:
    """True when ``root`` holds a synthetic-twin marker file (see :data:`SYNTHETIC_MARKERS`)."""
    root = Path(root)
    return any((root / marker).exists() for marker in SYNTHETIC_MARKERS)


def kfold_or_split(ids: np.ndarray, targets: np.ndarray, data: Any, *, seed: int) -> dict[str, np.ndarray]:
    """Patient-level train/val/test indices: ``data.fractions``, or fold ``data.fold`` of ``data.n_folds``.

    With a fold, the held-out fold is the test split and the validation split is one iteratively stratified
    fold of the remaining patients, sized by the validation share of ``data.fractions``.
    """
    from vitalens.data.splits import patient_kfold, patient_split

    if data.fold is None:
        return patient_split(ids, targets, fractions=tuple(data.fractions), seed=seed)
    rest, test = patient_kfold(ids, targets, k=data.n_folds, seed=seed)[data.fold]
    f_train, f_val, _ = data.fractions
    k_val = max(2, round((f_train + f_val) / f_val))
    train, val = patient_kfold(ids[rest], targets[rest], k=k_val, seed=seed)[0]
    return {"train": rest[train], "val": rest[val], "test": test}
