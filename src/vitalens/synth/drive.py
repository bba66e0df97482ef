"""Synthetic twin of DRIVE: procedural fundus photographs with their exact vessel masks, in DRIVE's layout.

Why a twin: the vessel training task, the analyzer and their tests must run on a fresh clone without the real
data. The photographs come from the same renderer as the ODIR twin (:func:`vitalens.synth.odir.render_fundus_layers`),
whose drawn arterioles and venules *are* the ground truth, so the first observer's mask is exact; the second
observer's mask (test split) is the first one dilated or eroded at random spots, as two humans disagree at the
thin ends and the edges. The twin also records where the renderer put the optic disc and which vessels are
arteries (``SYNTHETIC.json``), so disc localisation and artery/vein separation can be checked against truth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from scipy import ndimage

from vitalens.data.drive import write_drive_record
from vitalens.errors import InputError
from vitalens.synth.odir import SYNTHETIC_MARKER, EyeFindings, render_fundus_layers

__all__ = ["write_drive_synth", "SYNTHETIC_TRUTH"]

logger = logging.getLogger(__name__)

#: Per-image truth the real DRIVE lacks (disc centre and radius), written beside the marker file.
SYNTHETIC_TRUTH = "synthetic.json"


def _second_observer(vessels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first mask, dilated in some random blobs and eroded in others (inter-observer disagreement)."""
    blobs = ndimage.gaussian_filter(rng.standard_normal(vessels.shape), 6.0)
    spread = blobs.std() or 1.0
    grown = ndimage.binary_dilation(vessels) & (blobs > 0.8 * spread)
    shrunk = ndimage.binary_erosion(vessels) | (blobs > -0.8 * spread)
    return (vessels | grown) & shrunk


def write_drive_synth(root: Path, *, n_train: int = 6, n_test: int = 4, image_size: int = 160, seed: int = 0) -> Path:
    """Write a synthetic DRIVE folder under ``root`` and return ``root``.

    Args:
        root: folder to create or fill.
        n_train: images in ``training/`` (ids 21, 22, …, as in DRIVE).
        n_test: images in ``test/`` (ids 01, 02, …), each with a second observer's mask.
        image_size: side of each photograph, pixels (≥ 64).
        seed: seeds the one generator; equal seeds give identical folders.

    Returns:
        ``root``, readable by :class:`vitalens.data.drive.DriveDataset`.
    """
    if image_size < 64:
        raise InputError(f"image_size must be ≥ 64 px, got {image_size}", field="image_size")
    if n_train < 1 or n_test < 1:
        raise InputError(f"need at least one image per split, got {n_train} and {n_test}", field="n_train")
    rng = np.random.default_rng(seed)
    root = Path(root)
    truth: dict[str, dict[str, object]] = {}
    plan = [("training", f"{21 + i:02d}") for i in range(n_train)] + [("test", f"{1 + i:02d}") for i in range(n_test)]
    for split, image_id in plan:
        side = "right" if rng.random() < 0.5 else "left"
        findings = EyeFindings(keywords={"H": "hypertensive retinopathy"}) if rng.random() < 0.25 else EyeFindings()
        layers = render_fundus_layers(rng, image_size, side, findings)
        vessels = ((layers.arteries > 0.5) | (layers.veins > 0.5)) & layers.fov
        write_drive_record(
            root,
            split,
            image_id,
            image=layers.image,
            vessels=vessels,
            fov=layers.fov,
            vessels_second=_second_observer(vessels, rng) & layers.fov if split == "test" else None,
        )
        truth[f"{split}/{image_id}"] = {
            "side": side,
            "disc_xy": list(layers.disc_xy),
            "disc_radius": layers.disc_radius,
            "arteries_px": int(((layers.arteries > 0.5) & layers.fov).sum()),
            "veins_px": int(((layers.veins > 0.5) & layers.fov).sum()),
        }
    (root / SYNTHETIC_MARKER).write_text(
        f"# Synthetic DRIVE twin\n\nWritten by vitalens.synth.drive.write_drive_synth(n_train={n_train}, "
        f"n_test={n_test}, image_size={image_size}, seed={seed}). Procedural images, no patient data: models trained "
        "on it are for tests and demos only. Decision support, not a diagnosis.\n",
        encoding="utf-8",
    )
    (root / SYNTHETIC_TRUTH).write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    logger.info("write_drive_synth: %d + %d images of %d px in %s", n_train, n_test, image_size, root)
    return root
