"""The vessel tree as a graph: skeleton → junctions and end points (nodes) → centreline segments (edges).

Why our own tracing over scikit-image's ``skeletonize`` rather than skan's: skan compiles its graph code with
numba on the first call of every process (10–20 s on a small CPU), too slow for a per-request analyzer; the
tracing needed here — split the skeleton at its junctions and walk each piece — is a few array operations and a
walk per segment. The result is a :class:`networkx.MultiGraph` (parallel segments between two junctions exist),
so tree statistics use a standard graph library.

Coordinates: ``path_rc`` is ``(row, col)``; ``path_xy`` is ``(x, y)`` = ``(col, row)``, pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["VesselSegment", "VesselTree", "trace_vessel_tree", "half_width_profile_px", "smooth_path"]

logger = logging.getLogger(__name__)

_EIGHT = np.ones((3, 3), dtype=int)
_OFFSETS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


@dataclass
class VesselSegment:
    """One centreline piece between two nodes (junction clusters or end points), ordered from ``start`` to ``end``."""

    index: int
    path_rc: np.ndarray
    start: int | None = None
    end: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def path_xy(self) -> np.ndarray:
        return self.path_rc[:, ::-1].astype(float)

    @property
    def length_px(self) -> float:
        if len(self.path_rc) < 2:
            return float(len(self.path_rc))
        return float(np.hypot(*np.diff(self.path_rc.astype(float), axis=0).T).sum())


@dataclass
class VesselTree:
    """Skeleton, segments and graph of one vessel mask."""

    skeleton: np.ndarray
    segments: list[VesselSegment]
    graph: Any
    n_junctions: int
    n_endpoints: int


def _order(pixels: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Walk a simple 8-connected pixel path from one of its ends (any pixel for a loop)."""

    def neighbours(p: tuple[int, int]) -> list[tuple[int, int]]:
        return [(p[0] + dr, p[1] + dc) for dr, dc in _OFFSETS if (p[0] + dr, p[1] + dc) in pixels]

    ends = [p for p in pixels if len(neighbours(p)) <= 1]
    current = min(ends) if ends else min(pixels)
    path, seen = [current], {current}
    while True:
        options = [q for q in neighbours(current) if q not in seen]
        if not options:
            break
        # prefer 4-neighbours: diagonal shortcuts would skip a pixel of the path
        options.sort(key=lambda q: abs(q[0] - current[0]) + abs(q[1] - current[1]))
        current = options[0]
        path.append(current)
        seen.add(current)
    return path


def trace_vessel_tree(vessels: np.ndarray, *, min_segment_px: int = 3) -> VesselTree:
    """Skeletonise ``vessels`` and split the skeleton into segments between nodes.

    A skeleton pixel with one neighbour is an end point; one with three or more is a junction pixel, and touching
    junction pixels form one junction node. Removing the junction pixels leaves simple paths, the segments;
    each is attached to the nodes its two ends touch. Segments shorter than ``min_segment_px`` pixels that end
    freely (spurs of the skeletonisation) are dropped.

    Args:
        vessels: bool ``(H, W)`` vessel mask.
        min_segment_px: shortest free-ending segment kept, pixels.
    """
    import networkx as nx
    from skimage.morphology import skeletonize

    skel = skeletonize(np.asarray(vessels, dtype=bool))
    count = ndimage.convolve(skel.astype(int), _EIGHT, mode="constant") - 1
    count[~skel] = 0
    junction = skel & (count >= 3)
    endpoint = skel & (count == 1)
    j_labels, n_j = ndimage.label(junction, structure=_EIGHT)
    rest = skel & ~junction
    s_labels, n_s = ndimage.label(rest, structure=_EIGHT)
    graph = nx.MultiGraph()
    for j in range(1, n_j + 1):
        rr, cc = np.nonzero(j_labels == j)
        graph.add_node(j, kind="junction", rc=(float(rr.mean()), float(cc.mean())))
    next_node = n_j + 1
    segments: list[VesselSegment] = []
    objects = ndimage.find_objects(s_labels)
    h, w = skel.shape
    for s, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        rr, cc = np.nonzero(s_labels[sl] == s)
        pixels = {(int(r + sl[0].start), int(c + sl[1].start)) for r, c in zip(rr, cc, strict=True)}
        path = _order(pixels)
        nodes: list[int | None] = []
        for end in (path[0], path[-1]):
            touching = {
                int(j_labels[end[0] + dr, end[1] + dc])
                for dr, dc in _OFFSETS
                if 0 <= end[0] + dr < h and 0 <= end[1] + dc < w and j_labels[end[0] + dr, end[1] + dc] > 0
            }
            if touching:
                nodes.append(min(touching))
            elif endpoint[end] or len(path) == 1:
                graph.add_node(next_node, kind="end", rc=(float(end[0]), float(end[1])))
                nodes.append(next_node)
                next_node += 1
            else:
                nodes.append(None)
        free = any(n is not None and graph.nodes[n]["kind"] == "end" for n in nodes)
        if free and len(path) < min_segment_px:
            for n in nodes:
                if n is not None and graph.nodes[n]["kind"] == "end":
                    graph.remove_node(n)
            continue
        seg = VesselSegment(index=len(segments), path_rc=np.asarray(path, dtype=int), start=nodes[0], end=nodes[1])
        segments.append(seg)
        if seg.start is not None and seg.end is not None:
            graph.add_edge(seg.start, seg.end, key=seg.index, length_px=seg.length_px)
    n_end = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "end")
    return VesselTree(skeleton=skel, segments=segments, graph=graph, n_junctions=n_j, n_endpoints=n_end)


def smooth_path(path_xy: np.ndarray, sigma_px: float = 2.0) -> np.ndarray:
    """The centreline smoothed by a Gaussian along its length (ends kept), removing the skeleton's pixel staircase.

    Why: curvature from raw skeleton pixels is dominated by 45° steps between neighbours; a Gaussian of a couple of
    pixels keeps the vessel's own bends (tens of pixels) while removing the lattice.
    """
    p = np.asarray(path_xy, dtype=float)
    if len(p) < 3 or sigma_px <= 0:
        return p
    out = np.stack([ndimage.gaussian_filter1d(p[:, k], sigma_px, mode="nearest") for k in range(2)], axis=1)
    out[0], out[-1] = p[0], p[-1]
    return out


def half_width_profile_px(
    prob: np.ndarray,
    centre_rc: tuple[float, float],
    normal_rc: tuple[float, float],
    *,
    half_length_px: float = 15.0,
    step_px: float = 0.25,
) -> float | None:
    """Vessel width at one centreline point: the length of the normal profile where the map is ≥ half its centre value.

    The profile of the vessel map (probabilities, or a 0/1 mask) is sampled by bilinear interpolation along the unit
    ``normal_rc`` through ``centre_rc``; the contiguous run around the centre where it stays ≥ half the centre's
    value is measured with linear interpolation at both crossings (a full width at half maximum). On a 0/1 mask the
    half crossings fall on the pixel boundaries, so a bar ``w`` pixels wide measures ``w``.

    Returns:
        ``None`` when the centre value is below 0.5 or the run reaches the end of the profile.
    """
    n = np.asarray(normal_rc, dtype=float)
    norm = float(np.hypot(*n))
    if norm == 0:
        return None
    n = n / norm
    t = np.arange(-half_length_px, half_length_px + step_px / 2, step_px)
    rows = centre_rc[0] + t * n[0]
    cols = centre_rc[1] + t * n[1]
    profile = ndimage.map_coordinates(np.asarray(prob, dtype=float), [rows, cols], order=1, mode="constant")
    mid = len(t) // 2
    peak = float(profile[mid])
    if peak < 0.5:
        return None
    level = 0.5 * peak if peak < 1.0 else 0.5
    below = profile < level
    left = np.flatnonzero(below[:mid])
    right = np.flatnonzero(below[mid:])
    if left.size == 0 or right.size == 0:
        return None
    i, k = int(left[-1]), mid + int(right[0])

    def cross(a: int, b: int) -> float:
        pa, pb = profile[a], profile[b]
        return float(t[a] + (level - pa) / (pb - pa) * (t[b] - t[a])) if pb != pa else float(t[a])

    return cross(k - 1, k) - cross(i, i + 1)
