"""The single-image classification task base: one photograph or B-scan → one class or grade.

Why a base: ``fundus.dr``, ``oct.kermany4`` and ``oct.c8`` differ only in their labels, their adapters (APTOS or
RetinaMNIST; Kermany or OCTMNIST; OCT-C8), the preprocessing their modality needs (fundus: border crop, pad,
optional Ben-Graham filter; OCT: grey, stretch) and their derived findings. Reading a root into splits, building
the torch datasets, the card's input contract (with the whole preprocessing config, so the analyzer rebuilds it)
and the training-data description are shared here.

Splits (``task.splits``): ``auto`` uses the dataset's published split where it has train, val and test (MedMNIST,
OCT-C8), carves a patient-level validation split out of a published train split without one (Kermany), and
otherwise splits patients by ``data.fractions``; ``data.fold`` (cross-validation) always splits patients.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vitalens.errors import InputError
from vitalens.training.tasks._base import DataBundle, EvalSplit, TaskOptions, TrainingTask, detect_synthetic

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard, TrainingData
    from vitalens.data._image_source import ImageClassSource
    from vitalens.data.image_preprocess import ImagePreprocess

__all__ = ["SingleImageTask", "SingleImageOptions", "AugmentOptions", "AdapterChoice"]

logger = logging.getLogger(__name__)


class AugmentOptions(BaseModel):
    """Random augmentation of training images (``torchvision.transforms.v2`` ops, per-instance generator)."""

    model_config = ConfigDict(extra="forbid")

    hflip_p: float = Field(default=0.5, ge=0, le=1)
    vflip_p: float = Field(default=0.0, ge=0, le=1)
    max_rotation_deg: float = Field(default=15.0, ge=0, le=180)
    brightness: float = Field(default=0.2, ge=0, lt=1)
    contrast: float = Field(default=0.2, ge=0, lt=1)
    saturation: float = Field(default=0.1, ge=0, lt=1)
    hue: float = Field(default=0.0, ge=0, le=0.5)
    crop_scale: tuple[float, float] = (0.85, 1.0)
    crop_ratio: tuple[float, float] = (0.95, 1.05)


class SingleImageOptions(TaskOptions):
    """``task:`` options of the single-image recipes."""

    image_size: int = Field(default=224, ge=16, le=1024, description="Side the net sees, pixels.")
    augment: bool = True
    augmentation: AugmentOptions = Field(default_factory=AugmentOptions)
    mean: tuple[float, float, float] | None = Field(default=None, description="null: what the starting weights expect.")
    std: tuple[float, float, float] | None = None
    grayscale: bool | None = Field(default=None, description="null: the modality's default (OCT: yes).")
    crop_border: bool | None = Field(default=None, description="null: the modality's default (fundus: yes).")
    fit: Literal["pad", "stretch"] | None = Field(default=None, description="null: fundus pad, OCT stretch.")
    ben_graham: bool = Field(default=False, description="Ben-Graham filter after resizing (skips filtered images).")
    ben_graham_sigma_fraction: float = Field(default=10.0 / 224.0, gt=0, lt=0.5)
    interpolation: Literal["bilinear", "bicubic", "area", "nearest"] = "bilinear"
    splits: Literal["auto", "official", "patient"] = "auto"
    dataset: str = Field(default="auto", description="Adapter name, or auto: the first whose layout matches.")
    medmnist_size: int | None = Field(default=None, description="MedMNIST file size when a folder holds several.")
    cache_images: bool = True
    min_image_size: int = Field(default=64, ge=1, description="Smallest input side accepted at inference, px.")


class AdapterChoice(BaseModel):
    """One adapter a task can read: its name, class path and fixed arguments (e.g. the MedMNIST flag)."""

    name: str
    cls: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def load_class(self) -> type[ImageClassSource]:
        import importlib

        module, _, attr = self.cls.rpartition(".")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


class SingleImageTask(TrainingTask):
    """Base of the single-image tasks; subclasses set labels, problem, modality, adapters, input slot."""

    Options = SingleImageOptions
    options: SingleImageOptions
    #: Adapters in the order ``dataset: auto`` tries them.
    adapters: ClassVar[tuple[AdapterChoice, ...]] = ()
    #: The analyzer's input slot this task's images fill (``fundus``, ``oct``).
    input_slot: ClassVar[str] = "image"

    # -- data -------------------------------------------------------------------------------------------------
    def read_source(self, data_root: Path) -> ImageClassSource:
        """Open ``data_root`` with the recipe's adapter, or the first whose layout matches."""
        data_root = Path(data_root)
        if not data_root.exists():
            raise FileNotFoundError(f"{self.name} data root {data_root} does not exist")
        choices = {a.name: a for a in self.adapters}
        wanted = self.options.dataset
        if wanted != "auto":
            if wanted not in choices:
                from vitalens._naming import unknown_name_error

                raise unknown_name_error(f"{self.name} dataset", wanted, choices)
            order = [choices[wanted]]
        else:
            order = [a for a in self.adapters if a.load_class().detect(data_root)]
        if not order:
            names = ", ".join(a.name for a in self.adapters)
            raise InputError(f"{data_root} is in none of the layouts {self.name} reads ({names})", field="data")
        choice = order[0]
        kwargs = dict(choice.kwargs)
        if choice.name.startswith("medmnist") and self.options.medmnist_size:
            kwargs["size"] = self.options.medmnist_size
        source = choice.load_class()(data_root, **kwargs)
        if list(source.labels) != list(self.labels):
            raise InputError(f"{choice.name} labels {list(source.labels)} differ from {self.name}'s {self.labels}")
        logger.info("%s: reading %s with the %s adapter: %s", self.name, data_root, choice.name, source.summary())
        return source

    def provenance(self, data_root: Path) -> Literal["real", "synthetic"]:
        setting = self.recipe.data.provenance
        if setting != "auto":
            return setting
        root = Path(data_root)
        return "synthetic" if detect_synthetic(root if root.is_dir() else root.parent) else "real"

    def split_indices(self, source: ImageClassSource) -> dict[str, np.ndarray]:
        """Train/val/test sample indices (see the module text)."""
        from vitalens.data.splits import patient_split
        from vitalens.training.tasks._base import kfold_or_split

        data = self.recipe.data
        ids, targets = source.patient_ids, source.targets
        index = np.arange(len(source))
        if data.max_patients is not None:
            keep_patients = set(list(dict.fromkeys(ids.tolist()))[: data.max_patients])
            index = index[np.isin(ids, list(keep_patients))]
        mode = self.options.splits
        official = source.official_splits[index]
        has = {s for s in ("train", "val", "test") if (official == s).any()}
        if data.fold is None and mode != "patient" and {"train", "test"} <= has:
            parts = {s: index[official == s] for s in ("train", "val", "test")}
            if "val" not in has:
                # Carve validation patients out of the published train split, stratified, by the recipe's share.
                tr = parts["train"]
                f_train, f_val, _ = data.fractions
                share = f_val / (f_train + f_val)
                sub = patient_split(ids[tr], targets[tr], fractions=(1.0 - share, share, 0.0), seed=self.split_seed)
                parts["val"], parts["train"] = tr[sub["val"]], tr[sub["train"]]
            logger.info("%s: published splits %s", self.name, {k: v.size for k, v in parts.items()})
            return parts
        if mode == "official":
            raise InputError(f"{source.name} at {source.root} publishes no train/test split", field="task.splits")
        sub = kfold_or_split(ids[index], targets[index], data, seed=self.split_seed)
        return {name: index[sub[name]] for name in ("train", "val", "test")}

    @functools.cached_property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) on 0–1 RGB: the recipe's, else what the backbone's starting weights were trained with."""
        opts = self.options
        if opts.mean is not None and opts.std is not None:
            return tuple(opts.mean), tuple(opts.std)
        from vitalens.nets import create_net
        from vitalens.nets.pretrained import normalization_for

        net = self.recipe.net
        kwargs = {**net.kwargs, "num_classes": 2}
        backbone = getattr(create_net(net.name, pretrained=False, **kwargs), "backbone", "")
        mean, std = normalization_for(backbone, net.pretrained)
        return tuple(opts.mean or mean), tuple(opts.std or std)

    def preprocess(self) -> ImagePreprocess:
        """The deterministic pipeline this task trains with (and writes into the card)."""
        from vitalens.data.image_preprocess import ImagePreprocess

        o = self.options
        is_oct = self.modality == "oct"
        return ImagePreprocess(
            o.image_size,
            self.normalisation[0],
            self.normalisation[1],
            grayscale=is_oct if o.grayscale is None else o.grayscale,
            crop_border=(self.modality == "fundus") if o.crop_border is None else o.crop_border,
            fit=o.fit or ("stretch" if is_oct else "pad"),
            ben_graham={"sigma_fraction": o.ben_graham_sigma_fraction} if o.ben_graham else None,
            interpolation=o.interpolation,
        )

    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.torch_images import ImageClassTorchDataset
        from vitalens.data.transforms import FundusAugment

        source = self.read_source(data_root)
        index = self.split_indices(source)
        pre = self.preprocess()
        onehot = source.one_hot()
        opts = self.options
        splits = {}
        for name in ("train", "val", "test"):
            augment = None
            if opts.augment and name == "train":
                augment = FundusAugment(seed=self.recipe.seed, **opts.augmentation.model_dump())
            splits[name] = ImageClassTorchDataset(
                source,
                index[name],
                preprocess=pre,
                augment=augment,
                seed=self.recipe.seed,
                cache_images=opts.cache_images,
            )
        used = np.concatenate([index[s] for s in ("train", "val", "test")])
        provenance = self.provenance(data_root)
        split_kind = "official" if source.has_official_splits and self.recipe.data.fold is None else "patient"
        return DataBundle(
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            targets={name: onehot[index[name]].astype(int) for name in index},
            provenance=provenance,
            datasets=[source.name],
            n_patients=int(np.unique(source.patient_ids[used]).size),
            meta={
                "root": str(data_root),
                "source": source.summary(),
                "has_patient_ids": source.has_patient_ids,
                "split_kind": split_kind,
                "preprocess": pre.config(),
                # A published split is a property of each file; a patient split is recorded so evaluate() can
                # tell the patients seen in fitting from the others in any folder.
                "records": (
                    {n: sorted({str(p) for p in source.patient_ids[index[n]]}) for n in index}
                    if split_kind == "patient"
                    else None
                ),
            },
        )

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The images of ``split`` through the card's own preprocessing (size, crop, fit, normalisation).

        Which images: with a patient-level training split the card lists each split's patients
        (``extra.records``) and ``test`` is every image of a patient the card does not list as train or val; with
        the dataset's published split, ``test`` is the layout's test images (all images of a folder that
        publishes no split); ``all`` is every image. A card without either falls back on recomputing the split
        from the folder, and the report says so.
        """
        from vitalens.data.image_preprocess import ImagePreprocess
        from vitalens.data.torch_images import ImageClassTorchDataset

        config = (card.input.extra or {}).get("preprocess")
        if not isinstance(config, dict):
            raise InputError(f"card {card.name} holds no preprocessing config (input.extra.preprocess)")
        source = self.read_source(data_root)
        patients = source.patient_ids
        records = (card.extra or {}).get("records")
        official = source.official_splits
        kind = (card.training_data.splits or {}).get("kind")
        warnings: list[str] = []
        if split == "all":
            index, selection = np.arange(len(source)), "every image of the folder"
        elif isinstance(records, dict) and {"train", "val"} <= set(records):
            if split == "test":
                seen = [str(p) for s in ("train", "val") for p in records[s]]
                index = np.flatnonzero(~np.isin(patients, seen))
                selection = "every image of a patient the card does not list as train or val (never seen in fitting)"
            else:
                index = np.flatnonzero(np.isin(patients, [str(p) for p in records[split]]))
                selection = f"the images of the patients the card lists as {split}"
        elif kind == "official" and split == "test":
            published = bool((official != "").any())
            index = np.flatnonzero(official == "test") if published else np.arange(len(source))
            selection = "the layout's published test images" if published else "every image (no published split)"
        else:
            index = np.sort(self.split_indices(source)[split])
            selection = f"the {split} split recomputed from this folder"
            warnings.append(
                f"card {card.name} lists no split records: the {split} split was recomputed from this folder, so a "
                "folder with other images gives another split; --split all scores every image"
            )
        if index.size == 0:
            raise InputError(f"{data_root} holds no image of the {split} split of {card.name}", field="data")
        dataset = ImageClassTorchDataset(
            source, index, preprocess=ImagePreprocess.from_config(config), seed=self.recipe.seed, cache_images=False
        )
        return EvalSplit(
            dataset=dataset,
            targets=source.one_hot()[index].astype(int),
            groups={},
            provenance=self.provenance(data_root),
            n_patients=int(np.unique(patients[index]).size),
            selection=selection + "; the card's preprocessing",
            n_excluded=int(len(source) - index.size),
            warnings=warnings,
        )

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["image"])

    def batch_meta(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return {"sample_id": list(batch["sample_id"]), "patient_id": list(batch["patient_id"])}

    # -- card -------------------------------------------------------------------------------------------------
    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec

        pre = bundle.meta["preprocess"]
        size = pre["size"]
        return InputSpec(
            modality=self.modality,  # type: ignore[arg-type]
            channels=3,
            size=(size, size),
            min_size=min(self.options.min_image_size, size),
            dtype="uint8",
            value_range=(0.0, 255.0),
            mean=list(pre["mean"]),
            std=list(pre["std"]),
            resize_allowed=True,
            extra={"inputs": [self.input_slot], "preprocess": pre},
        )

    def training_data(self, bundle: DataBundle) -> TrainingData:
        td = super().training_data(bundle)
        src = bundle.meta["source"]
        unit = "patient" if bundle.meta["has_patient_ids"] else "image (the dataset names no patient)"
        how = (
            "the dataset's published train/val/test split"
            if bundle.meta["split_kind"] == "official"
            else f"{unit}-level {'/'.join(str(f) for f in self.recipe.data.fractions)} split"
        )
        prefix = "Synthetic twin of " if bundle.provenance == "synthetic" else ""
        td.splits["unit"] = unit
        td.splits["kind"] = bundle.meta["split_kind"]
        td.description = (
            f"{prefix}{src['dataset']}: {src['n_samples']} images of {src['n_patients']} "
            f"{'patients' if bundle.meta['has_patient_ids'] else 'images-as-patients'}, classes {src['classes']}; "
            f"{how}; thresholds and calibration fitted on val, metrics on test."
        )
        return td

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        extra: dict[str, Any] = {"dataset_summary": bundle.meta["source"], "input_slot": self.input_slot}
        if bundle.meta.get("records"):
            extra["records"] = bundle.meta["records"]
        return extra
