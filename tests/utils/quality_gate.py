"""A fundus quality gate calibrated in seconds on synthetic photographs, with a cheap stand-in for the encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitalens.quality.calibrate import GenuineImage, calibrate_gate
from vitalens.synth.odir import EyeFindings, render_fundus


def cheap_embed(images: list[np.ndarray]) -> np.ndarray:
    """A deterministic stand-in for the encoder: per-channel colour histograms (fundus vs grey images differ)."""
    out = []
    for im in images:
        small = np.asarray(im, dtype=np.float32)[::8, ::8]
        if small.ndim == 2:
            small = np.repeat(small[..., None], 3, axis=2)
        feats = [np.histogram(small[..., c], bins=8, range=(0, 256))[0] / small[..., c].size for c in range(3)]
        out.append(np.concatenate(feats))
    return np.asarray(out)


def make_synthetic_fundus_gate(models_dir: Path, *, n: int = 160, size: int = 128, seed: int = 0) -> Path:
    """Calibrate ``models_dir/quality-fundus`` on ``n`` synthetic fundi (``cheap_embed``); returns the folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    src = Path(models_dir).parent / "gate-src"
    images = []
    for i in range(n):
        path = src / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_fundus(rng, size, "left" if i % 2 else "right", EyeFindings())).save(path)
        images.append(GenuineImage("synthetic", str(i), f"p{i}", path))
    out = Path(models_dir) / "quality-fundus"
    calibrate_gate("fundus", images, out, embed=cheap_embed, n_components=6)
    return out
