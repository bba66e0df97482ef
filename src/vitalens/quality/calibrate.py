"""Fit and calibrate the bundled image gates on real public images, with a held-out report split.

``python -m vitalens.quality.calibrate --shared ../shared/data --out models`` (``make model-quality-gates``) writes
``models/quality-{fundus,oct,cxr}/`` from the genuine images of each modality:

* genuine images: fundus — ODIR-5K (the 304-patient sample and its full-resolution images), APTOS 2019 and DRIVE;
  OCT — Kermany OCT2017; chest X-ray — the COVID-19 Radiography sample;
* each image is assigned by a hash of its *patient* (ODIR patient, Kermany patient, else the image) to ``fit``
  (50 %: the embedding reference), ``calib`` (25 %: the limits) or ``report`` (25 %: never used here; the bench
  reports on it), so no patient is on two sides;
* classical limits come from the calibration images' measures: refuse beyond the 0.5 %/99.5 % quantile pushed
  outwards by a quarter of its distance to the median (e.g. the fundus fine-detail ratio), flag beyond the most
  extreme calibration value; the embedding distance flags above the largest calibration distance and refuses
  above the 99.5 % quantile plus a quarter of its distance to the median. The card says which share of the
  calibration images the limits flag and refuse (``calibration.outside_share``).

No foreign image is used to choose any limit: the gates are one-class, and ``bench/quality.py`` measures how
they fare on foreign images they never saw.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitalens.quality.image_gate import (
    REFERENCE_FILE,
    DistanceLimit,
    GateCard,
    MeasureLimit,
    _sha256,
)

__all__ = [
    "GenuineImage",
    "genuine_images",
    "split_of",
    "degrade",
    "DEGRADATIONS",
    "MEASURE_RULES",
    "calibrate_gate",
    "main",
]

logger = logging.getLogger(__name__)

Split = str  # "fit" | "calib" | "report"


@dataclass(frozen=True)
class GenuineImage:
    """One genuine image of a modality: where it comes from, its patient group and how to load it."""

    dataset: str
    image_id: str
    group: str
    path: Path

    def load(self) -> np.ndarray:
        from PIL import Image

        with Image.open(self.path) as im:
            return np.asarray(im.convert("RGB"))


def split_of(modality: str, group: str) -> Split:
    """``fit`` / ``calib`` / ``report`` for a patient group, from a hash (stable across runs and machines)."""
    u = int(hashlib.sha1(f"{modality}:{group}".encode()).hexdigest()[:8], 16) / 2**32
    return "fit" if u < 0.5 else "calib" if u < 0.75 else "report"


def _glob(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted(p for pat in patterns for p in root.glob(pat) if p.is_file())


def genuine_images(shared: Path, modality: str) -> list[GenuineImage]:
    """The genuine images of ``modality`` under ``shared`` (``../shared/data``); missing datasets are skipped."""
    shared = Path(shared)
    out: list[GenuineImage] = []
    if modality == "fundus":
        for p in _glob(shared / "fundus/odir", ("images/*.jpg", "fullres/**/*.jpg")):
            out.append(GenuineImage("ODIR-5K", p.stem, f"odir-{p.stem.split('_')[0]}", p))
        for p in _glob(shared / "fundus/aptos2019", ("train_images/*.png",)):
            out.append(GenuineImage("APTOS 2019", p.stem, f"aptos-{p.stem}", p))
        for p in _glob(shared / "fundus/DRIVE", ("training/images/*.tif", "test/images/*.tif")):
            out.append(GenuineImage("DRIVE", p.stem, f"drive-{p.stem}", p))
    elif modality == "oct":
        for p in _glob(shared / "oct", ("**/*.jpeg", "**/*.jpg", "**/*.png")):
            parts = p.stem.split("-")
            group = f"kermany-{parts[1]}" if len(parts) >= 3 else f"kermany-{p.stem}"
            out.append(GenuineImage("Kermany OCT2017", p.stem, group, p))
    elif modality == "cxr":
        for p in _glob(shared / "cxr/covid19_radiography_sample", ("*/images/*.png",)):
            out.append(GenuineImage("COVID-19 Radiography", p.stem, f"cxr-{p.stem}", p))
    else:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("gate modality", modality, ["fundus", "oct", "cxr"])
    return out


# ---------------------------------------------------------------------------------------------- degradations
def _blur(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    sigma = 0.012 * max(image.shape[:2])
    return np.stack([ndimage.gaussian_filter(image[..., c].astype(np.float32), sigma) for c in range(3)], -1).astype(
        np.uint8
    )


def _dark(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float32) * 0.12).astype(np.uint8)


def _overexposed(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    lit = luma > 0.1 * float(luma.max())
    median = float(np.median(luma[lit])) if lit.any() else 128.0
    gain = max(2.2, (255.0 - 70.0) / max(median, 1.0))
    # rounded, not truncated: the median luma's float32 rounding (BLAS summation order differs between machines)
    # would otherwise leave a field meant to reach full scale at 254
    return np.clip(np.rint(x * gain + 70.0), 0, 255).astype(np.uint8)


#: Ungradable versions of a genuine image (the bench's "degraded" foreign sets).
DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blurred": _blur,
    "dark": _dark,
    "overexposed": _overexposed,
}


def degrade(image: np.ndarray, kind: str) -> np.ndarray:
    """``image`` made ungradable: ``blurred`` (Gaussian σ = 1.2 % of its longer side), ``dark`` (× 0.12) or
    ``overexposed`` (× g + 70, clipped, with g ≥ 2.2 and large enough to lift the lit area's median luma to full
    scale — a fixed × 2.2 + 70 turns an *underexposed* photograph into a well-exposed one, not an ungradable one)."""
    if kind not in DEGRADATIONS:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("degradation", kind, DEGRADATIONS)
    return DEGRADATIONS[kind](np.asarray(image))


# ---------------------------------------------------------------------------------------------- calibration
#: Per modality: measure → (sides checked, whether it may flag). "low"/"high" sides refuse outside the
#: calibrated quantile limits; flaggable measures also flag between the 1 % and the refuse limit.
MEASURE_RULES: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "fundus": {
        "colourfulness": (("low",), False),
        "red_dominance": (("low",), False),
        "luminance": (("low", "high"), True),
        "dark_fraction": (("high",), False),
        "clipped_fraction": (("high",), True),
        "fine_detail": (("low",), True),
        "bright_fraction": (("low",), False),
    },
    "oct": {
        "colourfulness": (("high",), False),
        "luminance": (("low", "high"), True),
        "clipped_fraction": (("high",), True),
        "sharpness": (("low",), True),
    },
    "cxr": {
        "colourfulness": (("high",), False),
        "luminance": (("low", "high"), True),
        "clipped_fraction": (("high",), True),
        "sharpness": (("low",), True),
    },
}

#: Version written into the gate cards (0.2.0: fine-detail ratio for the fundus, surround-aware field of view,
#: refuse limits a quarter beyond the 0.5 % quantile, flags beyond the calibration range).
GATE_VERSION = "0.2.0"
#: Smallest shorter side any gate accepts, pixels (fixed, not calibrated: below it there is nothing to grade).
MIN_SIDE_PX = 64
#: Absolute floors of the colourfulness limit of greyscale modalities (JPEG chroma noise of a grey scan ≈ 1–3).
_GREY_COLOUR_REFUSE, _GREY_COLOUR_FLAG = 10.0, 5.0


#: Smallest margin between a calibration quantile and a limit, per measure (its own unit): quantiles of a measure
#: that is ~0 on every genuine image (burnt-out share) would otherwise refuse the first genuine image with 0.1 %.
MIN_MARGIN: dict[str, float] = {
    "colourfulness": 3.0,
    "red_dominance": 5.0,
    "luminance": 5.0,
    "dark_fraction": 0.05,
    "clipped_fraction": 0.05,
    "sharpness": 0.02,
    "fine_detail": 0.02,
    "bright_fraction": 0.05,
}


#: How far beyond the 0.5 %/99.5 % calibration quantile a refuse limit lies, as a share of that quantile's distance
#: to the median (at least the measure's :data:`MIN_MARGIN`). A quarter, not less: public datasets hold genuinely
#: poor photographs (a hazy cataract eye has little fine detail, a red fundus burns out its red channel), which the
#: fundus analyzer must still see — flagged, not refused — while ungradable inputs lie far beyond.
REFUSE_SPREAD = 0.25


def _limit(values: np.ndarray, sides: tuple[str, ...], flaggable: bool, min_margin: float = 0.0) -> MeasureLimit:
    """Refuse beyond the 0.5 %/99.5 % quantile by :data:`REFUSE_SPREAD` of its distance to the median (at least
    ``min_margin``); flag (when ``flaggable``) beyond the most extreme calibration value by half ``min_margin``.

    Why flags at the extremes and not at a 1 % tail: a gate checks seven or eight measures and the embedding, so
    a 1 % tail each would flag several percent of genuine images; flagged at the calibration range, the image
    that is flagged is one unlike every calibration image. Where that lies beyond the refuse limit there is no
    flag band (``None``).
    """
    v = np.asarray(values, dtype=float)
    med = float(np.median(v))
    lim = MeasureLimit(
        method=f"{len(v)} calibration images: refuse beyond the 0.5 %/99.5 % quantile by {REFUSE_SPREAD:g} of its "
        f"distance to the median (at least {min_margin:g}); flag beyond the calibration range by {min_margin / 2:g}"
    )
    if "low" in sides:
        q = float(np.quantile(v, 0.005))
        lim.refuse_below = q - max(REFUSE_SPREAD * abs(med - q), min_margin)
        if flaggable:
            flag = float(v.min()) - 0.5 * min_margin
            lim.flag_below = flag if flag > lim.refuse_below else None
    if "high" in sides:
        q = float(np.quantile(v, 0.995))
        lim.refuse_above = q + max(REFUSE_SPREAD * abs(q - med), min_margin)
        if flaggable:
            flag = float(v.max()) + 0.5 * min_margin
            lim.flag_above = flag if flag < lim.refuse_above else None
    return lim


def _outside_share(
    measures: list[dict[str, float]], dist: np.ndarray, limits: dict[str, MeasureLimit], distance: DistanceLimit
) -> dict[str, float]:
    """Shares of the calibration images the limits would flag or refuse (said in the card, not tuned on)."""
    refuse = flag = 0
    for m, d in zip(measures, dist, strict=True):
        r = f = False
        for name, lim in limits.items():
            v = m[name]
            if (lim.refuse_below is not None and v < lim.refuse_below) or (
                lim.refuse_above is not None and v > lim.refuse_above
            ):
                r = True
            elif (lim.flag_below is not None and v < lim.flag_below) or (
                lim.flag_above is not None and v > lim.flag_above
            ):
                f = True
        r = r or bool(d > distance.refuse_above)
        f = f or bool(d > distance.flag_above)
        refuse += r
        flag += f and not r
    n = max(1, len(measures))
    return {"refused": refuse / n, "flagged": flag / n, "passed": 1 - (refuse + flag) / n}


def calibrate_gate(
    modality: str,
    images: list[GenuineImage],
    out: Path,
    *,
    embed: Callable[[list[np.ndarray]], np.ndarray] | None = None,
    n_components: int = 32,
) -> GateCard:
    """Fit the reference on the ``fit`` images, the limits on the ``calib`` images, and write the gate artifact.

    Args:
        modality: ``fundus``, ``oct`` or ``cxr``.
        images: the modality's genuine images (their split comes from :func:`split_of`).
        out: the artifact folder to write (``card.json`` + ``reference.npz``).
        embed: the embedding function (default :func:`vitalens.quality.embedding.embed_images`).
        n_components: principal axes of the reference (fewer when the fit split is small).

    Raises:
        ValueError: too few fit or calibration images.
    """
    from vitalens.quality.measures import measure_image
    from vitalens.quality.reference import EmbeddingReference

    if embed is None:
        from vitalens.quality.embedding import embed_images as embed
    fit = [im for im in images if split_of(modality, im.group) == "fit"]
    calib = [im for im in images if split_of(modality, im.group) == "calib"]
    if len(fit) < 20 or len(calib) < 20:
        raise ValueError(f"{modality}: {len(fit)} fit and {len(calib)} calibration images; need ≥ 20 of each")
    k = max(4, min(n_components, len(fit) // 4))
    logger.info("%s: embedding %d fit images", modality, len(fit))
    reference = EmbeddingReference.fit(embed([im.load() for im in fit]), n_components=k)
    logger.info("%s: measuring %d calibration images", modality, len(calib))
    pixels = [im.load() for im in calib]
    measures = [measure_image(p).as_dict() for p in pixels]
    dist = reference.distance(embed(pixels))
    limits: dict[str, MeasureLimit] = {
        "min_side_native_px": MeasureLimit(refuse_below=float(MIN_SIDE_PX), method="fixed: the smallest gradable side")
    }
    for name, (sides, flaggable) in MEASURE_RULES[modality].items():
        limits[name] = _limit(np.asarray([m[name] for m in measures]), sides, flaggable, MIN_MARGIN.get(name, 0.0))
    if modality in ("oct", "cxr"):
        c = limits["colourfulness"]
        c.refuse_above = max(c.refuse_above or 0.0, _GREY_COLOUR_REFUSE)
        c.flag_above = max(c.flag_above or 0.0, _GREY_COLOUR_FLAG)
        c.method += f"; floors {_GREY_COLOUR_REFUSE:g} (refuse) and {_GREY_COLOUR_FLAG:g} (flag)"
    med, q995 = (float(np.quantile(dist, q)) for q in (0.5, 0.995))
    refuse_d = q995 + 0.25 * (q995 - med)
    distance = DistanceLimit(
        flag_above=min(float(dist.max()), refuse_d),
        refuse_above=refuse_d,
        method=f"{len(dist)} calibration images: flag above the largest, refuse above the 99.5 % quantile plus a "
        "quarter of its distance to the median",
    )
    outside = _outside_share(measures, dist, limits, distance)
    datasets = sorted({im.dataset for im in images})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference.save(out / REFERENCE_FILE)
    card = GateCard(
        name=f"quality-{modality}",
        modality=modality,  # type: ignore[arg-type]
        version=GATE_VERSION,
        description=f"Input quality and out-of-distribution gate for {modality} images: classical measures and the "
        "Mahalanobis distance of an ImageNet EfficientNet-Lite0 embedding to genuine images.",
        measures=limits,
        distance=distance,
        reference={"n_components": k, "n_fit": len(fit), "datasets": datasets, "split": "fit (50 % of patients)"},
        calibration={
            "n_images": len(calib),
            "split": "calib (25 % of patients, hash of the patient id)",
            "datasets": {d: sum(im.dataset == d for im in calib) for d in datasets},
            "distance_median": med,
            "outside_share": outside,
            "foreign_images_used": 0,
        },
        intended_use="Decides before an analyzer runs whether an upload is a gradable image of the kind the "
        "analyzer expects: refuse (not analysed, with the reason), flag (analysed, shown with the reason) or pass.",
        limitations="Calibrated on public research datasets (a few hundred images per modality); cameras, "
        "scanners and populations unlike them may be flagged or refused. A pass says the image looks like the "
        "training data, not that the findings are right. Decision support, not a diagnosis.",
        files={REFERENCE_FILE: _sha256(out / REFERENCE_FILE)},
    )
    card.write(out)
    logger.info("%s gate written to %s (fit %d, calib %d)", modality, out, len(fit), len(calib))
    return card


def iter_modalities() -> Iterator[str]:
    yield from ("fundus", "oct", "cxr")


def main(argv: list[str] | None = None) -> int:
    """Command line: fit every modality's gate from ``--shared`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True, help="the shared data root (../shared/data)")
    parser.add_argument("--out", type=Path, required=True, help="models folder; writes quality-<modality>/ in it")
    parser.add_argument("--modality", action="append", choices=list(iter_modalities()), help="default: all")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for modality in args.modality or list(iter_modalities()):
        images = genuine_images(args.shared, modality)
        calibrate_gate(modality, images, args.out / f"quality-{modality}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
