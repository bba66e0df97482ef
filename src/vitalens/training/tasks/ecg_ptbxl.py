"""The ``ecg.ptbxl`` training task: PTB-XL 12-lead ECGs → NORM, MI, STTC, CD, HYP (multilabel).

Why a plug-in: the engine knows nothing of ECGs; this module reads the PTB-XL root with the recommended folds
(1–8 train, 9 validation, 10 test; patient-level by construction), z-scores every lead with statistics of the
TRAINING folds only (stored in the card so inference uses the same numbers), adds online noise injection (and,
optionally, extra noisy normal records labelled NORM) to the training split, and records the risk-tier edges
and the record lists in the card.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from vitalens.errors import InputError
from vitalens.training.tasks._base import DataBundle, EvalSplit, TaskOptions, TrainingTask, register_task

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard, TrainingData
    from vitalens.data.ptbxl import PTBXLDataset

__all__ = ["EcgPtbxlTask", "EcgPtbxlOptions", "PTBXLTorchDataset"]

logger = logging.getLogger(__name__)


class EcgPtbxlOptions(TaskOptions):
    """``task:`` options of ``ecg.ptbxl`` recipes."""

    sampling_rate: int = Field(default=100, description="100 (records100) or 500 Hz (records500).")
    train_folds: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8])
    val_folds: list[int] = Field(default_factory=lambda: [9])
    test_folds: list[int] = Field(default_factory=lambda: [10])
    augment: bool = Field(default=True, description="Online noise injection on the training split.")
    noisy_normals: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Extra noisy copies of NORM-only records, as a fraction of them."
    )
    tier_edges: tuple[float, float] = Field(default=(0.2, 0.5), description="(low_max, high_min) of risk tiers.")
    noise: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the training noise (NoiseConfig fields, e.g. {wander_mv: 0.8}); the extra noisy "
        "normals use the same magnitudes with every artefact switched on.",
    )
    resample_allowed: bool = Field(default=True, description="Inference may resample other rates to this one.")
    crop_s: float | None = Field(
        default=None,
        gt=0.0,
        le=10.0,
        description="Train on random crops of this many seconds (2.5 in Strodthoff et al. 2021); validation and test "
        "see the whole 10 s, so pair it with a net that scores long signals by sliding windows (ecg_windowed).",
    )


class PTBXLTorchDataset:
    """Items ``{"ecg": (12, T) float32 z-scored, "target": (5,) float32, "ecg_id": int}`` of some records.

    Args:
        signals: ``(n, 12, T)`` in mV.
        targets: ``(n, 5)``.
        ecg_ids: ``(n,)``.
        mean, std: per-lead statistics (mV) of the training folds.
        noise: noise injection applied in mV before z-scoring (training only).
        extra_normals: indices (into ``signals``) of extra items, each always corrupted by ``strong_noise`` and
            labelled NORM only.
        strong_noise: the noise of the extra normals.
        crop: length in samples of a random crop taken from every item (training), ``None`` for the whole record.
        seed: seed of the crop positions.
    """

    def __init__(
        self,
        signals: np.ndarray,
        targets: np.ndarray,
        ecg_ids: np.ndarray,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        noise: Any | None = None,
        extra_normals: np.ndarray | None = None,
        strong_noise: Any | None = None,
        crop: int | None = None,
        seed: int = 0,
    ) -> None:
        self.signals, self.targets, self.ecg_ids = signals, targets, ecg_ids
        self.crop, self.rng = crop, np.random.default_rng(seed)
        self.mean, self.std = mean.reshape(-1, 1), std.reshape(-1, 1)
        self.noise, self.strong_noise = noise, strong_noise
        self.extra = extra_normals if extra_normals is not None else np.zeros(0, dtype=int)
        self.norm_target = np.zeros(targets.shape[1], dtype=np.float32)
        self.norm_target[0] = 1.0

    def __len__(self) -> int:
        return len(self.signals) + len(self.extra)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        if i < len(self.signals):
            x, y, ecg_id = self.signals[i], self.targets[i], int(self.ecg_ids[i])
            if self.noise is not None:
                x = self.noise(x)
        else:
            j = int(self.extra[i - len(self.signals)])
            x, y, ecg_id = self.strong_noise(self.signals[j]), self.norm_target, int(self.ecg_ids[j])
        if self.crop is not None and x.shape[-1] > self.crop:
            start = int(self.rng.integers(0, x.shape[-1] - self.crop + 1))
            x = x[..., start : start + self.crop]
        z = ((x - self.mean) / self.std).astype(np.float32)
        return {
            "ecg": torch.from_numpy(z),
            "target": torch.from_numpy(np.asarray(y, dtype=np.float32)),
            "ecg_id": ecg_id,
        }


@register_task("ecg.ptbxl")
class EcgPtbxlTask(TrainingTask):
    """PTB-XL diagnostic superclasses from a 10 s 12-lead ECG."""

    labels = ["NORM", "MI", "STTC", "CD", "HYP"]
    label_names = {
        "NORM": "Normal ECG",
        "MI": "Myocardial infarction",
        "STTC": "ST/T change",
        "CD": "Conduction disturbance",
        "HYP": "Hypertrophy",
    }
    Options = EcgPtbxlOptions
    modality = "ecg"
    default_intended_use = (
        "Research and decision support: flags resting 10 s 12-lead ECGs of adults for review by a clinician "
        "for the five PTB-XL diagnostic superclasses (normal, myocardial infarction, ST/T change, conduction "
        "disturbance, hypertrophy). Not a diagnosis."
    )
    default_limitations = (
        "Trained on PTB-XL (Germany, 1989–1996, Schiller devices), a subset of its records at 100 Hz; labels are "
        "cardiologists' report statements aggregated to superclasses. Performance on other devices, populations, "
        "children, paced rhythms or noisy ambulatory recordings is unknown. Decision support only."
    )
    options: EcgPtbxlOptions

    def _split(self, root: Path, folds: list[int], stats: tuple[np.ndarray, np.ndarray] | None) -> PTBXLDataset:
        from vitalens.data.ptbxl import PTBXLDataset

        ds = PTBXLDataset(root, sampling_rate=self.options.sampling_rate, folds=folds, stats=stats)
        cap = self.recipe.data.max_patients
        if cap is not None and len(ds) > cap:
            keep = np.arange(cap)
            ds.filenames = [ds.filenames[i] for i in keep]
            for attr in ("ecg_ids", "patient_ids", "strat_folds", "targets", "age_years"):
                setattr(ds, attr, getattr(ds, attr)[keep])
            ds.sex = [ds.sex[i] for i in keep]
            ds.frame = ds.frame.iloc[keep]
        return ds

    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.ptbxl import PTBXL_LABELS, age_band, lead_stats
        from vitalens.training.augment_ecg import ECGNoise, NoiseConfig

        if list(PTBXL_LABELS) != self.labels:
            raise RuntimeError(f"PTB-XL adapter labels {PTBXL_LABELS} differ from the task's {self.labels}")
        root = Path(data_root)
        if not root.exists():
            raise FileNotFoundError(f"PTB-XL data root {root} does not exist")
        opts = self.options
        parts = {
            "train": self._split(root, opts.train_folds, None),
            "val": self._split(root, opts.val_folds, None),
            "test": self._split(root, opts.test_folds, None),
        }
        mean, std = lead_stats(parts["train"].signals)
        fs = float(opts.sampling_rate)
        seed = self.recipe.seed
        try:
            base = NoiseConfig(**opts.noise)
        except TypeError as exc:
            raise InputError(f"task.noise: {exc}", field="recipe") from None
        noise = ECGNoise(fs, base, seed=seed) if opts.augment else None
        extra = np.zeros(0, dtype=int)
        strong = None
        if opts.noisy_normals > 0:
            y = parts["train"].targets
            norm_only = np.flatnonzero((y[:, 0] == 1) & (y[:, 1:].sum(1) == 0))
            rng = np.random.default_rng(seed + 1)
            extra = rng.choice(norm_only, size=int(round(opts.noisy_normals * len(norm_only))), replace=False)
            always = dataclasses.replace(
                base, gaussian_prob=1.0, wander_prob=1.0, powerline_prob=0.7, burst_prob=0.7, scale_prob=1.0
            )
            strong = ECGNoise(fs, always, seed=seed + 2)
        datasets = {
            name: PTBXLTorchDataset(
                ds.signals,
                ds.targets,
                ds.ecg_ids,
                mean,
                std,
                noise=noise if name == "train" else None,
                extra_normals=extra if name == "train" else None,
                strong_noise=strong if name == "train" else None,
                crop=int(round(opts.crop_s * fs)) if name == "train" and opts.crop_s else None,
                seed=seed + 3,
            )
            for name, ds in parts.items()
        }
        targets = {name: ds.targets for name, ds in parts.items()}
        if len(extra):
            norm = np.zeros((len(extra), len(self.labels)), dtype=np.float32)
            norm[:, 0] = 1.0
            targets["train"] = np.concatenate([targets["train"], norm])
        groups = {
            name: {
                "sex": np.asarray(ds.sex),
                "age_band": np.asarray([age_band(float(a)) for a in ds.age_years]),
            }
            for name, ds in parts.items()
        }
        provenance = self.provenance(root)
        patients = np.unique(np.concatenate([ds.patient_ids for ds in parts.values()]))
        logger.info(
            "ecg.ptbxl: %s (%s) → train %d / val %d / test %d records (+%d noisy normals); %d missing on disk",
            root,
            provenance,
            len(parts["train"]),
            len(parts["val"]),
            len(parts["test"]),
            len(extra),
            sum(ds.n_missing for ds in parts.values()),
        )
        return DataBundle(
            train=datasets["train"],
            val=datasets["val"],
            test=datasets["test"],
            targets=targets,
            provenance=provenance,
            datasets=["PTB-XL 1.0.3" if provenance == "real" else "PTB-XL (synthetic twin)"],
            n_patients=int(patients.size),
            groups=groups,
            meta={
                "mean": mean.tolist(),
                "std": std.tolist(),
                "root": str(root),
                "summary": {name: ds.summary() for name, ds in parts.items()},
                "ecg_ids": {name: [int(i) for i in ds.ecg_ids] for name, ds in parts.items()},
                "noisy_normals": int(len(extra)),
            },
        )

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The records of the split's folds (``all``: every record present), z-scored with the card's lead
        statistics: only those folds are read, so a folder holding only fold 10 scores like the full dataset."""
        from vitalens.data.ptbxl import PTBXL_LEADS, age_band

        root = Path(data_root)
        if not root.exists():
            raise FileNotFoundError(f"PTB-XL data root {root} does not exist")
        n_leads = len(PTBXL_LEADS)
        if card.input.mean is None or card.input.std is None or len(card.input.mean) != n_leads:
            raise InputError(f"card {card.name} holds no per-lead mean/std of {n_leads} leads", field="artifact")
        mean = np.asarray(card.input.mean, dtype=np.float32)
        std = np.asarray(card.input.std, dtype=np.float32)
        folds = None if split == "all" else list(getattr(self.options, f"{split}_folds"))
        ds = self._split(root, folds, None) if folds is not None else self._all(root)
        if len(ds) == 0:
            raise InputError(
                f"{root} holds no labelled PTB-XL record of strat_fold {folds or 'any'} "
                f"({ds.n_missing} listed but missing on disk); choose the folds with --folds, or --split all",
                field="data",
            )
        dataset = PTBXLTorchDataset(ds.signals, ds.targets, ds.ecg_ids, mean, std)
        return EvalSplit(
            dataset=dataset,
            targets=ds.targets,
            groups={"sex": np.asarray(ds.sex), "age_band": np.asarray([age_band(float(a)) for a in ds.age_years])},
            provenance=self.provenance(root),
            n_patients=int(np.unique(ds.patient_ids).size),
            selection=(f"records of strat_fold {folds}" if folds is not None else "every labelled record present")
            + f" at {self.options.sampling_rate} Hz, z-scored with the card's lead statistics",
        )

    def _all(self, root: Path) -> PTBXLDataset:
        from vitalens.data.ptbxl import PTBXLDataset

        return PTBXLDataset(root, sampling_rate=self.options.sampling_rate, folds=None, stats=None)

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["ecg"])

    def batch_meta(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return {"ecg_id": [int(i) for i in batch["ecg_id"]]}

    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec
        from vitalens.data.ptbxl import PTBXL_LEADS

        return InputSpec(
            modality="ecg",
            channels=12,
            fs_hz=float(self.options.sampling_rate),
            duration_s=10.0,
            leads=list(PTBXL_LEADS),
            dtype="float32",
            mean=bundle.meta["mean"],
            std=bundle.meta["std"],
            resize_allowed=self.options.resample_allowed,
            extra={
                "units": "mV",
                "normalisation": "z-score per lead with mean/std (mV) of the training folds",
                "stats_from": f"folds {self.options.train_folds}",
                "duration_policy": "crop the centre or zero-pad to 10 s",
            },
        )

    def training_data(self, bundle: DataBundle) -> TrainingData:
        from vitalens.artifacts import TrainingData

        o = self.options
        return TrainingData(
            datasets=bundle.datasets,
            provenance=bundle.provenance,
            n_patients=bundle.n_patients,
            n_samples=sum(len(v) for v in bundle.meta["ecg_ids"].values()),
            splits={
                "unit": "PTB-XL recommended strat_fold (patient-level)",
                "folds": {"train": o.train_folds, "val": o.val_folds, "test": o.test_folds},
                "sizes": {k: len(v) for k, v in bundle.meta["ecg_ids"].items()},
                "summary": bundle.meta["summary"],
            },
            description=(
                f"{'Synthetic twin of ' if bundle.provenance == 'synthetic' else ''}PTB-XL at "
                f"{o.sampling_rate} Hz, the records present under {Path(bundle.meta['root']).name}; folds "
                f"{o.train_folds} train, {o.val_folds} thresholds and calibration, {o.test_folds} test metrics; "
                "lead statistics from the training folds only."
            ),
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        return {
            "tier_edges": list(self.options.tier_edges),
            "tier_rule": "overall tier = tier of the highest calibrated probability among MI, STTC, CD, HYP",
            "records": bundle.meta["ecg_ids"],
            "noisy_normals": bundle.meta["noisy_normals"],
            "train_crop_s": self.options.crop_s,
        }

    def extra_metrics(self, y_true: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
        """MI sensitivity and specificity at the card's threshold (the screening operating point)."""
        j = self.labels.index("MI")
        y, pred = y_true[:, j] == 1, probs[:, j] >= thresholds[j]
        sens = float((pred & y).sum() / y.sum()) if y.sum() else float("nan")
        spec = float((~pred & ~y).sum() / (~y).sum()) if (~y).sum() else float("nan")
        return {"mi_sensitivity": sens, "mi_specificity": spec}
