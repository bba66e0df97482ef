"""ODIR synthetic twin: layout, determinism, label/keyword consistency, visible label-dependent signs, speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from vitalens.data.odir import ODIR_LABELS, ODIR_SHEET_COLUMNS
from vitalens.synth.odir import (
    DR_GRADES,
    KEYWORD_SEP,
    NORMAL_KEYWORD,
    OTHER_LESIONS,
    EyeFindings,
    render_fundus,
    synth_odir_patients,
    write_odir_synth,
)

_KEYWORD_CODE = {
    **dict.fromkeys(DR_GRADES, "D"),
    **dict.fromkeys(OTHER_LESIONS, "O"),
    "glaucoma": "G",
    "suspected glaucoma": "G",
    "cataract": "C",
    "dry age-related macular degeneration": "A",
    "wet age-related macular degeneration": "A",
    "hypertensive retinopathy": "H",
    "pathological myopia": "M",
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_odir_synth(tmp_path_factory.mktemp("synth") / "odir", n_patients=16, image_size=64, seed=1)


def test_layout_and_exact_columns(synth_root: Path) -> None:
    labels = pd.read_csv(synth_root / "labels.csv")
    full = pd.read_csv(synth_root / "full_df.csv")
    assert tuple(labels.columns) == ODIR_SHEET_COLUMNS
    assert tuple(full.columns) == (*ODIR_SHEET_COLUMNS, "filepath", "labels", "target", "filename")
    assert len(labels) == 16 and len(full) == 32 and labels["ID"].is_unique
    assert "Synthetic ODIR-5K twin" in (synth_root / "SYNTHETIC.md").read_text(encoding="utf-8")
    assert set(full["filename"]) == set(labels["Left-Fundus"]) | set(labels["Right-Fundus"])
    for name in full["filename"]:
        with Image.open(synth_root / "images" / name) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (64, 64))


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = write_odir_synth(tmp_path / "a", n_patients=4, image_size=64, seed=9)
    b = write_odir_synth(tmp_path / "b", n_patients=4, image_size=64, seed=9)
    c = write_odir_synth(tmp_path / "c", n_patients=4, image_size=64, seed=10)
    assert (a / "labels.csv").read_bytes() == (b / "labels.csv").read_bytes()
    assert (a / "full_df.csv").read_bytes() == (b / "full_df.csv").read_bytes()
    for name in sorted(p.name for p in (a / "images").iterdir()):
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()
    assert (a / "labels.csv").read_bytes() != (c / "labels.csv").read_bytes()


def test_labels_agree_with_per_eye_keywords() -> None:
    patients = synth_odir_patients(300, np.random.default_rng(0))
    for row in patients.to_dict("records"):
        codes: set[str] = set()
        for side in ("Left", "Right"):
            text = row[f"{side}-Diagnostic Keywords"]
            if text == NORMAL_KEYWORD:
                continue
            codes |= {_KEYWORD_CODE[k] for k in text.split(KEYWORD_SEP)}
        expected = {c for c in ODIR_LABELS if c != "N" and row[c] == 1}
        assert codes == expected, row["ID"]
        assert row["N"] == int(not codes)


def test_every_label_occurs_and_co_occurs_realistically() -> None:
    patients = synth_odir_patients(400, np.random.default_rng(1))
    y = patients[list(ODIR_LABELS)].to_numpy()
    assert (y.sum(axis=0) > 0).all()
    assert (y[:, 1:].sum(axis=1) > 1).mean() > 0.05  # some patients carry several diseases
    assert (y[:, 1] & y[:, 5]).sum() > 0  # D with H, the commonest pair in the real sheet
    assert patients.loc[:7, list(ODIR_LABELS)].to_numpy().sum() >= 1
    eight = synth_odir_patients(8, np.random.default_rng(2))
    assert (eight[list(ODIR_LABELS)].to_numpy().sum(axis=0) >= 1).all()  # ≥ 8 patients: every label


def test_age_correlates_with_amd_and_cataract() -> None:
    patients = synth_odir_patients(400, np.random.default_rng(3))
    old = patients.loc[(patients["A"] == 1) | (patients["C"] == 1), "Patient Age"].mean()
    normal = patients.loc[patients["N"] == 1, "Patient Age"].mean()
    assert old - normal > 8
    assert patients["Patient Age"].between(18, 90).all()


def _eye(codes: dict[str, str], seed: int, grade: int = 1) -> np.ndarray:
    findings = EyeFindings(keywords=codes, dr_grade=grade if "D" in codes else 0)
    return render_fundus(np.random.default_rng(seed), 128, "right", findings).astype(np.float32)


def _mean_over_seeds(fn, codes: dict[str, str], grade: int = 1) -> float:
    return float(np.mean([fn(_eye(codes, seed, grade)) for seed in range(4)]))


def _luminance(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _sharpness(img: np.ndarray) -> float:
    """Variance of the Laplacian of the central field (the edge of the field of view would dominate)."""
    lum = _luminance(img)[24:104, 24:104]
    lap = 4 * lum[1:-1, 1:-1] - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:]
    return float(lap.var())


def _bright_fraction(img: np.ndarray) -> float:
    return float((_luminance(img) > 215).mean())


def _yellow_fraction(img: np.ndarray) -> float:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return float(((r > 200) & (g > 170) & (b < 170)).mean())


def test_glaucoma_shows_a_larger_pale_cup() -> None:
    assert _mean_over_seeds(_bright_fraction, {"G": "glaucoma"}) > 1.5 * _mean_over_seeds(_bright_fraction, {})


def test_cataract_blurs_the_fundus() -> None:
    assert _mean_over_seeds(_sharpness, {"C": "cataract"}) < 0.5 * _mean_over_seeds(_sharpness, {})


def test_drusen_and_exudates_are_yellow() -> None:
    clean = _mean_over_seeds(_yellow_fraction, {})
    assert _mean_over_seeds(_yellow_fraction, {"A": "dry age-related macular degeneration"}) > clean + 0.002
    assert _mean_over_seeds(_yellow_fraction, {"D": DR_GRADES[2]}, grade=2) > clean + 0.002


def test_myopic_tessellation_adds_texture() -> None:
    def texture(img: np.ndarray) -> float:
        """Band-pass (DoG σ 1–6 px) luminance std on the temporal side, away from disc and macula."""
        lum = _luminance(img)
        band = ndimage.gaussian_filter(lum, 1.0) - ndimage.gaussian_filter(lum, 6.0)
        return float(band[20:108, 8:44].std())

    assert _mean_over_seeds(texture, {"M": "pathological myopia"}) > 1.1 * _mean_over_seeds(texture, {})


def test_black_outside_the_field_of_view() -> None:
    img = _eye({}, 0)
    assert img[0, 0].max() == 0 and img[-1, -1].max() == 0
    assert img[64, 64].max() > 50
