"""A synthetic value for any registered upload slot, from its declaration (kind, modality, colour, limits).

Why by declaration: the conformance tests run every analyzer in ``list_analyzers()``, including ones added later,
so the inputs are made from what a slot says it takes — the project's synthetic twins where the modality has one
(fundus, OCT, chest X-ray, ECG), else a plain image or ECG that meets the slot's limits.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_DATA
from vitalens.slots import SlotKind, SlotSpec

__all__ = ["synthetic_upload"]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _image(spec: SlotSpec, limits: object, rng: np.random.Generator) -> np.ndarray:
    size = max(256, int(getattr(limits, "min_side", None) or 0))
    if spec.modality == "fundus":
        from vitalens.synth.odir import EyeFindings, render_fundus

        return render_fundus(rng, size, spec.laterality or "left", EyeFindings())
    if spec.modality == "oct":
        from vitalens.synth.oct import BSCAN_CLASSES, render_bscan

        return render_bscan(rng, BSCAN_CLASSES[0], height=size, width=size)
    if spec.modality == "cxr":
        from vitalens.synth.cxr import CXR_CLASSES, render_cxr

        return render_cxr(size, CXR_CLASSES[0], rng)
    if getattr(limits, "colour", None) == "gray":
        return rng.integers(0, 255, (size, size), dtype=np.uint8)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


#: Genuine images per modality in ../shared/data (their README): the fallback when every synthetic twin of a slot is
#: refused by the bundled gate, which is fitted on real images (the chest X-ray twin is far from real radiographs in
#: the gate's ImageNet embedding). ``{side}`` is the slot's laterality.
_REAL_SAMPLES = {
    "cxr": "cxr/covid19_radiography_sample/Normal/images/*.png",
    "oct": "oct/kermany_oct2017_samples/NORMAL/*.jpeg",
    "fundus": "fundus/odir/images/*_{side}.jpg",
}


def _real_images(spec: SlotSpec, limit: int = 5) -> list[np.ndarray]:
    pattern = _REAL_SAMPLES.get(spec.modality or "")
    if pattern is None or not SHARED_DATA.is_dir():
        return []
    paths = sorted(SHARED_DATA.glob(pattern.format(side=spec.laterality or "left")))[:limit]
    colour = "L" if spec.modality in ("cxr", "oct") else "RGB"
    return [np.asarray(Image.open(p).convert(colour)) for p in paths]


def _ecg_csv(fs: float = 500.0, seconds: float = 10.0) -> bytes:
    from vitalens.io.ecg import STANDARD_LEADS
    from vitalens.synth.ptbxl import synth_ecg

    x = synth_ecg("NORM", fs=int(fs), duration_s=seconds, seed=3)
    t = np.arange(x.shape[1]) / fs
    rows = ["time_s," + ",".join(STANDARD_LEADS)]
    rows += [f"{t[i]:.4f}," + ",".join(f"{v:.4f}" for v in x[:, i]) for i in range(x.shape[1])]
    return "\n".join(rows).encode()


def _encode(spec: SlotSpec, value: object) -> tuple[str, bytes, str]:
    if spec.kind == SlotKind.IMAGE:
        return f"{spec.name}.png", _png(np.asarray(value)), "image/png"
    return f"{spec.name}.csv", value, "text/csv"  # type: ignore[return-value]


def synthetic_upload(
    spec: SlotSpec, limits: object, *, gates: tuple[str, ...] = (), analyzer: object | None = None, seed: int = 0
) -> tuple[str, bytes, str]:
    """``(filename, bytes, media type)`` of a synthetic upload for ``spec`` meeting ``limits``.

    With ``gates`` (the analyzer's quality gates on this slot), the first of ten seeded draws that no gate refuses:
    the synthetic twins lie near the gates' edges (an OCT twin's embedding distance is about the refusal limit), and
    a refused input would test the refusal, not the rendering. Deterministic for a given seed.

    Raises:
        NotImplementedError: a kind no upload carries (numbers, categories, text go in form fields).
        pytest.skip: every draw was refused and ../shared/data holds no genuine image of the modality that passes
            (the reason names the gate's verdict).
    """
    from vitalens.quality import run_gate

    if spec.kind not in (SlotKind.IMAGE, SlotKind.ECG):
        raise NotImplementedError(f"slot {spec.name} ({spec.kind}) is not a file upload")
    reasons = []
    for k in range(10):
        rng = np.random.default_rng(seed * 100 + k)
        if spec.kind == SlotKind.IMAGE:
            value: object = _image(spec, limits, rng)
            checked = value
        else:
            value = _ecg_csv()
            checked = None
        verdicts = [run_gate(g, checked, slot=spec.name, analyzer=analyzer) for g in gates if checked is not None]
        refused = [v for v in verdicts if v.verdict == "refuse"]
        if not refused:
            return _encode(spec, value)
        reasons += [v.message for v in refused]
    for image in _real_images(spec) if spec.kind == SlotKind.IMAGE else []:
        verdicts = [run_gate(g, image, slot=spec.name, analyzer=analyzer) for g in gates]
        if not any(v.verdict == "refuse" for v in verdicts):
            return _encode(spec, image)
    pytest.skip(f"every synthetic {spec.name} was refused ({reasons[-1]}) and no genuine sample in {SHARED_DATA}")
