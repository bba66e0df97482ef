"""Synthetic twin of the COVID-19 Radiography Database: procedural radiographs in its ``<Class>/images`` layout.

Why: tests, CI and the offline demo need folders the real adapters read unchanged, small enough to train the
anomaly pipeline in seconds, whose abnormal classes leave *visible* signs (so the anomaly score and its heat map
have something real to find). Nothing here resembles a patient; every artifact trained on it says so in its card.

What is drawn (posteroanterior view, grayscale): the body outline, two dark lung fields with a faint vascular
texture, mediastinum and spine, the heart shadow, rib arcs, clavicles and the diaphragm domes, with per-image
variation of size, position, exposure and noise. Abnormal classes add, inside the lung fields:

- ``COVID``: bilateral, peripheral, lower-zone ground-glass opacities (the typical COVID-19 pattern);
- ``Viral Pneumonia``: patchy perihilar/interstitial opacities, streaky, often bilateral;
- ``Lung_Opacity``: one dense lobar consolidation in one lung.

Layout written: ``root/<Class>/images/<Class>-<n>.png`` (:func:`write_covid_radiography_synth`) with a
``SYNTHETIC.md`` marker so provenance detection labels anything trained on it. (PneumoniaMNIST's twin is
:func:`vitalens.synth.medmnist.write_medmnist_synth` with ``flag="pneumoniamnist"``.)

Example:
    >>> root = write_covid_radiography_synth(tmp_path / "cxr", n_per_class={"Normal": 30, "COVID": 8})  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from vitalens._naming import unknown_name_error
from vitalens.data.covid_radiography import CXR_CLASSES, write_covid_radiography
from vitalens.errors import InputError

__all__ = [
    "SYNTHETIC_MARKER",
    "render_cxr",
    "write_covid_radiography_synth",
    "DEFAULT_CLASS_COUNTS",
]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"
DEFAULT_CLASS_COUNTS: dict[str, int] = {"Normal": 40, "COVID": 10, "Viral Pneumonia": 10}
_WORK = 256  # drawing resolution; resized to the requested size at the end


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / (n - 1)
    return y, x


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float, soft: float) -> np.ndarray:
    """Soft-edged filled ellipse in [0, 1] (1 inside, falling to 0 over ``soft`` of the radius)."""
    r = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
    return np.clip((1.0 + soft - r) / soft, 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Low-frequency noise in about [-1, 1] (white noise blurred with a Gaussian of ``scale`` pixels)."""
    out = gaussian_filter(rng.normal(0.0, 1.0, (n, n)).astype(np.float32), scale)
    return out / (np.abs(out).max() + 1e-6)


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    return gaussian_filter(a.astype(np.float32), radius)


def _lung_masks(y: np.ndarray, x: np.ndarray, geo: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Right and left lung fields (image left = patient right), as soft masks."""
    cy, dx, ry, rx = geo["lung_cy"], geo["lung_dx"], geo["lung_ry"], geo["lung_rx"]
    right = _ellipse(y, x, cy, 0.5 - dx, ry, rx, 0.15)
    left = _ellipse(y, x, cy, 0.5 + dx, ry, rx * 0.92, 0.15)
    # The heart bites into the lower left lung field.
    heart = _ellipse(y, x, geo["heart_cy"], 0.5 + geo["heart_dx"], geo["heart_ry"], geo["heart_rx"], 0.2)
    left = np.clip(left - heart, 0.0, 1.0)
    return right, left


def _opacity(
    rng: np.random.Generator,
    y: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    centres: list[tuple[float, float]],
    radius: float,
    strength: float,
    texture: float,
) -> np.ndarray:
    """Blobs of added density at ``centres`` (fractions of the image), kept inside the lung ``mask``."""
    n = y.shape[0]
    blob = np.zeros_like(y)
    for cy, cx in centres:
        r = radius * rng.uniform(0.7, 1.3)
        blob = np.maximum(blob, _ellipse(y, x, cy, cx, r * rng.uniform(0.8, 1.3), r, 0.8))
    tex = 0.5 + 0.5 * _smooth_noise(rng, n, n / 40)
    return strength * blob * (1.0 - texture + texture * tex) * mask


def render_cxr(size: int, cls: str, rng: np.random.Generator) -> np.ndarray:
    """One synthetic posteroanterior chest radiograph of class ``cls``, uint8 ``(size, size)``.

    Raises:
        UnknownNameError: ``cls`` is not one of :data:`CXR_CLASSES`.
        InputError: ``size`` below 16 pixels.
    """
    if cls not in CXR_CLASSES:
        raise unknown_name_error("COVID-19 Radiography class", cls, CXR_CLASSES)
    if size < 16:
        raise InputError(f"image size must be ≥ 16 px, got {size}", field="image_size")
    n = _WORK
    y, x = _grid(n)
    u = rng.uniform
    geo = {
        "lung_cy": u(0.45, 0.52),
        "lung_dx": u(0.19, 0.23),
        "lung_ry": u(0.30, 0.36),
        "lung_rx": u(0.14, 0.17),
        "heart_cy": u(0.62, 0.68),
        "heart_dx": u(0.04, 0.08),
        "heart_ry": u(0.11, 0.14),
        "heart_rx": u(0.12, 0.16),
    }
    # Exposure and detector noise are drawn first, so one seed gives the same film with or without findings.
    blur_r, gamma, gain, offset = u(0.6, 1.2), u(0.85, 1.15), u(0.9, 1.1), u(-0.03, 0.03)
    noise_rng = np.random.default_rng(int(rng.integers(2**32)))
    body = _ellipse(y, x, 0.6, 0.5, u(0.62, 0.72), u(0.47, 0.55), 0.08)
    img = 0.08 + 0.42 * body
    right, left = _lung_masks(y, x, geo)
    lungs = np.clip(right + left, 0.0, 1.0)
    vessels = 0.5 + 0.5 * _smooth_noise(rng, n, 1.5)
    img = img - lungs * (0.34 - 0.10 * vessels)
    # Mediastinum and spine down the middle, heart shadow, diaphragm below the lungs.
    img = img + 0.22 * _ellipse(y, x, 0.45, 0.5, 0.45, 0.05, 0.5) * body
    img = img + 0.10 * _ellipse(y, x, geo["heart_cy"], 0.5 + geo["heart_dx"], geo["heart_ry"], geo["heart_rx"], 0.3)
    dome = geo["lung_cy"] + geo["lung_ry"] * 0.95
    img = img + 0.12 * np.clip((y - dome - 0.03 * np.cos((x - 0.5) * 6.0)) * 12.0, 0.0, 1.0) * body
    # Ribs: arcs across each lung field; clavicles at the top.
    for k in range(9):
        level = geo["lung_cy"] - geo["lung_ry"] + (k + 0.5) * (2 * geo["lung_ry"] / 9)
        for side in (-1.0, 1.0):
            arc = level + 0.05 * ((x - 0.5 - side * 0.02) * side * 4.0) ** 2 - 0.04
            band = np.exp(-(((y - arc) / 0.013) ** 2)) * ((x - 0.5) * side > 0.03)
            img = img + 0.05 * band * body
    for side in (-1.0, 1.0):
        clav = geo["lung_cy"] - geo["lung_ry"] - 0.01 + 0.12 * ((x - 0.5) * side - 0.15) ** 2
        img = img + 0.12 * np.exp(-(((y - clav) / 0.012) ** 2)) * ((x - 0.5) * side > 0.04) * ((x - 0.5) * side < 0.32)

    if cls == "COVID":
        # Bilateral peripheral lower-zone ground glass.
        centres = []
        for side in (-1.0, 1.0):
            for _ in range(int(rng.integers(2, 4))):
                centres.append(
                    (
                        geo["lung_cy"] + u(0.05, 0.25),
                        0.5 + side * (geo["lung_dx"] + u(0.03, 0.09)),
                    )
                )
        img = img + _opacity(rng, y, x, lungs, centres, 0.07, u(0.18, 0.26), 0.5)
    elif cls == "Viral Pneumonia":
        # Patchy perihilar opacities, streaky.
        centres = [
            (geo["lung_cy"] + u(-0.10, 0.15), 0.5 + s * (geo["lung_dx"] - u(0.0, 0.06)))
            for s in (-1.0, 1.0)
            for _ in range(int(rng.integers(2, 5)))
        ]
        streaks = np.clip(_smooth_noise(rng, n, 2.0), 0.0, 1.0)
        img = img + _opacity(rng, y, x, lungs, centres, 0.06, u(0.15, 0.22), 0.8) * (0.6 + 0.8 * streaks)
    elif cls == "Lung_Opacity":
        side = float(rng.choice([-1.0, 1.0]))
        centres = [(geo["lung_cy"] + u(-0.15, 0.2), 0.5 + side * geo["lung_dx"])]
        img = img + _opacity(rng, y, x, lungs, centres, 0.11, u(0.25, 0.32), 0.3)

    # Exposure, a little blur (the detector), quantum noise.
    img = _blur(img, blur_r)
    img = np.clip(img, 0.0, 1.0) ** gamma * gain + offset
    img = img + noise_rng.normal(0.0, 0.012, img.shape)
    out = Image.fromarray((np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mode="L")
    if size != n:
        out = out.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out)


def _write_marker(root: Path, what: str) -> None:
    (root / SYNTHETIC_MARKER).write_text(
        f"# Synthetic {what}\n\nProcedural radiographs written by `vitalens.synth.cxr` for tests and the offline "
        "demo. Nothing here is a patient image; models trained on it are demonstration models only.\n",
        encoding="utf-8",
    )


def write_covid_radiography_synth(
    root: Path,
    *,
    n_per_class: Mapping[str, int] | None = None,
    image_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write a synthetic COVID-19 Radiography Database folder (``<Class>/images/<Class>-<n>.png``).

    Args:
        root: output folder (created).
        n_per_class: images per class (default :data:`DEFAULT_CLASS_COUNTS`: 40 Normal, 10 COVID, 10 viral).
        image_size: side of the square PNGs, pixels (the real database: 299).
        seed: seed of the generator (same seed, same files).

    Returns:
        ``root``.
    """
    counts = dict(DEFAULT_CLASS_COUNTS if n_per_class is None else n_per_class)
    if counts.get("Normal", 0) < 1:
        raise InputError("a COVID-19 Radiography folder needs at least one Normal image", field="n_per_class")
    rng = np.random.default_rng(seed)
    root = Path(root)
    images = [(cls, render_cxr(image_size, cls, rng)) for cls in CXR_CLASSES for _ in range(int(counts.get(cls, 0)))]
    write_covid_radiography(root, images)
    _write_marker(root, "COVID-19 Radiography Database (layout twin)")
    logger.info("wrote synthetic COVID-19 Radiography folder %s: %s", root, counts)
    return root
