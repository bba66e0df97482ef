"""Retinal vessel biomarkers: density, fractal dimension, tortuosity, CRAE/CRVE (Knudtson) and AVR.

Pure functions: numbers and numpy arrays in, numbers out; no torch, no image I/O, no globals. Lengths carry their
unit in the argument name (``_px`` pixels, ``_um`` micrometres). Every function says what it returns at its edges.

Why these: narrower retinal arterioles (lower CRAE, lower AVR), wider venules (higher CRVE), a sparser and less
complex tree (lower density and fractal dimension) and changes in tortuosity are the vessel signs that predict
hypertension, coronary disease and stroke in population cohorts (Wong et al. 2006, MESA; Liew et al. 2008, BMES);
they are why the retina tells about the heart.

References:
    Knudtson MD et al. (2003) Revised formulas for summarizing retinal vessel diameters. Curr Eye Res 27:143–149.
    Wong TY et al. (2006) Retinal vascular caliber, cardiovascular risk factors, and inflammation: MESA.
        Invest Ophthalmol Vis Sci 47:2341–2350 (CRAE 144.1 ± 14.4 µm, CRVE 214.0 ± 22.2 µm; n = 5,979).
    Liew G et al. (2008) The retinal vasculature as a fractal: methodology, reliability, and relationship to blood
        pressure. Ophthalmology 115:1951–1956 (Df 1.437 ± 0.025; n = 300).
    Hart WE et al. (1999) Measurement and classification of retinal vascular tortuosity. Int J Med Inform 53:239–252.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "KNUDTSON_ARTERIOLE",
    "KNUDTSON_VENULE",
    "KNUDTSON_N_LARGEST",
    "REFERENCE_VALUES",
    "ReferenceValue",
    "vessel_density",
    "box_counting_dimension",
    "arc_length_px",
    "distance_tortuosity",
    "curvature_tortuosity",
    "knudtson_summary",
    "crae_um",
    "crve_um",
    "arteriole_venule_ratio",
    "flag_against_reference",
]

#: Knudtson's branch coefficients: the trunk equivalent of two branches w1, w2 is k · √(w1² + w2²).
KNUDTSON_ARTERIOLE = 0.88
KNUDTSON_VENULE = 0.95
#: Knudtson's revised formulas combine the six largest vessels of each kind.
KNUDTSON_N_LARGEST = 6


class ReferenceValue:
    """A literature reference for one biomarker: mean ± SD in a named cohort, and the interval mean ± 2 SD."""

    def __init__(self, mean: float, sd: float, unit: str, source: str, comparable: bool = False) -> None:
        self.mean, self.sd, self.unit, self.source, self.comparable = mean, sd, unit, source, comparable

    @property
    def low(self) -> float:
        return self.mean - 2 * self.sd

    @property
    def high(self) -> float:
        return self.mean + 2 * self.sd


#: Reference values where the literature gives them. ``comparable`` is False where our method has not been
#: calibrated against the published one (IVAN's semi-automated widths on digitised film, grader-assisted
#: artery/vein labels, IRIS-Fractal tracings): the interval is then context shown beside the value, never a flag.
#: None of ours is calibrated yet — a DRIVE manual mask's widths run ≈ 1.5× IVAN's at our disc-based scale.
REFERENCE_VALUES: dict[str, ReferenceValue] = {
    "crae": ReferenceValue(144.1, 14.4, "µm", "Wong et al. 2006, MESA, n = 5,979 (IVAN, Knudtson formulas)", False),
    "crve": ReferenceValue(214.0, 22.2, "µm", "Wong et al. 2006, MESA, n = 5,979 (IVAN, Knudtson formulas)", False),
    "fractal_dimension": ReferenceValue(
        1.437, 0.025, "", "Liew et al. 2008, BMES, n = 300 (IRIS-Fractal, 0.5–2 DD zone, traced vessels)", False
    ),
}


def vessel_density(vessels: ArrayLike, fov: ArrayLike) -> float | None:
    """Share of field-of-view pixels that are vessel, 0–1 (unitless area fraction).

    Returns:
        ``None`` when the field of view is empty.

    Raises:
        ValueError: the masks' shapes differ.
    """
    v, f = np.asarray(vessels, dtype=bool), np.asarray(fov, dtype=bool)
    if v.shape != f.shape:
        raise ValueError(f"vessel mask is {v.shape}, field of view {f.shape}")
    n = int(f.sum())
    return None if n == 0 else float((v & f).sum() / n)


def box_counting_dimension(mask: ArrayLike, box_sizes_px: Sequence[int] | None = None) -> float | None:
    """Minkowski–Bouligand (box-counting) dimension of a binary pattern.

    The mask is padded with background to a multiple of the largest box; for each box side ``s`` the boxes of a
    grid anchored at the top-left corner that hold at least one foreground pixel are counted (``N(s)``), and the
    dimension is the least-squares slope of ``log N(s)`` against ``log(1 / s)``. A filled square gives 2, a
    straight line 1 (exactly, when its extent is a multiple of every box side).

    Args:
        mask: 2-D bool array (vessels, or their skeleton).
        box_sizes_px: box sides, pixels; default powers of two from 2 to an eighth of the shorter side.

    Returns:
        ``None`` when the mask is empty or fewer than two box sizes fit.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got {m.ndim}-D")
    if not m.any():
        return None
    if box_sizes_px is None:
        top = max(2, min(m.shape) // 8)
        sizes = [2**k for k in range(1, int(math.log2(top)) + 1)]
    else:
        sizes = sorted({int(s) for s in box_sizes_px if int(s) >= 1})
    if len(sizes) < 2:
        return None
    big = max(sizes)
    padded = np.zeros((-(-m.shape[0] // big) * big, -(-m.shape[1] // big) * big), dtype=bool)
    padded[: m.shape[0], : m.shape[1]] = m
    counts = []
    for s in sizes:
        h, w = padded.shape[0] // s, padded.shape[1] // s
        blocks = padded[: h * s, : w * s].reshape(h, s, w, s).any(axis=(1, 3))
        counts.append(int(blocks.sum()))
    slope = np.polyfit(np.log(1.0 / np.asarray(sizes, dtype=float)), np.log(np.asarray(counts, dtype=float)), 1)[0]
    return float(slope)


def _path(points_xy: ArrayLike) -> np.ndarray:
    p = np.asarray(points_xy, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"a path is an (N, 2) array of (x, y) points, got shape {p.shape}")
    return p


def arc_length_px(points_xy: ArrayLike) -> float:
    """Length of the polyline through ``points_xy`` (``(N, 2)``, pixels); 0 for fewer than two points."""
    p = _path(points_xy)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0


def distance_tortuosity(points_xy: ArrayLike) -> float | None:
    """Arc length over chord length of a vessel centreline (Hart et al. 1999's distance measure): 1 when straight.

    Returns:
        ``None`` for fewer than two points or a closed path (chord 0).
    """
    p = _path(points_xy)
    if len(p) < 2:
        return None
    chord = float(np.hypot(*(p[-1] - p[0])))
    return None if chord == 0 else arc_length_px(p) / chord


def curvature_tortuosity(points_xy: ArrayLike) -> float | None:
    """Mean absolute curvature of a centreline: total turning angle over arc length, radians per pixel.

    The polyline's turning angle at each interior vertex is the angle between its incoming and outgoing segments;
    their sum over the arc length is the discrete ``(1/L) ∫ |κ| ds``, which is ``1/r`` for an arc of a circle of
    radius ``r`` (Hart et al. 1999's curvature-based family). Zero-length segments are dropped first.

    Returns:
        ``None`` for a path with fewer than two distinct points.
    """
    p = _path(points_xy)
    if len(p) > 1:
        keep = np.concatenate([[True], np.hypot(*np.diff(p, axis=0).T) > 0])
        p = p[keep]
    if len(p) < 2:
        return None
    d = np.diff(p, axis=0)
    heading = np.arctan2(d[:, 1], d[:, 0])
    turn = np.angle(np.exp(1j * np.diff(heading)))  # wrapped to (−π, π]
    return float(np.abs(turn).sum() / arc_length_px(p))


def knudtson_summary(widths: Sequence[float], coefficient: float, n_largest: int = KNUDTSON_N_LARGEST) -> float | None:
    """Knudtson's iterative combination of vessel widths into one trunk-equivalent width (same unit as ``widths``).

    The ``n_largest`` widest vessels are kept; at each round the widest is paired with the narrowest, the second
    widest with the second narrowest, and so on, each pair ``(w1, w2)`` becoming ``coefficient · √(w1² + w2²)``;
    with an odd count the middle width is carried to the next round unchanged. Rounds repeat until one value remains.

    Args:
        widths: vessel widths (any unit; µm for CRAE/CRVE), non-negative.
        coefficient: 0.88 for arterioles, 0.95 for venules (:data:`KNUDTSON_ARTERIOLE`, :data:`KNUDTSON_VENULE`).
        n_largest: vessels combined (6 in the revised formulas).

    Returns:
        ``None`` with no widths; the width itself with one.

    Raises:
        ValueError: a negative or non-finite width.
    """
    values = [float(w) for w in widths]
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"widths must be finite and ≥ 0, got {values}")
    if not values:
        return None
    current = sorted(values, reverse=True)[:n_largest]
    while len(current) > 1:
        current.sort(reverse=True)
        n = len(current)
        combined = [coefficient * math.hypot(current[i], current[n - 1 - i]) for i in range(n // 2)]
        if n % 2:
            combined.append(current[n // 2])
        current = combined
    return current[0]


def crae_um(arteriole_widths_um: Sequence[float]) -> float | None:
    """Central retinal arteriolar equivalent, µm: Knudtson's formula with k = 0.88 over the six widest arterioles."""
    return knudtson_summary(arteriole_widths_um, KNUDTSON_ARTERIOLE)


def crve_um(venule_widths_um: Sequence[float]) -> float | None:
    """Central retinal venular equivalent, µm: Knudtson's formula with k = 0.95 over the six widest venules."""
    return knudtson_summary(venule_widths_um, KNUDTSON_VENULE)


def arteriole_venule_ratio(crae: float | None, crve: float | None) -> float | None:
    """AVR = CRAE / CRVE (unitless); ``None`` when either is missing or CRVE is 0."""
    if crae is None or crve is None or crve == 0:
        return None
    return float(crae / crve)


def flag_against_reference(ref: ReferenceValue, value: float | None) -> str | None:
    """``low``/``high``/``normal`` against mean ± 2 SD of ``ref``; ``None`` when not computed or not comparable."""
    if value is None or not ref.comparable:
        return None
    return "low" if value < ref.low else "high" if value > ref.high else "normal"
