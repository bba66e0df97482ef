"""Synthetic twins of MedMNIST ``.npz`` files (RetinaMNIST, OCTMNIST, PneumoniaMNIST) at 28–224 px.

Why: the MedMNIST adapter and the RetinaMNIST bench are tested offline on archives with exactly the official keys
and shapes. Retina images come from the DR fundus renderer, OCT images from the B-scan renderer, chest X-rays from
a simple procedural chest (two dark lung fields; pneumonia adds patchy opacities), each downsized to ``size``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from vitalens.data._image_source import OFFICIAL_SPLITS, WriteItem
from vitalens.data.medmnist import MEDMNIST_FLAGS, MEDMNIST_SIZES, MedMnistDataset
from vitalens.errors import InputError

__all__ = ["write_medmnist_synth", "render_chest"]

logger = logging.getLogger(__name__)


def render_chest(rng: np.random.Generator, pneumonia: bool, size: int = 128) -> np.ndarray:
    """A procedural frontal chest radiograph, grey uint8 ``(size, size)``; pneumonia adds patchy opacities."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:size, 0:size] / size
    body = np.clip(1.2 - 2.2 * np.abs(xx - 0.5), 0, 1) * 0.75
    lungs = np.zeros((size, size))
    for cx in (0.33, 0.67):
        lungs += (((xx - cx - rng.normal(0, 0.01)) / 0.13) ** 2 + ((yy - 0.5) / 0.3) ** 2) < 1
    image = body - 0.45 * gaussian_filter(lungs, size / 40)
    if pneumonia:
        patches = gaussian_filter(rng.uniform(0, 1, (size, size)), size / 16)
        patches = (patches > np.quantile(patches, 0.7)) * lungs
        image += 0.35 * gaussian_filter(patches.astype(float), size / 30)
    image += 0.03 * rng.standard_normal((size, size))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _render(flag: str, label_index: int, rng: np.random.Generator, size: int) -> np.ndarray:
    from vitalens.synth.aptos import render_dr_fundus
    from vitalens.synth.oct import render_bscan

    info = MEDMNIST_FLAGS[flag]
    if flag == "retinamnist":
        big = render_dr_fundus(rng, label_index, max(64, size))
    elif flag == "octmnist":
        big = render_bscan(rng, info.labels[label_index], max(64, size), max(64, size))
    else:
        big = render_chest(rng, label_index == 1, max(64, size))
    if big.shape[0] != size:
        big = np.asarray(Image.fromarray(big).resize((size, size), Image.Resampling.BOX))
    return big


def write_medmnist_synth(
    root: Path, flag: str = "retinamnist", *, size: int = 28, per_class: tuple[int, int, int] = (8, 2, 3), seed: int = 0
) -> Path:
    """Write ``root/<flag>[_<size>].npz`` with ``per_class`` images per class in train/val/test; returns the file."""
    if flag not in MEDMNIST_FLAGS:
        from vitalens._naming import unknown_name_error

        raise unknown_name_error("MedMNIST flag", flag, MEDMNIST_FLAGS)
    if size not in MEDMNIST_SIZES:
        raise InputError(f"MedMNIST size must be one of {MEDMNIST_SIZES}, got {size}", field="size")
    info = MEDMNIST_FLAGS[flag]
    rng = np.random.default_rng(seed)
    items = [
        WriteItem(_render(flag, k, rng, size), label, split=split)
        for split, n in zip(OFFICIAL_SPLITS, per_class, strict=True)
        for k, label in enumerate(info.labels)
        for _ in range(n)
    ]
    path = MedMnistDataset.write(root, items, flag=flag)
    (Path(root) / "SYNTHETIC.md").write_text(
        f"# Synthetic {info.title} twin\n\nWritten by vitalens.synth.medmnist ({len(items)} images, {size} px, seed "
        f"{seed}). Procedural images, no patient data: models trained on it are demonstration models only.\n",
        encoding="utf-8",
    )
    logger.info("write_medmnist_synth: %s %d px, %d images → %s", flag, size, len(items), path)
    return path
