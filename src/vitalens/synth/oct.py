"""Synthetic twins of the Kermany OCT2017 and OCT-C8 layouts: procedural retinal B-scans whose class is visible.

Why: the OCT adapters, training tasks, analyzers and galleries must be tested offline, and a model trained on the
twin must have something real to find (Grad-CAM should land on the lesion). Nothing here resembles a patient.

A B-scan is drawn as the retina in cross-section: vitreous (dark) above the internal limiting membrane, the
nerve-fibre layer thickening away from the foveal pit, alternating bright plexiform and dark nuclear layers, the
bright photoreceptor line and retinal pigment epithelium (RPE), the textured choroid beneath; then speckle.
Signs per class:

- ``NORMAL`` none;
- ``DRUSEN`` dome-shaped elevations of the RPE with medium-bright material beneath;
- ``CNV`` a hyper-reflective lesion above a broken RPE with subretinal fluid (dark) beside it;
- ``DME`` dark cystoid spaces inside the inner and outer nuclear layers, and a thickened retina;
- OCT-C8 adds ``AMD`` (drusen and a zone of RPE loss with bright choroid beneath), ``CSR`` (a smooth dark dome of
  serous fluid lifting the whole retina off the RPE), ``DR`` (bright hard-exudate dots and small cysts) and ``MH``
  (a full-thickness gap at the fovea with cystic, lifted edges).

Example:
    >>> root = write_kermany_synth(tmp_path / "oct", n_patients=12, seed=0)   # doctest: +SKIP
    >>> KermanyOctDataset(root).class_counts()                               # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy import ndimage

from vitalens.data._image_source import WriteItem
from vitalens.data.kermany import KERMANY_LABELS, KermanyOctDataset
from vitalens.data.octc8 import OCTC8_LABELS, OctC8Dataset
from vitalens.errors import InputError

__all__ = ["render_bscan", "write_kermany_synth", "write_octc8_synth", "BSCAN_CLASSES", "SYNTHETIC_MARKER"]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"
BSCAN_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(KERMANY_LABELS + OCTC8_LABELS))

#: (thickness at the rim as a share of the image height, reflectivity 0–1, thins in the foveal pit).
_LAYERS: tuple[tuple[float, float, bool], ...] = (
    (0.035, 0.80, True),  # nerve-fibre layer
    (0.040, 0.55, True),  # ganglion cell / inner plexiform
    (0.022, 0.22, True),  # inner nuclear layer
    (0.015, 0.50, True),  # outer plexiform
    (0.045, 0.18, False),  # outer nuclear layer
    (0.010, 0.85, False),  # photoreceptor inner/outer segments
    (0.016, 1.00, False),  # retinal pigment epithelium
)


def _bump(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth dome of height 1 at ``centre`` and half-width ``width`` (0 outside)."""
    u = (x - centre) / max(width, 1e-6)
    return np.where(np.abs(u) < 1, np.cos(0.5 * np.pi * u) ** 2, 0.0)


def render_bscan(rng: np.random.Generator, label: str, height: int = 248, width: int = 256) -> np.ndarray:
    """Render one grey B-scan ``(height, width)`` uint8 showing the signs of ``label`` (see the module text)."""
    if label not in BSCAN_CLASSES:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("B-scan class", label, BSCAN_CLASSES)
    h, w = int(height), int(width)
    if h < 32 or w < 32:
        raise InputError(f"B-scan size {h}×{w} is too small; need ≥ 32 px each side", field="size")
    x = np.arange(w, dtype=np.float64)
    yy = np.arange(h, dtype=np.float64)[:, None]
    fovea = w * rng.uniform(0.42, 0.58)
    pit = _bump(x, fovea, w * rng.uniform(0.10, 0.15))
    tilt = rng.uniform(-0.04, 0.04) * h * (x / w - 0.5)
    curve = rng.uniform(0.0, 0.10) * h * ((x - w / 2) / (w / 2)) ** 2
    ilm = h * rng.uniform(0.30, 0.38) + tilt + curve + 0.05 * h * pit
    gain = rng.uniform(0.85, 1.1)

    thickness = [
        np.full(w, t * h * rng.uniform(0.85, 1.15)) * (1 - 0.85 * pit if thins else 1) for t, _, thins in _LAYERS
    ]
    if label in ("DME", "DR"):  # oedema thickens the inner retina around the fovea
        swell = _bump(x, fovea + rng.normal(0, 0.05 * w), w * 0.3)
        thickness[2] = thickness[2] + 0.05 * h * swell
        thickness[4] = thickness[4] + 0.06 * h * swell
    rpe_lift = np.zeros(w)
    if label in ("DRUSEN", "AMD"):
        for _ in range(int(rng.integers(3, 7))):
            rpe_lift += (
                0.035
                * h
                * rng.uniform(0.6, 1.2)
                * _bump(x, fovea + rng.normal(0, 0.18 * w), w * rng.uniform(0.03, 0.06))
            )
    serous = np.zeros(w)
    if label == "CSR":
        serous = (
            0.10 * h * rng.uniform(0.8, 1.2) * _bump(x, fovea + rng.normal(0, 0.04 * w), w * rng.uniform(0.18, 0.26))
        )
    if label == "CNV":
        serous = 0.05 * h * _bump(x, fovea + rng.normal(0, 0.04 * w), w * 0.2)

    image = np.zeros((h, w))
    top = ilm.copy()
    bounds = [top.copy()]
    for k, ((_, refl, _), t) in enumerate(zip(_LAYERS, thickness, strict=True)):
        if k == 5:  # the neurosensory retina ends here: serous fluid lies between it and the RPE
            top = top + serous
        if k == 6:
            top = top - rpe_lift
        bottom = top + t
        image += ((yy >= top) & (yy < bottom)) * refl
        bounds.append(bottom.copy())
        top = bottom
    rpe_bottom = top
    # Drusen: medium-bright material between the lifted RPE and Bruch's membrane.
    bruch = rpe_bottom + rpe_lift
    image += ((yy >= rpe_bottom) & (yy < bruch)) * 0.55
    # Choroid: textured, fading with depth; brighter where the RPE is missing (hypertransmission).
    depth = (yy - bruch) / (0.12 * h)
    texture = ndimage.gaussian_filter(rng.uniform(0, 1, (h, w)), (1.5, 4.0))
    choroid = np.where(yy >= bruch, (0.25 + 0.35 * texture) * np.exp(-np.clip(depth, 0, None) * 1.2), 0.0)
    atrophy = np.zeros(w, bool)
    if label == "AMD":
        c = fovea + rng.normal(0, 0.06 * w)
        atrophy = np.abs(x - c) < w * rng.uniform(0.05, 0.09)
        rpe_band = (yy >= bounds[6]) & (yy < bounds[7])
        image[rpe_band & atrophy[None, :]] *= 0.25
        choroid[:, atrophy] *= 1.8
    image += choroid
    # Serous fluid is optically empty.
    if serous.any():
        fluid = (yy >= bounds[5]) & (yy < bounds[5] + serous)
        image[fluid] = 0.02
    if label in ("DME", "DR", "MH"):
        n_cysts = {"DME": int(rng.integers(4, 9)), "DR": int(rng.integers(1, 3)), "MH": 4}[label]
        for _ in range(n_cysts):
            cx = (
                fovea + rng.normal(0, 0.12 * w)
                if label != "MH"
                else fovea + rng.choice([-1, 1]) * rng.uniform(0.06, 0.12) * w
            )
            layer = int(rng.choice([2, 4]))
            cy = 0.5 * (bounds[layer] + bounds[layer + 1])[int(np.clip(cx, 0, w - 1))]
            ry, rx = rng.uniform(0.012, 0.03) * h, rng.uniform(0.012, 0.035) * w
            image[((yy - cy) / ry) ** 2 + ((x[None, :] - cx) / rx) ** 2 < 1] = 0.04
    if label == "DR":
        for _ in range(int(rng.integers(5, 12))):
            cx = fovea + rng.normal(0, 0.2 * w)
            col = int(np.clip(cx, 0, w - 1))
            cy = rng.uniform(bounds[1][col], bounds[5][col])
            r = rng.uniform(0.006, 0.012) * h
            image[((yy - cy) ** 2 + (x[None, :] - cx) ** 2) < r**2] = 1.0
    if label == "CNV":
        c = fovea + rng.normal(0, 0.05 * w)
        col = int(np.clip(c, 0, w - 1))
        cy = bounds[6][col] - 0.01 * h
        ry, rx = rng.uniform(0.04, 0.06) * h, rng.uniform(0.07, 0.1) * w
        blob = ((yy - cy) / ry) ** 2 + ((x[None, :] - c) / rx) ** 2 < 1
        image[blob] = np.maximum(image[blob], 0.75 + 0.2 * texture[blob])
        broken = np.abs(x - c) < rx * 0.6
        rpe_band = (yy >= bounds[6]) & (yy < bounds[7])
        image[rpe_band & broken[None, :]] *= 0.5
    if label == "MH":
        gap = np.abs(x - fovea) < w * rng.uniform(0.025, 0.045)
        inner = (yy >= ilm[None, :] - 0.02 * h) & (yy < bounds[5][None, :])
        image[inner & gap[None, :]] = 0.02
    image[yy < ilm[None, :]] *= 0.0
    image = ndimage.gaussian_filter(image, (0.8, 1.2)) * gain
    speckle = rng.gamma(6.0, 1 / 6.0, (h, w))
    image = image * speckle + 0.02 * rng.standard_normal((h, w)) + 0.03
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _marker(root: Path, dataset: str, n: int, seed: int) -> None:
    (root / SYNTHETIC_MARKER).write_text(
        f"# Synthetic twin of {dataset}\n\nProcedural B-scans written by vitalens.synth.oct "
        f"({n} images, seed {seed}). Not patient data; models trained on it are demonstration models only.\n",
        encoding="utf-8",
    )


def write_kermany_synth(
    root: Path,
    n_patients: int = 24,
    *,
    scans_per_patient: tuple[int, int] = (1, 3),
    height: int = 124,
    width: int = 128,
    with_splits: bool = True,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> Path:
    """Write a Kermany OCT2017 twin: ``train|test/<CLASS>/<CLASS>-<patient>-<n>.jpeg`` + the synthetic marker.

    Patients are assigned classes in turn (every class occurs once ``n_patients ≥ 4``), each gets 1–3 scans,
    and ``test_fraction`` of the patients go to ``test/`` (patient-level, as the real archive intends).
    """
    if n_patients < len(KERMANY_LABELS):
        raise InputError(f"n_patients must be ≥ {len(KERMANY_LABELS)}, got {n_patients}", field="n_patients")
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(10_000, 9_999_999), size=n_patients, replace=False)
    n_test = max(1, int(round(test_fraction * n_patients))) if with_splits else 0
    items = []
    for k, pid in enumerate(ids):
        label = KERMANY_LABELS[k % len(KERMANY_LABELS)]
        split = "test" if k >= n_patients - n_test else "train"
        for _ in range(int(rng.integers(scans_per_patient[0], scans_per_patient[1] + 1))):
            items.append(WriteItem(render_bscan(rng, label, height, width), label, str(pid), split))
    root = KermanyOctDataset.write(Path(root), items, with_splits=with_splits)
    _marker(root, "Kermany OCT2017", len(items), seed)
    logger.info("wrote %d synthetic Kermany B-scans of %d patients to %s", len(items), n_patients, root)
    return root


def write_octc8_synth(
    root: Path,
    per_class: tuple[int, int, int] = (6, 2, 2),
    *,
    height: int = 124,
    width: int = 128,
    seed: int = 0,
) -> Path:
    """Write an OCT-C8 twin: ``train|val|test/<CLASS>/<class>_<split>_<n>.jpg`` (``per_class`` images per split)."""
    rng = np.random.default_rng(seed)
    items = [
        WriteItem(render_bscan(rng, label, height, width), label, split=split)
        for split, n in zip(("train", "val", "test"), per_class, strict=True)
        for label in OCTC8_LABELS
        for _ in range(n)
    ]
    root = OctC8Dataset.write(Path(root), items)
    _marker(root, "OCT-C8", len(items), seed)
    return root
