"""From a vessel map to the biomarkers: density, fractal dimension, tortuosity, zone-B calibres → CRAE, CRVE, AVR.

This module does the image work (thresholding, tree tracing, disc, zone, width profiles, artery/vein labels);
the arithmetic of every biomarker is in :mod:`vitalens.risk.vessels`, pure and tested on hand-made trees.

Zone B (the standard of the ARIC/BMES/MESA gradings, e.g. Wong et al. 2006): the ring between 0.5 and 1 disc
diameter from the disc *margin*, i.e. between 1 and 1.5 disc diameters from its centre. Each vessel segment
crossing it gets the median of its full-width-at-half-probability widths measured perpendicular to its smoothed
centreline inside the ring; widths are converted to micrometres with the disc-based scale of
:func:`vitalens.vessels.disc.um_per_px`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vitalens.risk.vessels import (
    arteriole_venule_ratio,
    box_counting_dimension,
    crae_um,
    crve_um,
    curvature_tortuosity,
    distance_tortuosity,
    vessel_density,
)
from vitalens.vessels.disc import OpticDisc, locate_optic_disc, um_per_px
from vitalens.vessels.graph import VesselSegment, half_width_profile_px, smooth_path, trace_vessel_tree

__all__ = ["ZoneVessel", "VesselBiomarkers", "measure_vessel_biomarkers", "ZONE_B"]

logger = logging.getLogger(__name__)

#: Zone B, in disc diameters from the disc centre (0.5–1 DD from the margin of a disc of radius 0.5 DD).
ZONE_B = (1.0, 1.5)
#: Segments shorter than this share of a disc diameter are left out of tortuosity (too short to bend).
_MIN_TORTUOSITY_DD = 0.4
#: Zone-B vessels narrower than this are not graded (capillary-sized pieces; graders measure the larger vessels).
_MIN_CALIBRE_UM = 50.0


@dataclass
class ZoneVessel:
    """A vessel segment crossing zone B: its median width and its artery/vein label."""

    segment: int
    width_px: float
    width_um: float
    artery: bool
    n_profiles: int


@dataclass
class VesselBiomarkers:
    """Everything measured on one photograph (``None`` where a value could not be computed)."""

    density: float | None
    fractal_dimension: float | None
    tortuosity_distance: float | None
    tortuosity_curvature_per_mm: float | None
    n_segments: int
    n_junctions: int
    disc: OpticDisc | None
    um_per_px: float
    zone_vessels: list[ZoneVessel] = field(default_factory=list)
    crae_um: float | None = None
    crve_um: float | None = None
    avr: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_arterioles(self) -> int:
        return sum(v.artery for v in self.zone_vessels)

    @property
    def n_venules(self) -> int:
        return sum(not v.artery for v in self.zone_vessels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "density": self.density,
            "fractal_dimension": self.fractal_dimension,
            "tortuosity_distance": self.tortuosity_distance,
            "tortuosity_curvature_per_mm": self.tortuosity_curvature_per_mm,
            "crae_um": self.crae_um,
            "crve_um": self.crve_um,
            "avr": self.avr,
            "n_segments": self.n_segments,
            "n_junctions": self.n_junctions,
            "n_arterioles_zone_b": self.n_arterioles,
            "n_venules_zone_b": self.n_venules,
            "um_per_px": self.um_per_px,
            "disc": None
            if self.disc is None
            else {
                "x": self.disc.x,
                "y": self.disc.y,
                "radius_px": self.disc.radius_px,
                "confidence": self.disc.confidence,
            },
            "notes": list(self.notes),
        }


def _zone_widths(prob: np.ndarray, seg: VesselSegment, disc: OpticDisc, zone_px: tuple[float, float]) -> list[float]:
    path = smooth_path(seg.path_xy, 1.5)
    if len(path) < 3:
        return []
    tangent = np.gradient(path, axis=0)
    dist = np.hypot(path[:, 0] - disc.x, path[:, 1] - disc.y)
    widths = []
    for k in np.flatnonzero((dist >= zone_px[0]) & (dist <= zone_px[1])):
        tx, ty = tangent[k]
        w = half_width_profile_px(prob, (path[k, 1], path[k, 0]), (tx, -ty))  # normal (row, col) = (tx, −ty)
        if w is not None:
            widths.append(w)
    return widths


def measure_vessel_biomarkers(
    image: np.ndarray, fov: np.ndarray, vessel_prob: np.ndarray, threshold: float
) -> VesselBiomarkers:
    """All vessel biomarkers of one photograph at the reference scale.

    Args:
        image: uint8 RGB ``(H, W, 3)`` (already resampled to the reference field-of-view width).
        fov: bool field-of-view mask.
        vessel_prob: vessel probability (or 0/1 mask) ``(H, W)``.
        threshold: probability at or above which a pixel is vessel (the model card's operating threshold).
    """
    from vitalens.vessels.artery_vein import classify_arteries, segment_colour_features
    from vitalens.vessels.preprocess import fov_diameter_px

    fov = np.asarray(fov, dtype=bool)
    prob = np.where(fov, np.asarray(vessel_prob, dtype=np.float32), 0.0)
    vessels = prob >= threshold
    scale = um_per_px(max(fov_diameter_px(fov), 1.0))
    notes: list[str] = []
    tree = trace_vessel_tree(vessels)
    disc = locate_optic_disc(image, fov, prob)

    # tortuosity: length-weighted means over segments long enough to bend
    min_len = _MIN_TORTUOSITY_DD * (disc.diameter_px if disc else 0.145 * fov_diameter_px(fov))
    dist_t, curv_t, lengths = [], [], []
    for seg in tree.segments:
        if seg.length_px < min_len:
            continue
        path = smooth_path(seg.path_xy, 2.0)
        d, c = distance_tortuosity(path), curvature_tortuosity(path)
        if d is not None and c is not None:
            dist_t.append(d)
            curv_t.append(c)
            lengths.append(seg.length_px)
    tort_d = float(np.average(dist_t, weights=lengths)) if lengths else None
    tort_c = float(np.average(curv_t, weights=lengths)) * 1000.0 / scale if lengths else None
    if not lengths:
        notes.append("no vessel segment long enough for tortuosity")

    out = VesselBiomarkers(
        density=vessel_density(vessels, fov),
        fractal_dimension=box_counting_dimension(vessels),
        tortuosity_distance=tort_d,
        tortuosity_curvature_per_mm=tort_c,
        n_segments=len(tree.segments),
        n_junctions=tree.n_junctions,
        disc=disc,
        um_per_px=scale,
        notes=notes,
    )
    if disc is None:
        notes.append("optic disc not found: calibres not measured")
        return out
    if disc.confidence < 0.5:
        notes.append(f"optic disc position uncertain (confidence {disc.confidence:.2f}); calibres may be off")
    dd = disc.diameter_px
    zone_px = (ZONE_B[0] * dd, ZONE_B[1] * dd)
    crossing, widths = [], []
    min_width_px = _MIN_CALIBRE_UM / scale
    for seg in tree.segments:
        w = _zone_widths(prob, seg, disc, zone_px)
        if len(w) >= 3 and float(np.median(w)) >= min_width_px:
            crossing.append(seg)
            widths.append(w)
    if not crossing:
        notes.append("no vessel crosses zone B (0.5–1 disc diameters from the disc margin)")
        return out
    feats = segment_colour_features(image, vessels, fov, crossing)
    arteries = classify_arteries(feats, [float(np.median(w)) for w in widths])
    for seg, w, art, f in zip(crossing, widths, arteries, feats, strict=True):
        if np.isnan(f).any():
            continue
        med = float(np.median(w))
        out.zone_vessels.append(
            ZoneVessel(segment=seg.index, width_px=med, width_um=med * scale, artery=bool(art), n_profiles=len(w))
        )
    out.crae_um = crae_um([v.width_um for v in out.zone_vessels if v.artery])
    out.crve_um = crve_um([v.width_um for v in out.zone_vessels if not v.artery])
    out.avr = arteriole_venule_ratio(out.crae_um, out.crve_um)
    if out.n_arterioles < 6 or out.n_venules < 6:
        notes.append(
            f"zone B holds {out.n_arterioles} arterioles and {out.n_venules} venules; "
            "Knudtson's formulas use six of each"
        )
    return out
