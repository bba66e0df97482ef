"""The ``cxr.anomaly`` training task: chest radiographs, trained on normal images only, scored for abnormality.

Why a task of its own with its own training run: the engine's loop fits a classifier end to end on labelled
images. This design is staged — a frozen encoder's features, a VAE fitted to *normal* features, a scorer on the
VAE latent, statistics of the training normals — so :meth:`CxrAnomalyTask.run_training` hands the run to
:func:`vitalens.training.anomaly.train_anomaly`. Everything else is the ordinary task contract: the same
``build_data`` (splits), ``forward`` (one logit per image: the shipped anomaly score) and ``input_spec`` serve
``vitalens evaluate`` and the bench unchanged.

Data (``--data``): a COVID-19 Radiography Database folder (``<Class>/images/*.png``) or a PneumoniaMNIST
``.npz`` (the file, or a folder holding ``pneumoniamnist*.npz``).

- COVID-19 Radiography: the Normal images are split image-level by ``data.fractions`` into train/val/test; each
  abnormal class is split by ``task.anomaly_val_fraction`` into val and test. **No abnormal image is ever in the
  training split.** The validation anomalies choose the operating threshold (Youden's J) and, with
  ``task.output: auto``, which of the normal-only scores ships; with ``task.scorer.anomalies: labelled`` (the design's
  variant) the scorer also trains on half of them, and the card says so.
- PneumoniaMNIST: the published splits; the training split's pneumonia images are dropped (normals only), val and
  test are as published.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vitalens.training.tasks._base import (
    DataBundle,
    EvalSplit,
    TaskOptions,
    TrainingTask,
    detect_synthetic,
    register_task,
)

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard, TrainingData

__all__ = ["CxrAnomalyTask", "CxrAnomalyOptions", "ScorerOptions", "cxr_layout"]

logger = logging.getLogger(__name__)

ScorerAnomalies = Literal["synthetic_feature", "synthetic_image", "labelled"]


class ScorerOptions(BaseModel):
    """How the latent scorer is trained (``task.scorer``)."""

    model_config = ConfigDict(extra="forbid")

    anomalies: ScorerAnomalies = Field(
        default="synthetic_feature",
        description="Positives of the scorer: perturbed normal features (normal-only), opacities painted on normal "
        "radiographs (normal-only), or real labelled anomalies (half the validation anomalies: the design's variant).",
    )
    per_normal: float = Field(default=1.0, gt=0, le=10, description="Synthetic anomalies per training normal.")
    image_copies: int = Field(default=2, ge=1, le=10, description="synthetic_image: painted copies per normal.")
    max_epochs: int = Field(default=200, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    batch_size: int = Field(default=64, ge=2)
    early_stopping_patience: int = Field(default=20, ge=1)


class CxrAnomalyOptions(TaskOptions):
    """``task:`` options of ``cxr.anomaly`` recipes."""

    image_size: int = Field(default=224, ge=32, le=1024, description="Side the encoder sees, pixels.")
    mean: tuple[float, float, float] | None = Field(
        default=None, description="null: what the encoder's weights expect."
    )
    std: tuple[float, float, float] | None = Field(default=None, description="null: what the encoder's weights expect.")
    anomaly_val_fraction: float = Field(
        default=0.3, gt=0, lt=1, description="Share of each abnormal class in validation (the rest is test)."
    )
    classes: list[str] | None = Field(default=None, description="COVID-19 Radiography classes to read (null: all).")
    augment_copies: int = Field(
        default=0, ge=0, le=20, description="Augmented views per training normal added to the VAE's training features."
    )
    scorer: ScorerOptions = Field(default_factory=ScorerOptions)
    output: str = Field(default="auto", description="The shipped score, or 'auto': best of auto_candidates on val.")
    auto_candidates: list[str] = Field(default_factory=lambda: ["fusion", "mahalanobis", "knn"])
    knn_k: int = Field(default=5, ge=1)
    n_boot: int = Field(default=2000, ge=100, description="Bootstrap replicates of the reported intervals.")
    feature_cache: str | None = Field(
        default=None, description="Folder caching the frozen encoder's features (null: OUT/feature-cache)."
    )
    min_image_size: int = Field(default=64, ge=16, description="Smallest input side accepted at inference, pixels.")

    @field_validator("output")
    @classmethod
    def _known_output(cls, v: str) -> str:
        from vitalens.nets.cxr_anomaly import ANOMALY_OUTPUTS

        if v != "auto" and v not in ANOMALY_OUTPUTS:
            raise ValueError(f"output must be 'auto' or one of {list(ANOMALY_OUTPUTS)}, got '{v}'")
        return v

    @field_validator("auto_candidates")
    @classmethod
    def _known_candidates(cls, v: list[str]) -> list[str]:
        from vitalens.nets.cxr_anomaly import ANOMALY_OUTPUTS

        bad = [c for c in v if c not in ANOMALY_OUTPUTS]
        if bad or not v:
            raise ValueError(f"auto_candidates must be a non-empty subset of {list(ANOMALY_OUTPUTS)}, got {v}")
        return v


def cxr_layout(data_root: Path) -> Literal["covid_radiography", "pneumoniamnist"]:
    """Which published layout ``data_root`` holds.

    Raises:
        InputError: neither (the message says what each layout looks like).
    """
    from vitalens.data.covid_radiography import is_covid_radiography_root
    from vitalens.data.medmnist import MedMnistDataset
    from vitalens.errors import InputError

    root = Path(data_root)
    if root.is_dir() and is_covid_radiography_root(root):
        return "covid_radiography"
    if root.exists() and MedMnistDataset.detect(root):
        return "pneumoniamnist"
    raise InputError(
        f"{root} is neither a COVID-19 Radiography Database folder (<Class>/images/*.png with Normal and another "
        "class) nor a PneumoniaMNIST .npz (or a folder holding pneumoniamnist.npz)",
        field="data",
    )


@register_task("cxr.anomaly")
class CxrAnomalyTask(TrainingTask):
    """Chest X-ray anomaly detection trained on normal radiographs only (one output: the anomaly score)."""

    labels = ["anomaly"]
    label_names = {"anomaly": "Abnormal chest radiograph (anomaly score)"}
    modality = "cxr"
    Options = CxrAnomalyOptions
    options: CxrAnomalyOptions
    default_intended_use = (
        "Research and decision support: flags posteroanterior chest radiographs that differ from the normal "
        "radiographs the model was fitted on, for a clinician to review first. Not a diagnosis, and not specific to "
        "any disease: it scores 'unlike the normals', whatever the cause."
    )
    default_limitations = (
        "Trained on one public database's normal radiographs; an image from another hospital, device, age group or "
        "projection can score high because it is unfamiliar, not because it is diseased. The score is an anomaly "
        "score, not a calibrated probability of disease. Splits are image-level (the database publishes no patient "
        "ids)."
    )

    def __init__(self, recipe: Any) -> None:
        super().__init__(recipe)
        #: Filled by the staged training: the shipped output and the kNN bank size (both rebuild the net).
        self.fitted: dict[str, Any] = {}

    # -- data -------------------------------------------------------------------------------------------------
    @functools.cached_property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) on 0–1: the recipe's, else what the encoder's starting weights expect."""
        opts = self.options
        if opts.mean is not None and opts.std is not None:
            return tuple(opts.mean), tuple(opts.std)
        from vitalens.nets.pretrained import normalization_for

        mean, std = normalization_for(self.backbone, self.recipe.net.pretrained)
        return tuple(opts.mean or mean), tuple(opts.std or std)

    @functools.cached_property
    def backbone(self) -> str:
        from vitalens.nets import create_net

        net = create_net(self.recipe.net.name, pretrained=False, **self.recipe.net.kwargs)
        return str(net.encoder.backbone)

    def preprocess(self) -> Any:
        from vitalens.data.cxr_transforms import CxrPreprocess

        mean, std = self.normalisation
        return CxrPreprocess(self.options.image_size, mean, std)

    def provenance(self, data_root: Path) -> Literal["real", "synthetic"]:
        """As the base, but an ``.npz`` path is judged by the folder holding it."""
        setting = self.recipe.data.provenance
        if setting != "auto":
            return setting
        root = Path(data_root)
        return "synthetic" if detect_synthetic(root if root.is_dir() else root.parent) else "real"

    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.torch_cxr import CxrImageDataset

        data_root = Path(data_root)
        if not data_root.exists():
            raise FileNotFoundError(f"chest X-ray data root {data_root} does not exist")
        layout = cxr_layout(data_root)
        samples, datasets, meta = (
            self._covid_samples(data_root) if layout == "covid_radiography" else self._pneumoniamnist_samples(data_root)
        )
        pre = self.preprocess()
        splits = {name: CxrImageDataset(samples[name], pre) for name in ("train", "val", "test")}
        counts = {
            name: {cls: int((ds.classes == cls).sum()) for cls in sorted(set(ds.classes.tolist()))}
            for name, ds in splits.items()
        }
        if splits["train"].targets.sum() != 0:  # pragma: no cover - guarded by construction
            raise RuntimeError("an abnormal image reached the training split of cxr.anomaly")
        provenance = self.provenance(data_root)
        logger.info("cxr.anomaly: %s (%s) → %s", layout, provenance, counts)
        return DataBundle(
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            targets={name: ds.targets for name, ds in splits.items()},
            provenance=provenance,
            datasets=datasets,
            n_patients=int(sum(len(ds) for ds in splits.values())),
            groups={name: {"class": ds.classes} for name, ds in splits.items()},
            meta={
                "layout": layout,
                "root": str(data_root),
                "class_counts": counts,
                # Neither database names patients: every count is of images (the card must not say "patients").
                "has_patient_ids": False,
                # The COVID-19 Radiography split is drawn here: recorded so evaluate() re-scores exactly the test
                # images; PneumoniaMNIST's is published (a property of each image) and needs no list.
                "records": (
                    {name: ds.image_ids.tolist() for name, ds in splits.items()}
                    if layout == "covid_radiography"
                    else None
                ),
                **meta,
            },
        )

    def _cap(self, n: int) -> int:
        cap = self.recipe.data.max_patients
        return n if cap is None else min(n, cap)

    def _covid_samples(self, root: Path) -> tuple[dict[str, list[Any]], list[str], dict[str, Any]]:
        from vitalens.data.covid_radiography import CXR_NORMAL, CovidRadiographyDataset
        from vitalens.data.torch_cxr import CxrSample
        from vitalens.errors import InputError

        ds = CovidRadiographyDataset(root, classes=self.options.classes)
        rng = np.random.default_rng(self.split_seed)
        f_train, f_val, _ = self.recipe.data.fractions
        out: dict[str, list[Any]] = {"train": [], "val": [], "test": []}
        for cls in ds.classes:
            records = [r for r in ds.records if r.cls == cls]
            order = rng.permutation(len(records))[: self._cap(len(records))]
            picked = [records[i] for i in order]
            n = len(picked)
            if cls == CXR_NORMAL:
                n_train, n_val = round(n * f_train), round(n * f_val)
                parts = {
                    "train": picked[:n_train],
                    "val": picked[n_train : n_train + n_val],
                    "test": picked[n_train + n_val :],
                }
            else:
                n_val = round(n * self.options.anomaly_val_fraction)
                parts = {"train": [], "val": picked[:n_val], "test": picked[n_val:]}
            for split, recs in parts.items():
                out[split].extend(CxrSample(r.path, r.anomaly, r.image_id, r.cls) for r in recs)
        if not any(s.target for s in out["test"]):
            raise InputError(f"{root} has no abnormal class with images: nothing to test against", field="data")
        for split in ("train", "val", "test"):
            if not any(s.target == 0 for s in out[split]):
                raise InputError(f"the {split} split has no Normal image; {root} has too few", field="data")
        return out, ["COVID-19 Radiography Database"], {"unit": "image"}

    def _pneumoniamnist_samples(self, root: Path) -> tuple[dict[str, list[Any]], list[str], dict[str, Any]]:
        """The published splits of the MedMNIST file (i13's adapter); training pneumonias dropped."""
        from vitalens.data.medmnist import MedMnistDataset
        from vitalens.data.torch_cxr import CxrSample

        pm = MedMnistDataset(root, flag="pneumoniamnist")
        labels, splits = pm.targets, pm.official_splits
        out: dict[str, list[Any]] = {}
        dropped = int(((splits == "train") & (labels == 1)).sum())
        for split in ("train", "val", "test"):
            keep = np.flatnonzero(splits == split)
            if split == "train":
                keep = keep[labels[keep] == 0]
                keep = keep[: self._cap(keep.size)]
            else:
                keep = self._cap_per_class(labels, keep)
            out[split] = [
                CxrSample(pm.image(int(i), "L"), int(labels[i]), pm[int(i)].sample_id, pm.labels[int(labels[i])])
                for i in keep
            ]
        meta = {"unit": "image", "image_size_source": pm.size, "train_pneumonia_dropped": dropped}
        return out, [f"PneumoniaMNIST ({pm.size} px, MedMNIST v2)"], meta

    def _cap_per_class(self, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
        cap = self.recipe.data.max_patients
        if cap is None:
            return keep
        return np.sort(np.concatenate([keep[labels[keep] == c][:cap] for c in (0, 1)]))

    def training_data(self, bundle: DataBundle) -> TrainingData:
        from vitalens.artifacts import TrainingData

        counts = bundle.meta["class_counts"]
        train_n = sum(counts["train"].values())
        val_abn = {c: n for c, n in counts["val"].items() if c.lower() != "normal"}
        labelled = self.options.scorer.anomalies == "labelled"
        fitted = (
            f"Fitted on {train_n} NORMAL radiographs only (no abnormal image in training)"
            if not labelled
            else f"VAE and statistics fitted on {train_n} NORMAL radiographs; the latent scorer (design variant) "
            f"ALSO trained on half of the validation anomalies {val_abn}, so this is not a normal-only model"
        )
        described = (
            f"{'Synthetic twin of ' if bundle.provenance == 'synthetic' else ''}{', '.join(bundle.datasets)}. "
            f"{fitted}. Validation {counts['val']} chose the threshold"
            f"{' and the shipped score' if self.options.output == 'auto' else ''}; test {counts['test']} was scored "
            "once. Splits are image-level."
        )
        return TrainingData(
            datasets=bundle.datasets,
            provenance=bundle.provenance,
            n_patients=None,
            n_samples=int(sum(len(bundle.split(s)) for s in ("train", "val", "test"))),
            splits={
                "unit": "image",
                "kind": "official" if bundle.meta["layout"] == "pneumoniamnist" else "image",
                "normal_fractions": list(self.recipe.data.fractions),
                "anomaly_val_fraction": self.options.anomaly_val_fraction,
                "seed": self.split_seed,
                "sizes": bundle.split_sizes,
                "class_counts": counts,
            },
            description=described,
        )

    # -- model ------------------------------------------------------------------------------------------------
    def net_kwargs(self) -> dict[str, Any]:
        """The recipe's net kwargs plus what training fixed (shipped output, kNN bank): the card rebuilds it."""
        kwargs = dict(self.recipe.net.kwargs)
        kwargs.setdefault("knn_k", self.options.knn_k)
        kwargs.update(self.fitted.get("net_kwargs", {}))
        return kwargs

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["image"])

    def batch_meta(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return {"image_id": list(batch["image_id"]), "class": list(batch["cls"])}

    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec

        size = self.options.image_size
        mean, std = self.normalisation
        return InputSpec(
            modality="cxr",
            channels=3,
            size=(size, size),
            min_size=min(self.options.min_image_size, size),
            dtype="uint8",
            value_range=(0.0, 255.0),
            mean=list(mean),
            std=list(std),
            resize_allowed=True,
            extra={
                "inputs": ["cxr"],
                "view": "posteroanterior chest radiograph",
                "accepts": "grayscale or RGB uint8 (converted to grayscale, replicated to the 3 channels the net sees)",
                "preprocess": "grayscale (RGB converted by luma), centre square crop, resize (area), replicated to "
                "3 channels, scale to [0, 1], normalise",
            },
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        extra = dict(self.fitted.get("card_extra", {}))
        if bundle.meta.get("records"):
            extra["records"] = bundle.meta["records"]
        return extra

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The images of ``split`` as the card recorded it, through the card's preprocessing.

        COVID-19 Radiography: the card lists each split's image ids (``extra.records``); ``train``/``val`` are the
        listed images and ``test`` every image of the folder the card does not list as train or val (never seen in
        fitting, threshold or the choice of the shipped score). PneumoniaMNIST: the published split of each image
        (``train``: its normals, the ones fitted). ``all``: every image. A card recording neither (made before the
        split was recorded) falls back on the base class's rebuild, with its warning.
        """
        from vitalens.data.torch_cxr import CxrImageDataset
        from vitalens.errors import InputError

        root = Path(data_root)
        if not root.exists():
            raise FileNotFoundError(f"chest X-ray data root {root} does not exist")
        layout = cxr_layout(root)
        records = (card.extra or {}).get("records")
        kind = (card.training_data.splits or {}).get("kind")
        if layout == "covid_radiography" and isinstance(records, dict) and {"train", "val"} <= set(records):
            samples, total = self._covid_recorded(root, records, split)
            selection = {
                "all": "every image of the folder",
                "test": "every image the card does not list as train or val (never seen in fitting)",
            }.get(split, f"the images the card lists as {split}")
        elif layout == "pneumoniamnist" and kind == "official":
            parts, _, _ = self._pneumoniamnist_samples(root)
            names = ("train", "val", "test") if split == "all" else (split,)
            samples = [s for n in names for s in parts[n]]
            total = sum(len(v) for v in parts.values())
            selection = (
                "every image of the published splits (training pneumonias dropped)"
                if split == "all"
                else (
                    f"the published {split} split" + (" (its normals: the images fitted)" if split == "train" else "")
                )
            )
        else:
            return super().build_eval_split(data_root, card, split)
        if not samples:
            raise InputError(f"{root} holds no image of the {split} split of {card.name}", field="data")
        dataset = CxrImageDataset(samples, self.preprocess())
        return EvalSplit(
            dataset=dataset,
            targets=dataset.targets,
            groups={"class": dataset.classes},
            provenance=self.provenance(root),
            n_patients=len(dataset),  # no patient ids: every image is its own unit
            selection=selection + "; the card's preprocessing (images: the database names no patient)",
            n_excluded=int(total - len(dataset)),
        )

    def _covid_recorded(self, root: Path, records: dict[str, Any], split: str) -> tuple[list[Any], int]:
        """The samples of ``split`` by the card's lists, and how many images the folder holds."""
        from vitalens.data.covid_radiography import CovidRadiographyDataset
        from vitalens.data.torch_cxr import CxrSample

        recs = list(CovidRadiographyDataset(root, classes=self.options.classes).records)
        if split == "all":
            chosen = recs
        elif split == "test":
            seen = {str(i) for s in ("train", "val") for i in records[s]}
            chosen = [r for r in recs if r.image_id not in seen]
        else:
            wanted = {str(i) for i in records[split]}
            chosen = [r for r in recs if r.image_id in wanted]
        return [CxrSample(r.path, r.anomaly, r.image_id, r.cls) for r in chosen], len(recs)

    # -- the staged run -----------------------------------------------------------------------------------------
    def run_training(self, *, data_root: Path, out: Path, resume: bool = False) -> Path | None:
        """Staged training (features → VAE → scorer → statistics → threshold); see :mod:`vitalens.training.anomaly`."""
        from vitalens.training.anomaly import train_anomaly

        return train_anomaly(self, data_root=Path(data_root), out=Path(out), resume=resume)
