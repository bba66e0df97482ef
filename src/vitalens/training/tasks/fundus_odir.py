"""The ``fundus.odir`` training task: ODIR-5K, both eyes and age, 8 patient-level labels.

Why a plug-in: the engine knows nothing of eyes or ages; this module reads the ODIR root into patient-level
stratified splits, z-scores age with statistics of the TRAINING split only (stored in the card so inference
uses the same numbers), and runs the bilateral fusion net ``net(left, right, age)``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vitalens.errors import InputError
from vitalens.training.tasks._base import DataBundle, EvalSplit, TaskOptions, TrainingTask, register_task

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard

__all__ = ["FundusOdirTask", "FundusOdirOptions", "FrozenTrunkOptions", "FrozenHeadOptions", "age_band"]

logger = logging.getLogger(__name__)


#: Age bands of the subgroup report, years: [lower, upper).
AGE_BANDS: tuple[tuple[str, float, float], ...] = (("<50", 0, 50), ("50-64", 50, 65), ("65+", 65, 200))


def age_band(age_years: float) -> str:
    """Band of an age for the subgroup report: ``<50``, ``50-64`` or ``65+`` (lower edge inclusive)."""
    from vitalens.data.splits import age_band as _band

    return _band(age_years, AGE_BANDS)


class FrozenHeadOptions(BaseModel):
    """The head recipe of a frozen-trunk run (see :class:`vitalens.training.odir_heads.HeadConfig`)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    drop_rate: float = Field(default=0.3, ge=0, lt=1)
    feature_dropout: float = Field(default=0.2, ge=0, lt=1)
    age_dim: int = Field(default=32, ge=1)
    head_hidden: tuple[int, int] = (512, 128)
    aux_weight: float = Field(default=0.0, ge=0, description="Weight of the per-eye keyword targets' loss.")
    derived_normal: bool = Field(default=False, description="N is 'no other label' instead of a learned logit.")
    train_views: tuple[str, ...] = ("id",)
    test_views: tuple[str, ...] = ("id",)
    n_members: int = Field(default=1, ge=1, description="Heads per fold (seeds), all shipped and averaged.")


class FrozenTrunkOptions(BaseModel):
    """``task.frozen_trunk``: train heads on cached features of the frozen pretrained trunk, k-fold, out-of-fold
    calibration (:mod:`vitalens.training.odir_frozen`)."""

    model_config = ConfigDict(extra="forbid")

    cache_dir: str | None = Field(default=None, description="Feature cache; null: <out>/feature-cache.")
    head: FrozenHeadOptions = Field(default_factory=FrozenHeadOptions)

    def head_config(self, seed: int) -> Any:
        from vitalens.training.odir_heads import HeadConfig

        return HeadConfig(**self.head.model_dump(), seed=seed)


class FundusOdirOptions(TaskOptions):
    """``task:`` options of ``fundus.odir`` recipes."""

    image_size: int = Field(default=224, ge=32, le=1024, description="Side the net sees, pixels.")
    augment: bool = True
    mean: tuple[float, float, float] | None = Field(
        default=None, description="Per-channel mean on 0–1 RGB; null: what the net's starting weights expect."
    )
    std: tuple[float, float, float] | None = Field(
        default=None, description="Per-channel std on 0–1 RGB; null: what the net's starting weights expect."
    )
    cache_images: bool = True
    min_image_size: int = Field(default=128, ge=1, description="Smallest input side accepted at inference, px.")
    frozen_trunk: FrozenTrunkOptions | None = Field(
        default=None, description="Train k-fold heads on the frozen trunk's cached features instead of fine-tuning."
    )


@register_task("fundus.odir")
class FundusOdirTask(TrainingTask):
    """ODIR-5K multi-label screening from both fundus photographs and the patient's age."""

    @functools.cached_property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) on 0–1 RGB: the recipe's, else what the backbone's starting weights were trained with.

        The offline Lite0 weights expect TF-Lite's (x − 127) / 128, not ImageNet's statistics; a mismatch costs
        accuracy silently, so the default follows the weights (``vitalens.nets.pretrained.normalization_for``).
        """
        opts = self.options
        if opts.mean is not None and opts.std is not None:
            return tuple(opts.mean), tuple(opts.std)
        from vitalens.nets import create_net
        from vitalens.nets.pretrained import normalization_for

        net = self.recipe.net
        backbone = getattr(create_net(net.name, pretrained=False, **net.kwargs), "backbone", "")
        mean, std = normalization_for(backbone, net.pretrained)
        return tuple(opts.mean or mean), tuple(opts.std or std)

    labels = ["N", "D", "G", "C", "A", "H", "M", "O"]
    label_names = {
        "N": "Normal",
        "D": "Diabetic retinopathy",
        "G": "Glaucoma",
        "C": "Cataract",
        "A": "Age-related macular degeneration",
        "H": "Hypertensive retinopathy",
        "M": "Pathological myopia",
        "O": "Other abnormalities",
    }
    Options = FundusOdirOptions
    modality = "fundus"
    default_intended_use = (
        "Research and decision support: flags fundus photograph pairs (left and right eye, adult patients) for "
        "review by an eye-care professional for 8 ODIR-5K categories. Not a diagnosis."
    )
    default_limitations = (
        "ODIR-5K comes from Chinese hospitals with mixed cameras; labels are per patient, not per eye; 'Other' is "
        "heterogeneous; hypertension and AMD are rare. Performance on other populations, cameras or image quality "
        "is unknown. Decision support only."
    )
    options: FundusOdirOptions

    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.odir import ODIR_LABELS, OdirDataset
        from vitalens.data.torch_odir import BilateralOdirDataset, age_stats
        from vitalens.training.tasks._base import kfold_or_split

        if list(ODIR_LABELS) != self.labels:
            raise RuntimeError(f"ODIR adapter labels {ODIR_LABELS} differ from the task's {self.labels}")
        data_root = Path(data_root)
        if not data_root.exists():
            raise FileNotFoundError(f"ODIR data root {data_root} does not exist")
        dataset = OdirDataset(data_root)
        keep = np.arange(len(dataset))
        if self.recipe.data.max_patients is not None:
            keep = keep[: self.recipe.data.max_patients]
        ids, targets = dataset.patient_ids[keep], dataset.targets[keep]
        parts = kfold_or_split(ids, targets, self.recipe.data, seed=self.split_seed)
        index = {name: keep[parts[name]] for name in ("train", "val", "test")}
        age_mean, age_std = age_stats(dataset.ages[index["train"]])
        opts = self.options
        common: dict[str, Any] = {
            "size": opts.image_size,
            "mean": self.normalisation[0],
            "std": self.normalisation[1],
            "age_mean": age_mean,
            "age_std": age_std,
            "cache_images": opts.cache_images,
        }
        splits = {
            name: BilateralOdirDataset(
                dataset, index[name], augment=opts.augment and name == "train", seed=self.recipe.seed, **common
            )
            for name in ("train", "val", "test")
        }
        ages, sexes = dataset.ages, dataset.sexes
        groups = {
            name: {
                "sex": sexes[index[name]],
                "age_band": np.asarray([age_band(float(a)) for a in ages[index[name]]]),
            }
            for name in ("train", "val", "test")
        }
        provenance = self.provenance(data_root)
        logger.info(
            "fundus.odir: %d patients (%s) → train %d / val %d / test %d; age mean %.1f, std %.1f (train)",
            keep.size,
            provenance,
            index["train"].size,
            index["val"].size,
            index["test"].size,
            age_mean,
            age_std,
        )
        return DataBundle(
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            targets={name: targets_of(dataset.targets, index[name]) for name in index},
            provenance=provenance,
            datasets=["ODIR-5K"],
            n_patients=int(keep.size),
            groups=groups,
            meta={
                "age_mean": float(age_mean),
                "age_std": float(age_std),
                "root": str(data_root),
                "records": {name: [str(i) for i in dataset.patient_ids[index[name]]] for name in index},
            },
        )

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The records of ``split`` preprocessed with the card's image size, normalisation and age statistics.

        Which records: the card lists the patient IDs of each training split (``extra.records``). ``test`` is
        every record of the folder the card does *not* list as train or val — the held-out patients of the
        training dataset, and all of an external dataset — so the other records of the folder never change the
        result; ``train``/``val`` are the card's own lists; ``all`` is every record. A card that lists no records
        (made before they were recorded) falls back on recomputing the split from the folder, and the report
        says so.
        """
        from vitalens.data.odir import OdirDataset
        from vitalens.data.torch_odir import BilateralOdirDataset

        data_root = Path(data_root)
        if not data_root.exists():
            raise FileNotFoundError(f"ODIR data root {data_root} does not exist")
        age_mean, age_std = _card_age_stats(card)
        if card.input.size is None or card.input.mean is None or card.input.std is None:
            raise InputError(f"card {card.name} holds no input size or normalisation", field="artifact")
        dataset = OdirDataset(data_root)
        ids = np.asarray([str(i) for i in dataset.patient_ids])
        records = (card.extra or {}).get("records")
        warnings: list[str] = []
        if split == "all":
            index, selection = np.arange(len(dataset)), "every record of the folder"
        elif isinstance(records, dict) and {"train", "val"} <= set(records):
            seen = {str(i) for s in ("train", "val") for i in records[s]}
            if split == "test":
                index = np.flatnonzero(~np.isin(ids, list(seen)))
                selection = "every record whose ID the card does not list as train or val (never seen in fitting)"
            else:
                index = np.flatnonzero(np.isin(ids, [str(i) for i in records[split]]))
                selection = f"the records the card lists as {split}"
        else:
            from vitalens.training.tasks._base import kfold_or_split

            parts = kfold_or_split(dataset.patient_ids, dataset.targets, self.recipe.data, seed=self.split_seed)
            index = np.sort(parts[split])
            selection = f"the {split} split recomputed from this folder with the card's split seed"
            warnings.append(
                f"card {card.name} lists no split records: the {split} split was recomputed from this folder, so a "
                "folder with other records gives another split; --split all scores every record"
            )
        if index.size == 0:
            raise InputError(f"{data_root} holds no record of the {split} split of {card.name}", field="data")
        torch_ds = BilateralOdirDataset(
            dataset,
            index,
            size=int(card.input.size[0]),
            mean=tuple(card.input.mean),
            std=tuple(card.input.std),
            age_mean=age_mean,
            age_std=age_std,
            augment=False,
            seed=self.recipe.seed,
            cache_images=False,
        )
        return EvalSplit(
            dataset=torch_ds,
            targets=targets_of(dataset.targets, index),
            groups={
                "sex": dataset.sexes[index],
                "age_band": np.asarray([age_band(float(a)) for a in dataset.ages[index]]),
            },
            provenance=self.provenance(data_root),
            n_patients=int(index.size),
            selection=selection + "; the card's image size, normalisation and age statistics",
            n_excluded=int(len(dataset) - index.size),
            warnings=warnings,
        )

    def run_training(self, *, data_root: Path, out: Path, resume: bool = False) -> Path | None:
        """A frozen-trunk recipe is its own staged run (:mod:`vitalens.training.odir_frozen`); else the engine's."""
        if self.options.frozen_trunk is None:
            return None
        from vitalens.training.odir_frozen import train_frozen_odir

        return train_frozen_odir(self, data_root=Path(data_root), out=Path(out))

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["left"], batch["right"], batch["age"])

    def batch_meta(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return {"patient_id": list(batch["patient_id"])}

    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec

        size = self.options.image_size
        return InputSpec(
            modality="fundus",
            channels=3,
            size=(size, size),
            min_size=min(self.options.min_image_size, size),
            dtype="uint8",
            value_range=(0.0, 255.0),
            mean=list(self.normalisation[0]),
            std=list(self.normalisation[1]),
            resize_allowed=True,
            extra={
                "inputs": ["fundus_left", "fundus_right", "age"],
                "preprocess": "crop black border, pad to square, resize, scale to [0, 1], normalise",
                "age_mean": bundle.meta["age_mean"],
                "age_std": bundle.meta["age_std"],
                "age_stats_from": "train split",
            },
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        return {
            "age_mean": bundle.meta["age_mean"],
            "age_std": bundle.meta["age_std"],
            "records": bundle.meta["records"],
        }

    def extra_metrics(self, y_true: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
        from vitalens.training.metrics import odir_challenge_score

        return {"odir_score": odir_challenge_score(y_true, probs, thresholds)}


def _card_age_stats(card: ModelCard) -> tuple[float, float]:
    """(age mean, age std) in years the card's model was trained with (``extra``, else ``input.extra``)."""
    for where in (card.extra or {}, card.input.extra or {}):
        if where.get("age_mean") is not None and where.get("age_std"):
            return float(where["age_mean"]), float(where["age_std"])
    raise InputError(f"card {card.name} holds no age statistics (age_mean, age_std)", field="artifact")


def targets_of(targets: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` of the ``(N, 8)`` target matrix as int 0/1."""
    return np.asarray(targets[index]).astype(int)
