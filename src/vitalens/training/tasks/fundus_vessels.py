"""The ``fundus.vessels`` training task: DRIVE photographs → per-pixel vessel probability (a segmentation task).

Why patches: 20 training photographs are too few images but millions of labelled pixels; random 64 × 64 patches
centred inside the field of view (flipped, rotated and intensity-jittered) give a small U-Net enough variety,
and a patch fits a CPU batch. Why whole images for validation and test: the metrics of the literature are over
every field-of-view pixel of the 20 test images, so the task evaluates exactly that, with the same
:func:`vitalens.vessels.segment.net_vessel_probability` the analyzer uses.

Splits: DRIVE's own ``test/`` split (20 images, first observer as truth) is the held-out test set and is never
used to choose anything; ``val_images`` of the 20 ``training/`` images (seeded choice) pick the best epoch and the
threshold; the rest train. Each image is its own patient (DRIVE has no patient ids).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from vitalens.training.tasks._base import DataBundle, EvalSplit, TaskOptions, TrainingTask, register_task

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard

__all__ = ["FundusVesselsTask", "FundusVesselsOptions", "VesselPatches", "prepare_drive_image"]

logger = logging.getLogger(__name__)


class FundusVesselsOptions(TaskOptions):
    """``task:`` options of ``fundus.vessels`` recipes."""

    patch_size: int = Field(default=64, ge=16, le=512, description="Side of a training patch, pixels.")
    patches_per_epoch: int = Field(default=2048, ge=8, description="Random patches drawn per training epoch.")
    val_images: int = Field(default=4, ge=1, description="DRIVE training images held out for validation.")
    observer: int = Field(default=1, ge=1, le=2, description="Whose manual segmentation is the truth (1 or 2).")
    augment: bool = True
    fov_diameter_px: float | None = Field(
        default=None, gt=0, description="Resample images so the field of view is this wide; null: the data's median."
    )
    clip_limit: float = Field(default=0.01, gt=0, lt=1, description="CLAHE clip limit of the green channel.")
    flip_average: bool = Field(default=True, description="Average the net over the image and its mirror.")
    min_image_size: int = Field(default=128, ge=16, description="Smallest input side accepted at inference, px.")


def prepare_drive_image(record: Any, *, fov_diameter_px: float | None, clip_limit: float, observer: int = 1) -> dict:
    """One DRIVE record → ``{"channel", "vessels", "fov", "image_id"}`` at the reference scale.

    The shipped FOV mask is used (it is what the published metrics are computed inside); images are resampled only
    when ``fov_diameter_px`` asks for another field-of-view width (the masks with nearest neighbour).
    """
    from PIL import Image

    from vitalens.vessels.preprocess import fov_diameter_px as width_of
    from vitalens.vessels.preprocess import vessel_channel

    image, fov, vessels = record.image(), record.fov(), record.vessels(observer)
    if fov_diameter_px is not None:
        factor = fov_diameter_px / max(width_of(fov), 1.0)
        if abs(factor - 1.0) >= 0.02:
            h, w = image.shape[:2]
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
            fov = np.asarray(Image.fromarray(fov.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127
            vessels = (
                np.asarray(Image.fromarray(vessels.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR))
                > 127
            )
    return {
        "channel": vessel_channel(image, fov, clip_limit=clip_limit),
        "vessels": vessels & fov,
        "fov": fov,
        "image_id": record.image_id,
    }


class VesselPatches:
    """Random training patches from prepared images: ``{"image": (1, P, P), "target": (1, P, P), "fov": (1, P, P)}``.

    Each item is a fresh draw from the dataset's own generator (seeded; no global RNG): an image at random, a centre
    pixel at random inside its field of view, then (with ``augment``) a random flip, quarter turn and a contrast and
    brightness jitter of the channel.
    """

    def __init__(self, images: list[dict], *, patch_size: int, length: int, augment: bool, seed: int) -> None:
        if not images:
            raise ValueError("no training images")
        self.images = images
        self.patch_size = patch_size
        self.length = length
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self._centres = [np.argwhere(im["fov"]) for im in images]

    def set_random_state(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def _crop(self, array: np.ndarray, cy: int, cx: int) -> np.ndarray:
        p = self.patch_size
        h = p // 2
        padded = np.pad(array, ((h, p - h), (h, p - h)))
        return padded[cy : cy + p, cx : cx + p]

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        k = int(self.rng.integers(len(self.images)))
        image, centres = self.images[k], self._centres[k]
        cy, cx = centres[int(self.rng.integers(len(centres)))]
        x = self._crop(image["channel"], cy, cx)
        y = self._crop(image["vessels"], cy, cx)
        m = self._crop(image["fov"], cy, cx)
        if self.augment:
            turns = int(self.rng.integers(4))
            flip = bool(self.rng.integers(2))
            x, y, m = (np.rot90(a, turns) for a in (x, y, m))
            if flip:
                x, y, m = (a[:, ::-1] for a in (x, y, m))
            x = x * float(self.rng.uniform(0.85, 1.15)) + float(self.rng.normal(0.0, 0.1))
        as_t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a, dtype=dt))[None]  # noqa: E731
        return {"image": as_t(x, np.float32), "target": as_t(y, np.float32), "fov": as_t(m, np.float32)}


@register_task("fundus.vessels")
class FundusVesselsTask(TrainingTask):
    """DRIVE retinal vessel segmentation from the enhanced green channel."""

    labels = ["vessel"]
    label_names = {"vessel": "Retinal vessel (per pixel)"}
    problem = "segmentation"
    Options = FundusVesselsOptions
    modality = "fundus"
    default_intended_use = (
        "Research and decision support: segments the retinal vessels of a colour fundus photograph so that vessel "
        "biomarkers (density, fractal dimension, tortuosity, calibre) can be measured. Not a diagnosis."
    )
    default_limitations = (
        "DRIVE holds 40 photographs of one Dutch screening programme (Canon CR5, 45°, 565 × 584 px), mostly without "
        "retinopathy; thin capillaries, pathology and other cameras are segmented less well. Decision support only."
    )
    options: FundusVesselsOptions

    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.drive import DriveDataset
        from vitalens.vessels.preprocess import fov_diameter_px

        data_root = Path(data_root)
        if not data_root.exists():
            raise FileNotFoundError(f"DRIVE data root {data_root} does not exist")
        opts = self.options
        training = DriveDataset(data_root, "training")
        test = DriveDataset(data_root, "test")
        records = list(training)
        if self.recipe.data.max_patients is not None:
            records = records[: self.recipe.data.max_patients]
        if len(records) <= opts.val_images:
            raise ValueError(f"{len(records)} training images cannot hold out {opts.val_images} for validation")
        order = np.random.default_rng(self.split_seed).permutation(len(records))
        val_idx, train_idx = sorted(order[: opts.val_images]), sorted(order[opts.val_images :])
        target_width = opts.fov_diameter_px
        if target_width is None:
            target_width = float(np.median([fov_diameter_px(records[i].fov()) for i in train_idx]))
        prep = {"fov_diameter_px": target_width, "clip_limit": opts.clip_limit}
        train_images = [prepare_drive_image(records[i], observer=1, **prep) for i in train_idx]
        val_images = [prepare_drive_image(records[i], observer=1, **prep) for i in val_idx]
        test_images = [prepare_drive_image(r, observer=opts.observer, **prep) for r in test]
        patches = VesselPatches(
            train_images,
            patch_size=opts.patch_size,
            length=opts.patches_per_epoch,
            augment=opts.augment,
            seed=self.recipe.seed,
        )
        share = lambda ims: np.asarray([[im["vessels"][im["fov"]].mean()] for im in ims])  # noqa: E731
        provenance = self.provenance(data_root)
        logger.info(
            "fundus.vessels: DRIVE (%s) train %d / val %d / test %d images; FOV width %.0f px",
            provenance,
            len(train_images),
            len(val_images),
            len(test_images),
            target_width,
        )
        return DataBundle(
            train=patches,
            val=val_images,
            test=test_images,
            targets={"train": share(train_images), "val": share(val_images), "test": share(test_images)},
            provenance=provenance,
            datasets=["DRIVE"],
            n_patients=len(records) + len(test),
            meta={
                "has_patient_ids": False,  # DRIVE names no patient: the counts are of images
                "fov_diameter_px": target_width,
                "root": str(data_root),
                "val_ids": [im["image_id"] for im in val_images],
                "train_ids": [im["image_id"] for im in train_images],
                "split_sizes": {"train": len(train_images), "val": len(val_images), "test": len(test_images)},
            },
        )

    def net_kwargs(self) -> dict[str, Any]:
        return {"in_chans": 1, "num_classes": 1, **self.recipe.net.kwargs}

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["image"])

    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec

        return InputSpec(
            modality="fundus",
            channels=3,
            min_size=self.options.min_image_size,
            dtype="uint8",
            value_range=(0.0, 255.0),
            resize_allowed=True,
            extra={
                "inputs": ["fundus_left", "fundus_right"],
                "preprocess": "field-of-view mask; resample to the reference FOV width; green channel; CLAHE; "
                "z-score inside the FOV",
                "fov_diameter_px": bundle.meta["fov_diameter_px"],
                "clip_limit": self.options.clip_limit,
                "flip_average": self.options.flip_average,
                "output": "per-pixel vessel probability",
            },
        )

    def training_data(self, bundle: DataBundle) -> Any:
        from vitalens.artifacts import TrainingData

        sizes = bundle.meta["split_sizes"]
        return TrainingData(
            datasets=bundle.datasets,
            provenance=bundle.provenance,
            n_patients=bundle.n_patients,
            n_samples=sum(sizes.values()),
            splits={
                "unit": "image",
                "kind": "official",  # test: DRIVE's own test/ images; val/train: the ids listed here
                "sizes": sizes,
                "train_ids": bundle.meta["train_ids"],
                "val_ids": bundle.meta["val_ids"],
                "seed": self.split_seed,
            },
            description=f"{'Synthetic twin of ' if bundle.provenance == 'synthetic' else ''}DRIVE: "
            f"{sizes['train']} training images (random patches), {sizes['val']} training images held out for the best "
            f"epoch and the threshold, DRIVE's own {sizes['test']} test images for the metrics (first observer).",
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        return {"fov_diameter_px": bundle.meta["fov_diameter_px"], "val_ids": bundle.meta["val_ids"]}

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The DRIVE images of ``split`` as the card recorded it, prepared at the card's scale and contrast.

        ``test``: DRIVE's own ``test/`` images (the published split); ``val``: the ``training/`` images the card
        lists as ``val_ids``; ``train``: the card's ``train_ids`` (a card from before they were recorded: every
        other ``training/`` image); ``all``: every image of both folders. The field-of-view width and CLAHE clip
        limit are the card's, so nothing is refitted on the folder.
        """
        from vitalens.data.drive import DriveDataset
        from vitalens.errors import InputError

        root = Path(data_root)
        if not root.exists():
            raise FileNotFoundError(f"DRIVE data root {root} does not exist")
        recorded = card.training_data.splits or {}
        val_ids = recorded.get("val_ids") or (card.extra or {}).get("val_ids")
        extra = card.input.extra or {}
        width, clip = extra.get("fov_diameter_px"), extra.get("clip_limit", self.options.clip_limit)
        if val_ids is None or width is None:
            return super().build_eval_split(data_root, card, split)
        val = {str(i) for i in val_ids}
        train_ids = recorded.get("train_ids")
        warnings: list[str] = []
        records: list[Any] = []
        folders = {s: DriveDataset(root, s) for s in ("training", "test") if (root / s / "images").is_dir()}
        total = sum(len(f) for f in folders.values())
        if split in ("train", "val", "all") and "training" in folders:
            for r in folders["training"]:
                in_val = r.image_id in val
                in_train = r.image_id in {str(i) for i in train_ids} if train_ids is not None else not in_val
                if split == "all" or (split == "val" and in_val) or (split == "train" and in_train):
                    records.append(r)
            if split == "train" and train_ids is None:
                warnings.append(
                    f"card {card.name} lists no train ids: train is every training/ image not listed as val"
                )
        if split in ("test", "all") and "test" in folders:
            records.extend(folders["test"])
        if not records:
            raise InputError(f"{root} holds no DRIVE image of the {split} split of {card.name}", field="data")
        observer = 1 if split in ("train", "val") else self.options.observer
        images = [
            prepare_drive_image(r, fov_diameter_px=float(width), clip_limit=float(clip), observer=observer)
            for r in records
        ]
        selection = {
            "test": "DRIVE's own test/ images (the published split)",
            "val": "the training/ images the card lists as val_ids",
            "train": "the training/ images the card lists as train_ids",
            "all": "every DRIVE image of training/ and test/",
        }[split]
        return EvalSplit(
            dataset=images,
            targets=np.asarray([[im["vessels"][im["fov"]].mean()] for im in images]),
            groups={},
            provenance=self.provenance(root),
            n_patients=len(images),  # DRIVE names no patient: every image is its own unit
            selection=f"{selection}; the card's field-of-view width {float(width):.0f} px and CLAHE clip {clip}",
            n_excluded=total - len(images),
            warnings=warnings,
        )
