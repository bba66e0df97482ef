"""Synthetic twin of ODIR-5K: the published layout filled with procedural fundus photographs.

Why: tests, the offline demo and CI need an ODIR folder that the real adapter reads unchanged, small enough to
train a tiny net on in seconds, whose labels leave *visible* signs so a model (and Grad-CAM) has something real to
find. Nothing here resembles a patient; every artifact trained on it says so in its card.

Layout written (as the official sheet and Kaggle's table):
    ``root/labels.csv`` (one row per patient, the official columns), ``root/full_df.csv`` (one row per image,
    Kaggle's extra ``filepath, labels, target, filename`` columns), ``root/images/<ID>_left.jpg`` and
    ``<ID>_right.jpg``, and a ``SYNTHETIC.md`` marker so provenance detection labels anything trained on it.

Signs drawn per eye: D microaneurysms, blot haemorrhages and hard exudates (more with grade); G a large
cup-to-disc ratio; C global haze and blur; A drusen around the macula; H narrow bright arterioles, AV nicking and
cotton-wool spots; M choroidal tessellation with peripapillary atrophy; O one other lesion (laser scars,
epiretinal sheen, myelinated fibres, chorioretinal atrophy or a vein occlusion); N none.

Example:
    >>> root = write_odir_synth(tmp_path / "odir", n_patients=48, seed=0)   # doctest: +SKIP
    >>> OdirDataset(root).targets.shape                                     # doctest: +SKIP
    (48, 8)
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from vitalens.data.odir import ODIR_LABELS, ODIR_SHEET_COLUMNS
from vitalens.errors import InputError

__all__ = [
    "write_odir_synth",
    "synth_odir_patients",
    "render_fundus",
    "render_fundus_layers",
    "FundusLayers",
    "EyeFindings",
]

logger = logging.getLogger(__name__)

#: Keyword vocabulary, the real sheet's spelling (ODIR joins an eye's keywords with a full-width comma).
DR_GRADES: tuple[str, ...] = (
    "mild nonproliferative retinopathy",
    "moderate non proliferative retinopathy",
    "severe nonproliferative retinopathy",
    "proliferative diabetic retinopathy",
)
OTHER_LESIONS: tuple[str, ...] = (
    "laser spot",
    "epiretinal membrane",
    "myelinated nerve fibers",
    "chorioretinal atrophy",
    "branch retinal vein occlusion",
)
KEYWORD_SEP = "，"
#: Marker file that tells provenance detection (``training.tasks.SYNTHETIC_MARKERS``) the folder is synthetic.
SYNTHETIC_MARKER = "SYNTHETIC.md"
NORMAL_KEYWORD = "normal fundus"

#: Share of patients per primary label after the first eight (one of each, so every label occurs).
_PRIMARY_P = np.array([0.22, 0.22, 0.08, 0.08, 0.08, 0.08, 0.08, 0.16])
#: P(secondary | primary): the co-occurrences that dominate the real sheet (D+H, D+O laser, A+C in the elderly).
_SECONDARY: dict[str, dict[str, float]] = {
    "D": {"H": 0.25, "O": 0.25, "C": 0.05},
    "H": {"D": 0.3, "O": 0.1},
    "A": {"C": 0.25, "O": 0.1},
    "C": {"A": 0.15, "D": 0.1},
    "G": {"O": 0.1, "C": 0.1},
    "M": {"O": 0.15, "G": 0.05},
    "O": {"D": 0.15},
}
#: P(both eyes affected | label).
_BILATERAL = {"D": 0.75, "G": 0.6, "C": 0.7, "A": 0.6, "H": 0.8, "M": 0.8, "O": 0.35}
#: Years added to the base age (A and C are diseases of age; myopia presents younger).
_AGE_SHIFT = {"A": 14.0, "C": 12.0, "D": 4.0, "H": 6.0, "G": 4.0, "M": -8.0, "O": 0.0}


@dataclass
class EyeFindings:
    """What one synthetic eye shows: ODIR codes with their keyword, and the D grade (0–3) when D is present."""

    keywords: dict[str, str] = field(default_factory=dict)
    dr_grade: int = 0

    def text(self) -> str:
        """The per-eye keyword string of the sheet (``normal fundus`` when clean)."""
        words = [self.keywords[c] for c in ODIR_LABELS if c in self.keywords]
        return KEYWORD_SEP.join(words) if words else NORMAL_KEYWORD


def synth_odir_patients(n_patients: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw patients: ids, age, sex, per-eye findings and the sheet's N..O (without images).

    Returns:
        One row per patient with the :data:`ODIR_SHEET_COLUMNS` plus ``_left``/``_right`` (:class:`EyeFindings`).
    """
    if n_patients < 1:
        raise InputError(f"n_patients must be ≥ 1, got {n_patients}", field="n_patients")
    first = np.arange(min(8, n_patients))
    rest = rng.choice(8, size=n_patients - first.size, p=_PRIMARY_P / _PRIMARY_P.sum())
    primaries = rng.permutation(np.concatenate([first, rest]))
    ids = np.sort(rng.choice(max(5000, 2 * n_patients), size=n_patients, replace=False))
    rows = []
    for pid, primary_idx in zip(ids, primaries, strict=True):
        primary = ODIR_LABELS[primary_idx]
        diseases: list[str] = [] if primary == "N" else [primary]
        for code, p in _SECONDARY.get(primary, {}).items():
            if rng.random() < p and code not in diseases:
                diseases.append(code)
        eyes = {"left": EyeFindings(), "right": EyeFindings()}
        grade = int(rng.choice(4, p=[0.3, 0.45, 0.17, 0.08]))
        for code in diseases:
            both = rng.random() < _BILATERAL[code]
            sides = ["left", "right"] if both else [str(rng.choice(["left", "right"]))]
            for side in sides:
                eyes[side].keywords[code] = _keyword(code, grade, rng)
                if code == "D":
                    eyes[side].dr_grade = grade
        age = 52.0 + rng.normal(0.0, 9.0) + sum(_AGE_SHIFT[c] for c in diseases)
        labels = {c: int(any(c in e.keywords for e in eyes.values())) for c in ODIR_LABELS}
        labels["N"] = int(not diseases)
        rows.append(
            {
                "ID": int(pid),
                "Patient Age": int(np.clip(round(age), 18, 90)),
                "Patient Sex": "Female" if rng.random() < 0.5 else "Male",
                "Left-Fundus": f"{pid}_left.jpg",
                "Right-Fundus": f"{pid}_right.jpg",
                "Left-Diagnostic Keywords": eyes["left"].text(),
                "Right-Diagnostic Keywords": eyes["right"].text(),
                **labels,
                "_left": eyes["left"],
                "_right": eyes["right"],
            }
        )
    return pd.DataFrame(rows)


def _keyword(code: str, grade: int, rng: np.random.Generator) -> str:
    if code == "D":
        return DR_GRADES[grade]
    if code == "G":
        return "glaucoma" if rng.random() < 0.85 else "suspected glaucoma"
    if code == "A":
        return "dry age-related macular degeneration" if rng.random() < 0.8 else "wet age-related macular degeneration"
    if code == "O":
        return str(rng.choice(OTHER_LESIONS))
    return {"C": "cataract", "H": "hypertensive retinopathy", "M": "pathological myopia"}[code]


# --------------------------------------------------------------------------------------------------- rendering


def _smooth_noise(rng: np.random.Generator, size: int, cells: int = 6) -> np.ndarray:
    """Low-frequency noise in [-1, 1], ``(size, size)`` float32 (bilinear upsampling of a coarse grid)."""
    coarse = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
    up = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 127.5 - 1.0


def _branch(
    rng: np.random.Generator,
    draw: ImageDraw.ImageDraw,
    start: tuple[float, float],
    angle: float,
    width: float,
    length: float,
    bend: float,
    depth: int,
    scale: float,
) -> None:
    """Draw one vessel as a tapering random walk that spawns thinner side branches."""
    x, y = start
    step = 4.0 * scale
    for _ in range(max(1, int(length / step))):
        angle += bend + rng.normal(0.0, 0.06)
        nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        draw.line([(x, y), (nx, ny)], fill=255, width=max(1, round(width)))
        x, y = nx, ny
        width = max(0.8 * scale, width * 0.985)
        if depth > 0 and rng.random() < 0.09:
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
            _branch(rng, draw, (x, y), angle + turn, width * 0.65, length * 0.4, bend * 0.3, depth - 1, scale)


def _vessel_masks(
    rng: np.random.Generator, size: int, disc: tuple[float, float], side_sign: float, artery_factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Artery and vein masks (float32 0–1): temporal arcades curving around the macula, shorter nasal branches."""
    scale = size / 256.0
    arteries, veins = Image.new("L", (size, size), 0), Image.new("L", (size, size), 0)
    da, dv = ImageDraw.Draw(arteries), ImageDraw.Draw(veins)
    temporal = math.pi if side_sign > 0 else 0.0
    nasal = 0.0 if side_sign > 0 else math.pi
    sup = temporal + (1.0 if side_sign > 0 else -1.0)
    inf = temporal - (1.0 if side_sign > 0 else -1.0)
    arcades = [  # (initial angle, bend per step, length as a share of the image)
        (sup, -side_sign * 0.018, 0.55),
        (inf, side_sign * 0.018, 0.55),
        (nasal - 0.7, 0.0, 0.3),
        (nasal + 0.7, 0.0, 0.3),
    ]
    for angle, bend, share in arcades:
        jitter = rng.normal(0.0, 0.08)
        _branch(rng, dv, disc, angle + jitter, 3.2 * scale, share * size, bend, 2, scale)
        offset = 0.18 if bend >= 0 else -0.18
        _branch(rng, da, disc, angle + jitter + offset, 2.4 * scale * artery_factor, share * size, bend, 2, scale)
    a = np.asarray(arteries.filter(ImageFilter.GaussianBlur(0.5 * scale)), dtype=np.float32) / 255.0
    v = np.asarray(veins.filter(ImageFilter.GaussianBlur(0.5 * scale)), dtype=np.float32) / 255.0
    return a, v


def _dots(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    center: tuple[float, float],
    spread: float,
    n: int,
    radius: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    """``n`` round dots scattered (normal, sd ``spread`` px) around ``center``."""
    for _ in range(n):
        x, y = rng.normal(center[0], spread), rng.normal(center[1], spread)
        r = rng.uniform(*radius)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


@dataclass(frozen=True)
class FundusLayers:
    """A rendered fundus photograph with the ground truth behind it (for the vessel twin and its tests).

    Attributes:
        image: uint8 ``(size, size, 3)`` RGB, black outside the field of view.
        arteries, veins: float32 ``(size, size)`` coverage 0–1 of the drawn arterioles and venules.
        fov: bool ``(size, size)`` circular field of view.
        disc_xy: optic-disc centre ``(x, y)``, pixels.
        disc_radius: optic-disc radius, pixels.
    """

    image: np.ndarray
    arteries: np.ndarray
    veins: np.ndarray
    fov: np.ndarray
    disc_xy: tuple[float, float]
    disc_radius: float


def render_fundus(rng: np.random.Generator, size: int, side: str, findings: EyeFindings) -> np.ndarray:
    """Render one procedural fundus photograph with the visible signs of ``findings``.

    Args:
        rng: the caller's generator (all randomness comes from it).
        size: image side, pixels.
        side: ``"left"`` or ``"right"``; the optic disc sits nasally (image left for a left eye).
        findings: codes and keywords of this eye.

    Returns:
        uint8 ``(size, size, 3)`` RGB, black outside the circular field of view.
    """
    return render_fundus_layers(rng, size, side, findings).image


def render_fundus_layers(rng: np.random.Generator, size: int, side: str, findings: EyeFindings) -> FundusLayers:
    """:func:`render_fundus` with its vessel masks, field of view and disc position (same RNG draws)."""
    s = size / 256.0
    codes = set(findings.keywords)
    side_sign = 1.0 if side == "right" else -1.0
    cx, cy = size / 2 + rng.normal(0, 2 * s), size / 2 + rng.normal(0, 2 * s)
    radius = 0.47 * size
    yy, xx = _grid(size)
    r_fov = np.hypot(xx - cx, yy - cy) / radius
    disc = (cx + side_sign * 0.24 * size, cy + rng.normal(0, 3 * s))
    macula = (cx - side_sign * 0.05 * size, cy + rng.normal(0, 2 * s))
    disc_r = 0.075 * size

    # Choroid: orange-red, darker towards the rim, with smooth pigment variation.
    base = np.array([0.82, 0.36, 0.14], dtype=np.float32) * rng.uniform(0.9, 1.08, 3).astype(np.float32)
    shade = (1.0 - 0.45 * np.minimum(r_fov, 1.0) ** 2) * (1.0 + 0.06 * _smooth_noise(rng, size))
    if "M" in codes:  # tessellation: dark stripes of the visible choroidal vessels, radiating from the disc
        theta = np.arctan2(yy - disc[1], xx - disc[0])
        warp = 4.0 * _smooth_noise(rng, size, 7)
        stripes = 0.5 + 0.5 * np.sin(30.0 * theta + warp + 0.03 * np.hypot(xx - disc[0], yy - disc[1]) / s)
        shade *= 1.0 - 0.28 * stripes**2
    img = shade[..., None] * base
    if "M" in codes:
        img[..., 2] *= 0.8

    # Macula (local window): darker pigment and a small foveal reflex.
    win, ly, lx = _window(macula, 0.25 * size, size)
    d_mac = np.hypot(lx - macula[0], ly - macula[1]) / (0.08 * size)
    img[win] *= (1.0 - 0.35 * np.exp(-(d_mac**2)))[..., None]
    img[win] += (0.25 * np.exp(-((d_mac * 12.0) ** 2)))[..., None]

    # Optic disc (local window): rim, cup, and (myopia) a pale temporal crescent of peripapillary atrophy.
    dwin, dy, dx = _window(disc, 2.0 * disc_r, size)
    d_disc = np.hypot(dx - disc[0], dy - disc[1]) / disc_r
    patch = img[dwin]
    if "M" in codes:
        crescent = np.clip(1.6 - np.hypot(dx - disc[0] + side_sign * 0.35 * disc_r, dy - disc[1]) / disc_r, 0, 1)
        _blend(patch, crescent, (0.93, 0.8, 0.62))
    _blend(patch, np.clip((1.0 - d_disc) * 6.0, 0, 1), (0.96, 0.6, 0.34))  # pink-orange neuroretinal rim
    cdr = rng.uniform(0.72, 0.9) if "G" in codes else rng.uniform(0.22, 0.38)
    cup = np.clip((cdr - d_disc) * 8.0, 0, 1)
    cup_colour = (1.0, 0.96, 0.84)
    _blend(patch, cup, cup_colour)

    # Vessels: hypertensive arterioles are narrow and bright, with AV nicking where they cross a vein.
    arteries, veins = _vessel_masks(rng, size, disc, side_sign, 0.45 if "H" in codes else 1.0)
    if "H" in codes:
        far = np.hypot(xx - disc[0], yy - disc[1]) > 1.5 * disc_r
        cross = np.argwhere((arteries > 0.5) & (veins > 0.5) & far)
        if cross.size:
            for py, px in cross[rng.choice(len(cross), size=min(6, len(cross)), replace=False)]:
                gwin, gy, gx = _window((float(px), float(py)), 3.0 * s, size)
                gap = (np.hypot(gx - px, gy - py) < 3.0 * s) & (arteries[gwin] < 0.3)
                veins[gwin][gap] = 0.0
    _blend(img, 0.85 * veins, (0.42, 0.06, 0.05))
    _blend(img, 0.8 * arteries, (0.85, 0.28, 0.12) if "H" in codes else (0.68, 0.16, 0.08))
    _blend(img[dwin], 0.6 * cup, cup_colour)  # the pale cup shows through the vessels crossing it

    photo = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(photo)
    _draw_lesions(draw, rng, findings, codes, disc, macula, disc_r, s, side_sign)
    photo = photo.filter(ImageFilter.GaussianBlur(0.6 * s))
    if "C" in codes:  # cataract: the media scatter light, a veil of haze over a blurred fundus
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(3.0, 5.0) * s))
    out = np.asarray(photo, dtype=np.float32) / 255.0
    if "C" in codes:
        _blend(out, np.full(out.shape[:2], rng.uniform(0.35, 0.55), np.float32), (0.78, 0.62, 0.5))
    out += 0.012 * rng.standard_normal(out.shape[:2], dtype=np.float32)[..., None]
    fov = np.clip((1.0 - r_fov) * radius / 1.5, 0, 1)[..., None]
    return FundusLayers(
        image=(np.clip(out * fov, 0, 1) * 255).astype(np.uint8),
        arteries=arteries,
        veins=veins,
        fov=fov[..., 0] > 0.5,
        disc_xy=(float(disc[0]), float(disc[1])),
        disc_radius=float(disc_r),
    )


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(yy, xx)``, each ``(size, size)`` float32 (read-only, shared)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _window(center: tuple[float, float], half: float, size: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Slices of a square window (half-side ``half`` px, clipped to the image) and its ``(yy, xx)`` coordinates."""
    x0, x1 = max(0, int(center[0] - half)), min(size, int(center[0] + half) + 1)
    y0, y1 = max(0, int(center[1] - half)), min(size, int(center[1] + half) + 1)
    win = (slice(y0, y1), slice(x0, x1))
    yy, xx = _grid(size)
    return win, yy[win], xx[win]


def _blend(img: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float]) -> None:
    """In place: ``img ← img + alpha · (colour − img)``; ``img`` (h, w, 3) float32, ``alpha`` (h, w) in [0, 1]."""
    diff = np.asarray(colour, dtype=np.float32) - img
    diff *= alpha[..., None]
    img += diff


def _draw_lesions(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    findings: EyeFindings,
    codes: set[str],
    disc: tuple[float, float],
    macula: tuple[float, float],
    disc_r: float,
    s: float,
    side_sign: float,
) -> None:
    """Draw the focal signs of each finding onto ``draw``."""
    pole = (0.5 * (disc[0] + macula[0]), macula[1])
    if "D" in codes:
        g = findings.dr_grade
        _dots(draw, rng, pole, 38 * s, 10 + 12 * g, (0.8 * s, 1.4 * s), (120, 8, 8))  # microaneurysms
        _dots(draw, rng, pole, 45 * s, 1 + 3 * g, (2.0 * s, 4.0 * s), (105, 10, 10))  # blot haemorrhages
        if g >= 1:
            _dots(draw, rng, macula, 22 * s, 6 + 8 * g, (1.0 * s, 2.0 * s), (250, 228, 110))  # hard exudates
        if g == 3:  # new vessels on the disc: a tangle of thin loops
            for _ in range(6):
                pts = [(disc[0] + rng.normal(0, 1.2 * disc_r), disc[1] + rng.normal(0, 1.2 * disc_r)) for _ in range(4)]
                draw.line(pts, fill=(150, 20, 20), width=max(1, round(s)))
    if "A" in codes:
        _dots(draw, rng, macula, 11 * s, int(rng.integers(14, 30)), (1.0 * s, 2.4 * s), (245, 215, 120))
        if findings.keywords["A"].startswith("wet"):
            _dots(draw, rng, macula, 4 * s, 3, (4 * s, 7 * s), (95, 40, 25))
    if "H" in codes:  # cotton-wool spots
        _dots(draw, rng, pole, 35 * s, int(rng.integers(1, 4)), (3 * s, 5 * s), (238, 226, 205))
    if "O" in codes:
        _draw_other(draw, rng, findings.keywords["O"], disc, macula, disc_r, s, side_sign)


def _draw_other(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    keyword: str,
    disc: tuple[float, float],
    macula: tuple[float, float],
    disc_r: float,
    s: float,
    side_sign: float,
) -> None:
    if keyword == "laser spot":  # a ring of round pale scars with pigmented rims, outside the arcades
        for k in range(int(rng.integers(14, 26))):
            a = 2 * math.pi * k / 20 + rng.normal(0, 0.1)
            rr = rng.uniform(75, 105) * s
            x, y, r = macula[0] + rr * math.cos(a), macula[1] + rr * math.sin(a), rng.uniform(2.2, 3.2) * s
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(225, 195, 130), outline=(60, 30, 20))
    elif keyword == "epiretinal membrane":  # a glistening sheen with fine radial folds over the macula
        for _ in range(10):
            a = rng.uniform(0, 2 * math.pi)
            r0, r1 = rng.uniform(4, 8) * s, rng.uniform(18, 28) * s
            p0 = (macula[0] + r0 * math.cos(a), macula[1] + r0 * math.sin(a))
            p1 = (macula[0] + r1 * math.cos(a), macula[1] + r1 * math.sin(a))
            draw.line([p0, p1], fill=(235, 200, 170), width=max(1, round(s)))
    elif keyword == "myelinated nerve fibers":  # white feathery patch hugging the disc
        for _ in range(22):
            a = rng.uniform(-0.9, 0.9) + (-math.pi / 2 if rng.random() < 0.5 else math.pi / 2)
            r0 = disc_r * 0.9
            r1 = r0 + rng.uniform(8, 22) * s
            p0 = (disc[0] + r0 * math.cos(a), disc[1] + r0 * math.sin(a))
            p1 = (disc[0] + r1 * math.cos(a), disc[1] + r1 * math.sin(a))
            draw.line([p0, p1], fill=(245, 240, 230), width=max(2, round(2.5 * s)))
    elif keyword == "chorioretinal atrophy":  # a large pale patch with pigment clumps
        x, y = macula[0] - side_sign * rng.uniform(20, 45) * s, macula[1] + rng.uniform(-40, 40) * s
        r = rng.uniform(12, 20) * s
        draw.ellipse([x - r, y - 0.8 * r, x + r, y + 0.8 * r], fill=(235, 210, 175))
        _dots(draw, rng, (x, y), 0.5 * r, 8, (1.0 * s, 2.2 * s), (45, 25, 18))
    else:  # branch retinal vein occlusion: flame haemorrhages fanning out in one quadrant
        a0 = math.pi + 0.9 if side_sign > 0 else -0.9
        for _ in range(30):
            a = a0 + rng.normal(0, 0.25)
            rr = rng.uniform(1.5, 5.0) * disc_r
            x, y = disc[0] + rr * math.cos(a), disc[1] + rr * math.sin(a)
            dx, dy = 4 * s * math.cos(a), 4 * s * math.sin(a)
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=(130, 12, 10), width=max(1, round(1.8 * s)))


# --------------------------------------------------------------------------------------------------- layout


def write_odir_synth(root: Path, n_patients: int = 48, *, image_size: int = 256, seed: int = 0) -> Path:
    """Write a synthetic ODIR-5K folder under ``root`` and return ``root``.

    Args:
        root: folder to create or fill (existing files of the same names are overwritten).
        n_patients: patients to draw; with ≥ 8 every label occurs at least once.
        image_size: side of each photograph, pixels (≥ 64).
        seed: seeds the one ``np.random.Generator`` used; equal seeds give identical folders.

    Returns:
        ``root``, readable by :class:`vitalens.data.odir.OdirDataset`.
    """
    if image_size < 64:
        raise InputError(f"image_size must be ≥ 64 px, got {image_size}", field="image_size")
    rng = np.random.default_rng(seed)
    root = Path(root)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    patients = synth_odir_patients(n_patients, rng)
    per_image = []
    for values in patients.to_dict("records"):
        for side in ("right", "left"):
            findings: EyeFindings = values[f"_{side}"]
            name = values[f"{side.capitalize()}-Fundus"]
            pixels = render_fundus(rng, image_size, side, findings)
            Image.fromarray(pixels).save(images / name, quality=90)
            code = next((c for c in ODIR_LABELS if c in findings.keywords), "N")
            per_image.append(
                {
                    "ID": values["ID"],
                    "filepath": f"../input/ocular-disease-recognition-odir5k/ODIR-5K/Training Images/{name}",
                    "labels": f"['{code}']",
                    "target": str([int(c == code) for c in ODIR_LABELS]),
                    "filename": name,
                }
            )
    sheet = patients.loc[:, list(ODIR_SHEET_COLUMNS)]
    sheet.to_csv(root / "labels.csv", index=False)
    full = pd.DataFrame(per_image).merge(sheet, on="ID", how="left")
    full = full.loc[:, [*ODIR_SHEET_COLUMNS, "filepath", "labels", "target", "filename"]]
    full.to_csv(root / "full_df.csv", index=False)
    (root / SYNTHETIC_MARKER).write_text(
        f"# Synthetic ODIR-5K twin\n\nWritten by vitalens.synth.odir.write_odir_synth(n_patients={n_patients}, "
        f"image_size={image_size}, seed={seed}). Procedural images, no patient data: models trained on it are "
        "for tests and demos only. Decision support, not a diagnosis.\n",
        encoding="utf-8",
    )
    logger.info("write_odir_synth: %d patients, %d images of %d px in %s", n_patients, 2 * n_patients, image_size, root)
    return root
