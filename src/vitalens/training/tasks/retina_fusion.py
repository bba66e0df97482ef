"""The ``retina.fusion`` training task: frozen ``fundus.dr`` and ``oct.kermany4`` encoders → an MLP head on their
concatenated embeddings → normal vs disease, trained on **virtual pairs** by aligned labels.

Data (``--data ROOT``): ``ROOT/fundus`` in a layout ``fundus.dr`` reads (APTOS 2019, RetinaMNIST) and ``ROOT/oct`` in
one ``oct.kermany4`` reads (Kermany OCT2017, OCTMNIST) — symlinks are fine — or ``task.fundus_data`` /
``task.oct_data``. The encoders are the artifacts named by ``task.fundus_artifact`` / ``task.oct_artifact`` (default
the bundled ``models/fundus-dr`` and ``models/oct-kermany4``); each modality is read with **its encoder's own recipe**
(from its card), so its train/val/test splits are exactly the ones the encoder was trained and tested on: the fusion
head trains on pairs of encoder-training images, is calibrated and thresholded on encoder-validation pairs, and is
tested on pairs of images neither encoder nor head ever fitted on. Pairs: :mod:`vitalens.data.virtual_pairs`
(fundus ICDR grade ≥ 1 and OCT CNV/DME/DRUSEN are "disease").

The staged run (:meth:`RetinaFusionTask.run_training` → :func:`vitalens.training.fusion.train_fusion`) also trains
the fundus-only and OCT-only heads on the same embeddings and pairs, for the comparison the card reports.

``task.head.kind: multiclass`` (``--set task.head.kind=multiclass``; ``task.head: multiclass`` is shorthand) trains
instead a head that predicts the fundus's DR grade (0–4) and the scan's OCT class (CNV/DME/DRUSEN/NORMAL) from the
same concatenated embeddings of the same virtual pairs (two softmax groups, see
:mod:`vitalens.nets.fusion_head`), compared with each encoder's own analyzer output on the same test pairs
(:func:`vitalens.training.fusion.train_fusion_multiclass`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vitalens.data.aptos import DR_GRADES
from vitalens.data.kermany import KERMANY_LABELS
from vitalens.errors import ArtifactError, InputError
from vitalens.training.tasks._base import DataBundle, EvalSplit, TaskOptions, TrainingTask, register_task

if TYPE_CHECKING:
    import torch

    from vitalens.artifacts import InputSpec, ModelCard, TrainingData

__all__ = [
    "RetinaFusionTask",
    "RetinaFusionOptions",
    "HeadOptions",
    "EncoderRef",
    "VIRTUAL_PAIRS_NOTICE",
    "DR_GRADES",
    "OCT_CLASSES",
    "MULTICLASS_GROUPS",
    "MULTICLASS_STD_FLOOR",
]

logger = logging.getLogger(__name__)

#: Said in the card, the API result and the page of every fusion output.
VIRTUAL_PAIRS_NOTICE = (
    "Trained and tested on VIRTUAL pairs: fundus photographs and OCT scans of different people, paired by label "
    "(normal with normal, disease with disease), because no public dataset pairs both images of one eye. Its figures "
    "measure combining two independent observations of the same label and say nothing about real paired eyes."
)


#: The multiclass head's classes: the fundus's ICDR grade and the scan's Kermany class (the encoders' own labels).
OCT_CLASSES: tuple[str, ...] = KERMANY_LABELS
#: Softmax group → its classes, in output-column order (the card's ``output.params.groups`` holds the sizes).
MULTICLASS_GROUPS: dict[str, tuple[str, ...]] = {"dr_grade": DR_GRADES, "oct_class": OCT_CLASSES}
#: The multiclass head's standardisation floor (× the median feature std, see :mod:`vitalens.nets.fusion_head`) when
#: the recipe sets none; the bundled recipe sets the same 0.5 for both heads (``net.kwargs.std_floor``).
MULTICLASS_STD_FLOOR = 0.5
_MULTICLASS_NAMES = {
    "0": "DR grade 0: no DR (fusion)",
    "1": "DR grade 1: mild NPDR (fusion)",
    "2": "DR grade 2: moderate NPDR (fusion)",
    "3": "DR grade 3: severe NPDR (fusion)",
    "4": "DR grade 4: proliferative DR (fusion)",
    "CNV": "OCT: choroidal neovascularisation (fusion)",
    "DME": "OCT: diabetic macular oedema (fusion)",
    "DRUSEN": "OCT: drusen (fusion)",
    "NORMAL": "OCT: normal retina (fusion)",
}


class HeadOptions(BaseModel):
    """Training of each head (fusion and the single-modality comparisons), and which head.

    ``kind``: ``binary`` (normal vs disease, the bundled model) or ``multiclass`` (DR grade × OCT class as two
    softmax groups on the same virtual pairs).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["binary", "multiclass"] = Field(
        default="binary", description="binary: normal vs disease; multiclass: DR grade 0–4 and OCT class."
    )

    max_epochs: int = Field(default=200, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    batch_size: int = Field(default=32, ge=2)
    early_stopping_patience: int = Field(default=20, ge=1)


class RetinaFusionOptions(TaskOptions):
    """``task:`` options of ``retina.fusion`` recipes."""

    fundus_artifact: str | None = Field(default=None, description="fundus.dr artifact (null: models/fundus-dr).")
    oct_artifact: str | None = Field(default=None, description="oct.kermany4 artifact (null: models/oct-kermany4).")
    fundus_data: str | None = Field(default=None, description="Fundus dataset root (null: DATA/fundus).")
    oct_data: str | None = Field(default=None, description="OCT dataset root (null: DATA/oct).")
    head: HeadOptions = Field(default_factory=HeadOptions)
    n_boot: int = Field(default=2000, ge=100)
    batch_size: int = Field(default=16, ge=1, description="Images per encoder forward pass.")

    @field_validator("head", mode="before")
    @classmethod
    def _head_shorthand(cls, value: Any) -> Any:
        """``head: multiclass`` is ``head: {kind: multiclass}`` (the other head settings at their defaults)."""
        return {"kind": value} if isinstance(value, str) else value


@dataclass(frozen=True)
class EncoderRef:
    """One frozen encoder: its analyzer, artifact folder and card."""

    modality: Literal["fundus", "oct"]
    analyzer: str
    folder: Path
    card: ModelCard

    def describe(self) -> dict[str, Any]:
        from vitalens.artifacts import WEIGHTS_FILE

        return {
            "analyzer": self.analyzer,
            "artifact": self.folder.name,
            "model": self.card.name,
            "version": self.card.version,
            "weights_sha256": self.card.files.get(WEIGHTS_FILE),
            "trained_on": self.card.trained_on,
            "demonstration": self.card.demonstration,
        }


class PairedEmbeddings:
    """Torch-style dataset of virtual pairs: ``{"fundus": (d_f,), "oct": (d_o,), "target": (1,), ...}``."""

    def __init__(
        self,
        fundus: torch.Tensor,
        oct: torch.Tensor,
        pairs: list[Any],
        ids: tuple[np.ndarray, np.ndarray],
        classes: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        import torch

        self.fundus_index = np.asarray([p.fundus for p in pairs], dtype=int)
        self.oct_index = np.asarray([p.oct for p in pairs], dtype=int)
        self.labels = np.asarray([p.label for p in pairs], dtype=int)
        # Each pair's fine labels: the fundus's DR grade index (DR_GRADES) and the scan's class index (OCT_CLASSES).
        if classes is None:
            self.classes = np.full((len(pairs), 2), -1, dtype=int)
        else:
            self.classes = np.stack([classes[0][self.fundus_index], classes[1][self.oct_index]], axis=1).astype(int)
        self.fundus = fundus[torch.as_tensor(self.fundus_index)] if pairs else fundus[:0]
        self.oct = oct[torch.as_tensor(self.oct_index)] if pairs else oct[:0]
        self.fundus_ids = ids[0][self.fundus_index] if pairs else ids[0][:0]
        self.oct_ids = ids[1][self.oct_index] if pairs else ids[1][:0]

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        return {
            "fundus": self.fundus[i],
            "oct": self.oct[i],
            "target": torch.tensor([float(self.labels[i])]),
            "pair_id": f"{self.fundus_ids[i]}+{self.oct_ids[i]}",
        }


@register_task("retina.fusion")
class RetinaFusionTask(TrainingTask):
    """Normal vs disease from a fundus photograph and an OCT scan (virtual pairs; frozen single-modality encoders)."""

    labels = ["disease"]
    label_names = {"disease": "Retinal disease (fundus + OCT fusion, virtual pairs)"}
    modality = "fundus+oct"
    Options = RetinaFusionOptions
    options: RetinaFusionOptions
    default_intended_use = (
        "Research demonstration of late fusion: combines the frozen fundus.dr and oct.kermany4 encoders into one "
        "normal-vs-disease score for a study holding a fundus photograph and an OCT scan. Decision support only, "
        "shown beside the single-modality findings, never instead of them."
    )
    default_limitations = VIRTUAL_PAIRS_NOTICE + (
        " 'Disease' merges any diabetic retinopathy on the photograph with CNV, DME or drusen on the scan. Inherits "
        "every limitation of both encoders' cards."
    )

    def __init__(self, recipe: Any) -> None:
        super().__init__(recipe)
        self.encoders: dict[str, EncoderRef] = {}
        if self.multiclass:
            self.labels = [c for classes in MULTICLASS_GROUPS.values() for c in classes]  # type: ignore[misc]
            self.label_names = dict(_MULTICLASS_NAMES)  # type: ignore[misc]
            self.default_intended_use = (  # type: ignore[misc]
                "Research demonstration of late fusion: the frozen fundus.dr and oct.kermany4 encoders' embeddings of "
                "a fundus photograph and an OCT scan → the photograph's DR grade (0–4) and the scan's OCT class "
                "(CNV/DME/DRUSEN/NORMAL). Decision support only, shown beside the single-modality findings, never "
                "instead of them."
            )
            self.default_limitations = VIRTUAL_PAIRS_NOTICE + (  # type: ignore[misc]
                " The grade is a label of the photograph and the class a label of the scan; on virtual pairs the other "
                "image carries only the normal/disease label the pair was aligned by (a grade-0 photograph always met "
                "a NORMAL scan), so what it adds is that alignment, which a real eye does not guarantee. Inherits "
                "every limitation of both encoders' cards."
            )

    @property
    def multiclass(self) -> bool:
        """The recipe asks for the DR grade × OCT class head (``task.head.kind: multiclass``)."""
        return self.options.head.kind == "multiclass"

    # -- encoders ------------------------------------------------------------------------------------------------
    def encoder(self, modality: Literal["fundus", "oct"]) -> EncoderRef:
        """The frozen encoder of ``modality`` (verified: sha256 of every file, analyzer name)."""
        if modality in self.encoders:
            return self.encoders[modality]
        from vitalens.artifacts import verify_artifact
        from vitalens.config import get_settings

        analyzer, default, option = {
            "fundus": ("fundus.dr", "fundus-dr", self.options.fundus_artifact),
            "oct": ("oct.kermany4", "oct-kermany4", self.options.oct_artifact),
        }[modality]
        folder = Path(option) if option else Path(get_settings().models_dir) / default
        if not (folder / "card.json").is_file():
            raise ArtifactError(
                f"retina.fusion needs a trained {analyzer} artifact as its {modality} encoder; none at {folder} "
                f"(train one with `vitalens train {analyzer} ...`, or set task.{modality}_artifact)"
            )
        card = verify_artifact(folder, expected_analyzer=analyzer)
        ref = EncoderRef(modality=modality, analyzer=analyzer, folder=folder, card=card)
        self.encoders[modality] = ref
        return ref

    def _modality_bundle(self, ref: EncoderRef, root: Path) -> DataBundle:
        """The modality's dataset read by its encoder's own task and recipe (so the splits are the encoder's)."""
        bundle = _encoder_task(ref).build_data(root)
        recorded = (ref.card.training_data.splits or {}).get("sizes")
        if recorded and dict(recorded) != bundle.split_sizes:
            raise InputError(
                f"{root} does not reproduce the splits {ref.analyzer}'s encoder was trained on (card {recorded}, "
                f"now {bundle.split_sizes}): its test images could be in the encoder's training set; use the same "
                "dataset folder the encoder was trained on",
                field="data",
            )
        return bundle

    def _roots(self, data_root: Path) -> tuple[Path, Path]:
        root = Path(data_root)
        fundus = Path(self.options.fundus_data) if self.options.fundus_data else root / "fundus"
        oct_root = Path(self.options.oct_data) if self.options.oct_data else root / "oct"
        for name, path in (("fundus", fundus), ("oct", oct_root)):
            if not path.exists():
                raise InputError(
                    f"retina.fusion reads {name} images from {path}, which does not exist (give DATA/{name}, or "
                    f"task.{name}_data)",
                    field="data",
                )
        return fundus, oct_root

    # -- data ---------------------------------------------------------------------------------------------------
    def build_data(self, data_root: Path) -> DataBundle:
        from vitalens.data.virtual_pairs import virtual_pairs

        fundus_root, oct_root = self._roots(data_root)
        refs = {m: self.encoder(m) for m in ("fundus", "oct")}  # type: ignore[arg-type]
        bundles = {"fundus": self._modality_bundle(refs["fundus"], fundus_root)}
        bundles["oct"] = self._modality_bundle(refs["oct"], oct_root)
        nets = {m: _encoder_net(refs[m]) for m in refs}
        splits: dict[str, PairedEmbeddings] = {}
        counts: dict[str, Any] = {}
        for k, split in enumerate(("train", "val", "test")):
            emb, ids, binary, fine = {}, {}, {}, {}
            for m in ("fundus", "oct"):
                emb[m], ids[m], binary[m], fine[m] = self._embed(
                    refs[m], nets[m], bundles[m].split(split), bundles[m].targets[split]
                )
            pairs = virtual_pairs(binary["fundus"], binary["oct"], seed=self.recipe.seed * 100 + k)
            splits[split] = PairedEmbeddings(
                emb["fundus"], emb["oct"], pairs, (ids["fundus"], ids["oct"]), (fine["fundus"], fine["oct"])
            )
            counts[split] = {
                "pairs": len(pairs),
                "disease_pairs": int(sum(p.label for p in pairs)),
                "fundus_images": int(binary["fundus"].size),
                "oct_images": int(binary["oct"].size),
                "oct_images_used": int(len({p.oct for p in pairs})),
            }
        provenance: Literal["real", "synthetic"] = (
            "synthetic" if "synthetic" in (bundles["fundus"].provenance, bundles["oct"].provenance) else "real"
        )
        if self.recipe.data.provenance != "auto":
            provenance = self.recipe.data.provenance
        return DataBundle(
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            targets={s: splits[s].labels[:, None] for s in splits},
            provenance=provenance,
            datasets=[*bundles["fundus"].datasets, *bundles["oct"].datasets],
            n_patients=int(bundles["fundus"].n_patients + bundles["oct"].n_patients),
            meta={
                "pairs": counts,
                # Which fundus and OCT image make each pair of each split: evaluate() re-scores exactly these.
                "records": {
                    s: [[str(f), str(o)] for f, o in zip(d.fundus_ids, d.oct_ids, strict=True)]
                    for s, d in splits.items()
                },
                # What each modality's count counts (APTOS names no patient: images; Kermany: patients).
                "counted": {
                    m: {"n": int(bundles[m].n_patients), "patients": bool(bundles[m].meta.get("has_patient_ids", True))}
                    for m in bundles
                },
                "encoders": {m: refs[m].describe() for m in refs},
                "dims": {m: int(getattr(splits["train"], m).shape[1]) for m in ("fundus", "oct")},
                "roots": {"fundus": str(fundus_root), "oct": str(oct_root)},
                "modality_provenance": {m: bundles[m].provenance for m in bundles},
            },
        )

    def _embed(
        self, ref: EncoderRef, net: Any, ds: Any, targets: np.ndarray, ids: np.ndarray | None = None
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """One modality's split: pooled embeddings, sample ids (``ids``, else the dataset's), the binary
        normal/disease label of each image, and its fine class index (DR grade in :data:`DR_GRADES`, OCT class in
        :data:`OCT_CLASSES`; −1 for a label outside them, which the multiclass head refuses)."""
        from vitalens.data.virtual_pairs import fundus_disease, oct_disease
        from vitalens.training.anomaly.features import extract_features

        emb = extract_features(_Encode(net), ds, batch_size=self.options.batch_size)
        names = [ref.card.labels[int(np.asarray(targets[i]).argmax())] for i in range(len(ds))]
        binary = np.asarray(
            [fundus_disease(int(n)) if ref.modality == "fundus" else oct_disease(n) for n in names], dtype=int
        )
        known = DR_GRADES if ref.modality == "fundus" else OCT_CLASSES
        fine = np.asarray([known.index(str(n)) if str(n) in known else -1 for n in names], dtype=int)
        if self.multiclass and (fine < 0).any():
            raise ArtifactError(
                f"the multiclass head predicts {ref.analyzer}'s classes {list(known)}, but its encoder's card "
                f"labels are {list(ref.card.labels)}"
            )
        return emb, np.asarray(_sample_ids(ds)) if ids is None else np.asarray(ids), binary, fine

    def build_eval_split(self, data_root: Path, card: ModelCard, split: str) -> EvalSplit:
        """The virtual pairs the card recorded for ``split``: the same fundus and OCT images, paired the same way.

        The card lists each split's pairs by image id (``extra.records``: fundus id, OCT id), and those ids were
        drawn from each encoder's own split at training time (the test pairs hold no image either encoder or the
        head fitted on). Here each modality's folder is read through its encoder task with the encoder card's
        preprocessing, only the listed images are kept and embedded by the frozen encoder, and the listed pairs are
        rebuilt; a pair whose image is not in the folder is left out and counted. A card from before the pairs were
        recorded falls back on the base rebuild.
        """
        from torch.utils.data import Subset

        from vitalens.data.virtual_pairs import VirtualPair

        if card.output.params.get("groups"):
            raise InputError(
                f"{card.name} is the multiclass (DR grade × OCT class) head: `vitalens evaluate` scores the binary "
                "head only; its held-out figures are in its training report and bench/retina_fusion.py",
                field="artifact",
            )
        records = (card.extra or {}).get("records")
        if not isinstance(records, dict) or not {"train", "val", "test"} <= set(records):
            return super().build_eval_split(data_root, card, split)
        roots = dict(zip(("fundus", "oct"), self._roots(data_root), strict=True))
        names = ("train", "val", "test") if split == "all" else (split,)
        listed = [(str(f), str(o)) for n in names for f, o in records[n]]
        wanted = {"fundus": {f for f, _ in listed}, "oct": {o for _, o in listed}}
        emb: dict[str, torch.Tensor] = {}
        index: dict[str, dict[str, int]] = {}
        all_ids: dict[str, np.ndarray] = {}
        binary: dict[str, np.ndarray] = {}
        fine: dict[str, np.ndarray] = {}
        warnings: list[str] = []
        provenance: set[str] = set()
        for m in ("fundus", "oct"):
            ref = self.encoder(m)  # type: ignore[arg-type]
            chosen = _encoder_task(ref).build_eval_split(roots[m], ref.card, "all")
            provenance.add(chosen.provenance)
            ids = np.asarray(_sample_ids(chosen.dataset))
            keep = np.flatnonzero(np.isin(ids, sorted(wanted[m])))
            if np.unique(ids[keep]).size != keep.size:
                warnings.append(f"{ref.analyzer}: an image id of the recorded pairs occurs twice in {roots[m]}")
            emb[m], all_ids[m], binary[m], fine[m] = self._embed(
                ref, _encoder_net(ref), Subset(chosen.dataset, keep.tolist()), chosen.targets[keep], ids[keep]
            )
            index[m] = {str(i): k for k, i in enumerate(all_ids[m])}
        pairs = [
            VirtualPair(fundus=index["fundus"][f], oct=index["oct"][o], label=int(binary["fundus"][index["fundus"][f]]))
            for f, o in listed
            if f in index["fundus"] and o in index["oct"]
        ]
        mismatched = sum(binary["oct"][p.oct] != p.label for p in pairs)
        if mismatched:
            warnings.append(f"{mismatched} recorded pairs now join images of different labels (another folder?)")
        dataset = PairedEmbeddings(
            emb["fundus"], emb["oct"], pairs, (all_ids["fundus"], all_ids["oct"]), (fine["fundus"], fine["oct"])
        )
        prov: Literal["real", "synthetic"] = "synthetic" if "synthetic" in provenance else "real"
        return EvalSplit(
            dataset=dataset,
            targets=dataset.labels[:, None],
            groups={},
            provenance=prov,
            n_patients=len(pairs),  # the unit is the virtual pair (two people's images)
            selection=f"the {len(pairs)} virtual pairs the card lists as {split} (fundus and OCT images by id, "
            "through each encoder card's preprocessing); VIRTUAL pairs: fundus and OCT of different people, paired "
            "by label",
            n_excluded=len(listed) - len(pairs),
            warnings=warnings,
        )

    def count_phrase(self, bundle: DataBundle) -> str:
        """The two datasets' counts, each named by its unit ("150 fundus images without patient ids and 85 OCT
        patients"), never their sum as "patients"."""
        counted = bundle.meta.get("counted") or {}
        if not counted:
            return super().count_phrase(bundle)
        words = {
            m: f"{c['n']} {m.upper() if m == 'oct' else m} "
            + ("patients" if c["patients"] else "images without patient ids")
            for m, c in counted.items()
        }
        return " and ".join(words[m] for m in ("fundus", "oct") if m in words)

    def training_data(self, bundle: DataBundle) -> TrainingData:
        from vitalens.artifacts import TrainingData

        pairs = bundle.meta["pairs"]
        return TrainingData(
            datasets=bundle.datasets,
            provenance=bundle.provenance,
            n_patients=None,
            n_samples=int(sum(p["pairs"] for p in pairs.values())),
            splits={
                "unit": "virtual pair",
                "kind": "recorded pairs",  # extra.records lists each split's (fundus id, OCT id) pairs
                "pairs": pairs,
                "sizes": bundle.split_sizes,
            },
            description=(
                f"{VIRTUAL_PAIRS_NOTICE} Each modality keeps its encoder's own train/val/test split; pairs "
                f"{ {s: p['pairs'] for s, p in pairs.items()} } (train/val/test), each fundus image paired once with "
                "a same-label OCT image of the same split."
            ),
        )

    # -- model ----------------------------------------------------------------------------------------------------
    def net_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.recipe.net.kwargs)
        dims = getattr(self, "_dims", None)
        if dims is not None:
            kwargs.setdefault("dims", list(dims))
        if self.multiclass:
            kwargs["groups"] = [len(c) for c in MULTICLASS_GROUPS.values()]
            kwargs.setdefault("std_floor", MULTICLASS_STD_FLOOR)
        return kwargs

    def forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return net(batch["fundus"], batch["oct"])

    def batch_meta(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return {"pair_id": list(batch["pair_id"])}

    def input_spec(self, bundle: DataBundle) -> InputSpec:
        from vitalens.artifacts import InputSpec

        dims = bundle.meta["dims"]
        return InputSpec(
            modality="fundus+oct",
            channels=1,
            dtype="float32",
            extra={
                "inputs": ["fundus_left|fundus_right", "oct"],
                "embeddings": dims,
                "preprocess": "each image through its encoder's card (fundus.dr, oct.kermany4), pooled embedding",
            },
        )

    def card_extra(self, bundle: DataBundle) -> dict[str, Any]:
        return {
            "encoders": bundle.meta["encoders"],
            "virtual_pairs": VIRTUAL_PAIRS_NOTICE,
            "pairs": bundle.meta["pairs"],
            "records": bundle.meta["records"],
            "head": self.options.head.kind,
            **getattr(self, "_card_extra", {}),
        }

    def run_training(self, *, data_root: Path, out: Path, resume: bool = False) -> Path | None:
        """Train the fusion head and its comparisons (see :mod:`vitalens.training.fusion`): the binary head beside
        the fundus-only and OCT-only heads, or the multiclass head beside each encoder's own analyzer."""
        from vitalens.training.fusion import train_fusion, train_fusion_multiclass

        if self.multiclass:
            return train_fusion_multiclass(self, data_root=Path(data_root), out=Path(out), resume=resume)
        return train_fusion(self, data_root=Path(data_root), out=Path(out), resume=resume)


def _encoder_task(ref: EncoderRef) -> TrainingTask:
    """The encoder's own training task under its card's recipe (its splits and preprocessing)."""
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    raw = dict(ref.card.recipe) if ref.card.recipe else {"analyzer": ref.analyzer}
    return get_task(ref.analyzer, Recipe.load(raw, overrides={"task.augment": False}))


def _encoder_net(ref: EncoderRef) -> Any:
    from vitalens.artifacts import load_model

    net, _ = load_model(ref.folder, expected_analyzer=ref.analyzer, device="cpu")
    if not hasattr(net, "encode"):
        raise ArtifactError(f"{ref.analyzer}'s net {type(net).__name__} has no encode(): it cannot be a fusion encoder")
    return net.eval()


class _Encode:
    """Adapter giving a classifier's ``encode`` the ``forward_features``/``num_features`` surface of the extractor."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.num_features = int(getattr(net, "num_features", 0))

    def eval(self) -> _Encode:
        self.net.eval()
        return self

    def to(self, device: str) -> _Encode:
        self.net.to(device)
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encode(x)


def _sample_ids(ds: Any) -> list[str]:
    source, indices = getattr(ds, "source", None), getattr(ds, "indices", None)
    if source is not None and indices is not None:
        return [str(source.samples[int(i)].sample_id) for i in indices]
    return [str(i) for i in range(len(ds))]
