"""Synthetic twin of APTOS 2019: ``train.csv`` + ``train_images/<id_code>.png`` with DR signs by grade.

Why: the DR adapter, task, analyzer and gallery are tested offline on a folder the real adapter reads unchanged.
The photographs come from the ODIR twin's renderer (:func:`vitalens.synth.odir.render_fundus`): grade 0 shows no
sign, grades 1–4 show microaneurysms, then blot haemorrhages and hard exudates in growing numbers, and grade 4 new
vessels on the disc. ``ben_graham=True`` writes them already filtered, as the shared APTOS sample is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vitalens.data._image_source import WriteItem
from vitalens.data.aptos import DR_GRADES, AptosDataset
from vitalens.errors import InputError

__all__ = ["render_dr_fundus", "write_aptos_synth"]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"


def render_dr_fundus(rng: np.random.Generator, grade: int, size: int = 128, side: str | None = None) -> np.ndarray:
    """One procedural fundus photograph (uint8 ``(size, size, 3)``) with the signs of ICDR ``grade`` 0–4."""
    from vitalens.synth.odir import DR_GRADES as ODIR_DR_KEYWORDS
    from vitalens.synth.odir import EyeFindings, render_fundus

    if grade not in range(len(DR_GRADES)):
        raise InputError(f"DR grade must be 0–4, got {grade}", field="grade")
    findings = EyeFindings()
    if grade > 0:
        findings = EyeFindings(keywords={"D": ODIR_DR_KEYWORDS[grade - 1]}, dr_grade=grade - 1)
    return render_fundus(rng, size, side or str(rng.choice(["left", "right"])), findings)


def write_aptos_synth(
    root: Path, n_per_grade: int = 6, *, image_size: int = 128, ben_graham: bool = False, seed: int = 0
) -> Path:
    """Write an APTOS 2019 twin with ``n_per_grade`` photographs per grade and the synthetic marker.

    Args:
        root: folder to create or fill.
        n_per_grade: images per grade (≥ 1).
        image_size: side, pixels (≥ 64).
        ben_graham: store the images Ben-Graham filtered (like the shared APTOS derivative) instead of raw.
        seed: the only source of randomness.
    """
    from vitalens.data.image_preprocess import BenGraham

    if n_per_grade < 1 or image_size < 64:
        raise InputError(f"need n_per_grade ≥ 1 and image_size ≥ 64, got {n_per_grade}, {image_size}", field="size")
    rng = np.random.default_rng(seed)
    filt = BenGraham(skip_if_filtered=False) if ben_graham else None
    items = []
    codes = rng.choice(16**12, size=len(DR_GRADES) * n_per_grade, replace=False)
    order = rng.permutation(len(codes))
    for k, i in enumerate(order):
        grade = int(i % len(DR_GRADES))
        image = render_dr_fundus(rng, grade, image_size)
        if filt is not None:
            image = filt(image)
        items.append(WriteItem(image, str(grade), name=f"{int(codes[k]):012x}"))
    AptosDataset.write(root, items)
    (Path(root) / SYNTHETIC_MARKER).write_text(
        f"# Synthetic APTOS 2019 twin\n\nWritten by vitalens.synth.aptos ({len(items)} images, {image_size} px, "
        f"Ben-Graham filtered: {ben_graham}, seed {seed}). Procedural photographs, no patient data: models trained "
        "on it are demonstration models only. Decision support, not a diagnosis.\n",
        encoding="utf-8",
    )
    logger.info("write_aptos_synth: %d images in %s", len(items), root)
    return Path(root)
