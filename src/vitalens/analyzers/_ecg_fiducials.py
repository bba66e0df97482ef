"""Fiducial points of an ECG (P onset, QRS onset/offset, T offset) per lead and global, by several methods.

Why several: neurokit2 offers three delineators (``dwt``, ``cwt``, ``peak``) and ECG carts measure differently
again: on one representative (median) beat per lead, with global onset/offset across leads (the earliest QRS
onset, the latest offset...). ``bench/intervals.py`` compares every method here against the carts' own values
and ``ecg.intervals`` uses the closest (:data:`DEFAULT_METHOD`). A method name is
``"<where>-<delineator>"``:

* ``beats-<d>``: every beat of every lead delineated by ``d``; per beat the cross-lead median of each fiducial;
* ``median-<d>``: per lead, the median beat (sample-wise median of the beats aligned on their R peaks, one RR
  long), tiled into a periodic signal and delineated by ``d``; global fiducial = the cross-lead median;
* ``global-<d>``: as ``median-<d>`` but global fiducials as the carts define them: the earliest onset and the
  latest offset among the leads that agree with the cross-lead median within :data:`GLOBAL_AGREE_MS`;
* ``svel-<d>``: ``beats-<d>`` for P onset and T offset, but the global QRS onset and offset from the spatial
  velocity of all leads' median beats (:func:`spatial_velocity_qrs`, the carts' global QRS);
* ``svelqrs-<d>``: ``beats-<d>`` for every fiducial (so PR and QT), and only the QRS *duration* from the spatial
  velocity.
* ``svelqt-<d>``: ``svelqrs-<d>``, but the QT measured from the global (spatial-velocity) QRS onset to the
  ``beats-<d>`` T offset, as carts measure QT from the global QRS onset;
* ``tangent-<d>``: ``svelqrs-<d>`` for PR and QRS; the T offset is the carts' global one on the median beats:
  per lead the tangent at the steepest slope after the T peak meets the PR-segment baseline
  (:func:`tangent_t_end`), the latest of the leads within :data:`GLOBAL_AGREE_MS` of their median
  (:func:`global_t_end`), and the QT runs from the global QRS onset to it.

The ``peak`` delineator finds no QRS boundaries; its Q and S peaks stand in for them (so its QRS is short).
Offsets are in ms from each beat's R peak; NaN where nothing was found. Nothing is invented.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

__all__ = [
    "METHODS",
    "DEFAULT_METHOD",
    "FIDUCIALS",
    "QRS_DURATION",
    "QT_DURATION",
    "spatial_velocity_qrs",
    "tangent_t_end",
    "global_t_end",
    "GLOBAL_AGREE_MS",
    "describe",
    "fiducials",
    "global_fiducials",
    "median_beat",
]

logger = logging.getLogger(__name__)

DELINEATORS = ("dwt", "cwt", "peak")
WHERE = ("beats", "median", "global", "svel", "svelqrs", "svelqt", "tangent")
METHODS: tuple[str, ...] = tuple(f"{w}-{d}" for w in WHERE for d in DELINEATORS)
#: The method ``ecg.intervals`` uses: the closest to the carts in ``bench/results/intervals.json``.
DEFAULT_METHOD = "svelqrs-cwt"
#: A lead's fiducial counts toward a global onset/offset when within this many ms of the cross-lead median.
GLOBAL_AGREE_MS = 40.0
#: Median-beat window: this fraction of the median RR before the R peak, the rest after (one RR in all).
PRE_R_FRACTION = 0.4
#: Spatial-velocity QRS: the boundary is where the velocity falls to this fraction of its QRS peak.
SVEL_FRACTION = 0.1
#: Spatial-velocity QRS search limits, ms from R (a boundary not reached within them is not measured).
SVEL_LIMITS_MS = (-160.0, 200.0)
#: Copies of the median beat in the tiled signal (the first and last are edge beats, not used).
TILES = 9

#: Search windows (ms relative to the R peak) for each fiducial, and which candidate to keep.
WINDOWS_MS: dict[str, tuple[float, float, str]] = {
    "P_onset": (-400.0, -40.0, "last"),
    "QRS_onset": (-160.0, -4.0, "last"),
    "QRS_offset": (4.0, 200.0, "first"),
    "T_offset": (150.0, 750.0, "first"),
}
FIDUCIALS = tuple(WINDOWS_MS)
#: Key of a QRS duration measured apart from the onset/offset fiducials (``svelqrs-*``), ms.
QRS_DURATION = "QRS_duration"
#: Key of a QT measured apart from the per-beat QRS onset (``svelqt-*``, ``tangent-*``: from the global onset), ms.
QT_DURATION = "QT_duration"
#: Tangent T end: the T peak is sought from this many ms after the QRS offset ...
T_PEAK_AFTER_QRS_MS = 80.0
#: ... to this fraction of the RR after R (at most :data:`T_PEAK_MAX_MS`), and the steepest slope within
#: :data:`T_SLOPE_WINDOW_MS` after the peak; the baseline is the median level over :data:`BASELINE_MS` before the
#: QRS onset (the PR segment). Fixed beforehand from the usual definitions, not tuned on the carts' records.
T_PEAK_RR_FRACTION = 0.6
T_PEAK_MAX_MS = 600.0
T_SLOPE_WINDOW_MS = 200.0
BASELINE_MS = 20.0
_NK_KEYS = {
    "P_onset": ("ECG_P_Onsets",),
    "QRS_onset": ("ECG_R_Onsets", "ECG_Q_Peaks"),
    "QRS_offset": ("ECG_R_Offsets", "ECG_S_Peaks"),
    "T_offset": ("ECG_T_Offsets",),
}
#: Which way a fiducial is "outermost" for a global measurement: onsets earliest, offsets latest.
_OUTER = {"P_onset": -1, "QRS_onset": -1, "QRS_offset": 1, "T_offset": 1}


def describe(method: str) -> str:
    """One line saying what ``method`` does (for cards, measurements and the bench)."""
    where, delineator = method.split("-")
    base = f"neurokit2 ecg_delineate ({delineator}{', dwt fallback' if delineator == 'cwt' else ''})"
    how = {
        "beats": "on every beat of every lead; cross-lead median per beat, median over beats",
        "median": "on each lead's median beat; cross-lead median of each fiducial",
        "svel": (
            "on every beat of every lead for P onset and T offset (cross-lead median per beat, median over beats); "
            f"global QRS onset/offset where the spatial velocity of all leads' median beats falls to "
            f"{SVEL_FRACTION:g} of its peak"
        ),
        "svelqrs": (
            "on every beat of every lead (cross-lead median per beat, median over beats) for PR and QT; QRS duration "
            f"where the spatial velocity of all leads' median beats falls to {SVEL_FRACTION:g} of its peak"
        ),
        "svelqt": (
            "on every beat of every lead (cross-lead median per beat, median over beats) for PR and the T offset; "
            f"global QRS onset/offset where the spatial velocity of all leads' median beats falls to "
            f"{SVEL_FRACTION:g} of its peak, QT from that global onset"
        ),
        "tangent": (
            "on every beat of every lead for PR; QRS duration and onset from the spatial velocity of all leads' "
            "median beats; T offset on each lead's median beat where the tangent at the steepest slope after the T "
            f"peak meets the PR baseline, globally the latest of the leads within {GLOBAL_AGREE_MS:g} ms of their "
            "median; QT from the global QRS onset (as ECG carts measure)"
        ),
        "global": (
            "on each lead's median beat; global P/QRS onset = earliest and QRS/T offset = latest among the leads "
            f"within {GLOBAL_AGREE_MS:g} ms of the cross-lead median (as ECG carts measure)"
        ),
    }[where]
    return f"{base} {how}; R peaks from lead II (I or V5 when both disagree with II)"


def _marks(signals: Any, info: dict[str, Any], name: str) -> np.ndarray | None:
    for key in _NK_KEYS[name]:
        if key in signals:
            return np.flatnonzero(np.asarray(signals[key]) == 1)
        if key in info:  # the peak delineator returns Q/S peaks in info only
            vals = np.asarray([v for v in info[key] if v is not None and np.isfinite(v)], dtype=float)
            return vals.astype(int)
    return None


def beat_fiducials(signals: Any, info: dict[str, Any], rpeaks: np.ndarray, fs: float) -> dict[str, np.ndarray]:
    """Per beat, each fiducial's offset from its R peak in ms (NaN where the delineator found none)."""
    out: dict[str, np.ndarray] = {}
    for name, (lo_ms, hi_ms, which) in WINDOWS_MS.items():
        vals = np.full(len(rpeaks), np.nan)
        marks = _marks(signals, info, name)
        if marks is not None:
            for i, r in enumerate(rpeaks):
                cand = marks[(marks >= r + lo_ms * fs / 1000.0) & (marks <= r + hi_ms * fs / 1000.0)]
                if cand.size:
                    vals[i] = ((cand[-1] if which == "last" else cand[0]) - r) * 1000.0 / fs
        out[name] = vals
    return out


def delineate(cleaned: np.ndarray, rpeaks: np.ndarray, fs: float, delineator: str) -> dict[str, np.ndarray] | None:
    """neurokit2's ``delineator`` on one lead; ``cwt`` falls back to ``dwt`` where it fails on a lead."""
    import neurokit2 as nk

    for method in (delineator, "dwt") if delineator == "cwt" else (delineator,):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # neurokit2 warns per lead about edge beats; not actionable here
                signals, info = nk.ecg_delineate(cleaned, rpeaks, sampling_rate=int(round(fs)), method=method)
        except Exception as exc:  # neurokit2 raises IndexError/ValueError on odd leads
            logger.debug("ecg_delineate %s failed: %s", method, exc)
            continue
        return beat_fiducials(signals, info, rpeaks, fs)
    return None


def median_beat(cleaned: np.ndarray, rpeaks: np.ndarray, fs: float) -> tuple[np.ndarray, int] | None:
    """The sample-wise median of the beats, each one median RR long and aligned on its R peak.

    Returns:
        ``(beat, r_index)``: the representative beat and its R peak's sample, or ``None`` with < 3 whole beats.
    """
    if rpeaks.size < 3:
        return None
    rr = int(round(float(np.median(np.diff(rpeaks)))))
    pre = int(round(PRE_R_FRACTION * rr))
    whole = [int(r) for r in rpeaks if r - pre >= 0 and r - pre + rr <= cleaned.size]
    if len(whole) < 3:
        return None
    beats = np.stack([cleaned[r - pre : r - pre + rr] for r in whole])
    return np.median(beats, axis=0), pre


def _median_beat_fiducials(cleaned: np.ndarray, rpeaks: np.ndarray, fs: float, delineator: str) -> dict[str, float]:
    """One lead's fiducials (ms from R) on its median beat, tiled so the delineator sees a steady rhythm."""
    found = median_beat(cleaned, rpeaks, fs)
    if found is None:
        return dict.fromkeys(FIDUCIALS, float("nan"))
    beat, pre = found
    tiled = np.tile(beat, TILES)
    r_tiled = pre + beat.size * np.arange(TILES)
    fid = delineate(tiled, r_tiled, fs, delineator)
    if fid is None:
        return dict.fromkeys(FIDUCIALS, float("nan"))
    inner = slice(1, TILES - 1)
    out = {}
    for name in FIDUCIALS:
        vals = fid[name][inner]
        vals = vals[np.isfinite(vals)]
        out[name] = float(np.median(vals)) if vals.size else float("nan")
    return out


def spatial_velocity_qrs(beats: np.ndarray, r_index: int, fs: float) -> tuple[float, float]:
    """Global QRS onset and offset (ms from R) from the spatial velocity of the leads' median beats.

    The spatial velocity between samples i and i+1 is the Euclidean norm over leads of ``x[i+1] − x[i]``. The
    threshold is :data:`SVEL_FRACTION` × its peak within 100 ms before to 150 ms after R. The onset is the first
    sample of the above-threshold run holding the upstroke's peak (before R), the offset the sample where the run
    holding the downstroke's peak (after R) ends, so the dip at R, where all leads peak together, is bridged.

    Args:
        beats: ``(leads, samples)`` median beats aligned on the R peak at sample ``r_index``.

    Returns:
        ``(onset_ms, offset_ms)``; NaN where the run reaches :data:`SVEL_LIMITS_MS` or the beat is flat.

    Example:
        >>> beat = np.zeros((2, 200)); beat[:, 90:100] = np.arange(10); beat[:, 100:110] = np.arange(10, 0, -1)
        >>> spatial_velocity_qrs(beat, 100, 500.0)
        (-20.0, 20.0)
    """
    sv = np.sqrt((np.diff(np.asarray(beats, dtype=float), axis=1) ** 2).sum(axis=0))
    per_ms = fs / 1000.0
    lo, hi = max(0, r_index - int(round(100 * per_ms))), min(sv.size, r_index + int(round(150 * per_ms)))
    if not lo < r_index < hi or not np.isfinite(sv[lo:hi]).all() or sv[lo:hi].max() <= 0:
        return float("nan"), float("nan")
    # the upstroke's and the downstroke's peaks: where every lead peaks together at R the velocity dips there
    up = lo + int(np.argmax(sv[lo:r_index]))
    down = r_index + int(np.argmax(sv[r_index:hi]))
    threshold = SVEL_FRACTION * float(sv[lo:hi].max())
    first = max(0, r_index + int(round(SVEL_LIMITS_MS[0] * per_ms)))
    last = min(sv.size - 1, r_index + int(round(SVEL_LIMITS_MS[1] * per_ms)))
    on = up
    while on > first and sv[on - 1] > threshold:
        on -= 1
    off = down
    while off < last and sv[off + 1] > threshold:
        off += 1
    onset = float("nan") if on <= first else (on - r_index) / per_ms
    offset = float("nan") if off >= last else (off + 1 - r_index) / per_ms
    return onset, offset


def tangent_t_end(beat: np.ndarray, r_index: int, fs: float, *, qrs_onset_ms: float, qrs_offset_ms: float) -> float:
    """T offset (ms from R) of one lead's median beat by the tangent method.

    The baseline is the median level over :data:`BASELINE_MS` before the QRS onset (the PR segment); the T peak the
    largest deviation from it between :data:`T_PEAK_AFTER_QRS_MS` after the QRS offset and
    :data:`T_PEAK_RR_FRACTION` of the beat's RR (the beat spans one RR) after R; the tangent at the steepest
    slope back towards the baseline within :data:`T_SLOPE_WINDOW_MS` after the peak meets the baseline at the T
    offset (Lepeschkin & Surawicz 1952; the method of the thorough-QT literature).

    Returns:
        ms from R; NaN where a boundary is not finite, the window is empty or the T wave never turns back.

    Example:
        >>> beat = np.zeros(500); beat[250:300] = np.linspace(0, 1, 50); beat[300:350] = np.linspace(1, 0, 50)
        >>> round(tangent_t_end(beat, 100, 1000.0, qrs_onset_ms=-40.0, qrs_offset_ms=40.0), 9)
        249.0
    """
    x = np.asarray(beat, dtype=float)
    if not (np.isfinite(qrs_onset_ms) and np.isfinite(qrs_offset_ms)) or not np.isfinite(x).all():
        return float("nan")
    per_ms = fs / 1000.0
    onset = r_index + int(round(qrs_onset_ms * per_ms))
    if onset < 1:
        return float("nan")
    y = x - float(np.median(x[max(0, onset - int(round(BASELINE_MS * per_ms))) : onset + 1]))
    lo = r_index + int(round((qrs_offset_ms + T_PEAK_AFTER_QRS_MS) * per_ms))
    rr = x.size  # the median beat is one RR long
    hi = min(x.size - 1, r_index + int(round(min(T_PEAK_RR_FRACTION * rr, T_PEAK_MAX_MS * per_ms))))
    if hi <= lo + 1:
        return float("nan")
    peak = lo + int(np.argmax(np.abs(y[lo:hi])))
    polar = y * (1.0 if y[peak] >= 0 else -1.0)  # the T wave made upright
    end = min(x.size - 1, peak + int(round(T_SLOPE_WINDOW_MS * per_ms)))
    if end <= peak + 1:
        return float("nan")
    slope = np.diff(polar[peak : end + 1])  # per sample; slope[i] between samples peak+i and peak+i+1
    k = int(np.argmin(slope))
    if slope[k] >= 0:
        return float("nan")
    # the tangent through sample peak+k with that slope meets 0 here (samples)
    crossing = peak + k - polar[peak + k] / slope[k]
    return float((crossing - r_index) / per_ms)


def global_t_end(per_lead_ms: list[float] | np.ndarray, *, min_leads: int) -> float:
    """The carts' global T offset: the latest among the leads within :data:`GLOBAL_AGREE_MS` of their median.

    Example:
        >>> global_t_end([380.0, 392.0, 401.0, 520.0, float("nan")], min_leads=3)
        401.0
    """
    vals = np.asarray(per_lead_ms, dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size < max(min_leads, 1):
        return float("nan")
    agree = vals[np.abs(vals - np.median(vals)) <= GLOBAL_AGREE_MS]
    return float(agree.max())


def global_fiducials(per_lead: dict[str, dict[str, float]], *, min_leads: int) -> dict[str, float]:
    """The carts' global fiducials: earliest onset / latest offset among the leads near the cross-lead median.

    Args:
        per_lead: lead → fiducial → ms from R (NaN where not found).
        min_leads: fewer leads with a value than this gives NaN.

    Example:
        >>> global_fiducials({"I": {"QRS_onset": -50.0}, "II": {"QRS_onset": -44.0}, "V1": {"QRS_onset": -120.0}},
        ...                  min_leads=2)["QRS_onset"]
        -50.0
    """
    out: dict[str, float] = {}
    for name in FIDUCIALS:
        vals = np.asarray([f.get(name, np.nan) for f in per_lead.values()], dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size < min_leads or not vals.size:
            out[name] = float("nan")
            continue
        agree = vals[np.abs(vals - np.median(vals)) <= GLOBAL_AGREE_MS]
        out[name] = float(agree.min() if _OUTER[name] < 0 else agree.max())
    return out


def fiducials(
    cleaned: dict[str, np.ndarray], rpeaks: np.ndarray, fs: float, method: str, *, min_leads: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Global fiducials per beat (ms from R; median-beat methods give every beat the same value) and the leads
    that contributed.

    Raises:
        ValueError: unknown ``method`` (one of :data:`METHODS`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown delineation method '{method}'; one of {', '.join(METHODS)}")
    where, delineator = method.split("-")
    n = rpeaks.size
    if where in ("svel", "svelqrs", "svelqt", "tangent"):
        out, used = fiducials(cleaned, rpeaks, fs, f"beats-{delineator}", min_leads=min_leads)
        beats = [median_beat(sig, rpeaks, fs) for sig in cleaned.values()]
        if any(b is None for b in beats) or not beats:
            onset = offset = float("nan")
        else:
            onset, offset = spatial_velocity_qrs(np.stack([b[0] for b in beats]), beats[0][1], fs)  # type: ignore[index]
        if where == "svel":
            out["QRS_onset"], out["QRS_offset"] = np.full(n, onset), np.full(n, offset)
            return out, used
        out[QRS_DURATION] = np.full(n, offset - onset)
        if where == "svelqt":
            out[QT_DURATION] = out["T_offset"] - onset
        elif where == "tangent":
            ends = [
                tangent_t_end(b[0], b[1], fs, qrs_onset_ms=onset, qrs_offset_ms=offset) for b in beats if b is not None
            ]
            t_end = global_t_end(ends, min_leads=min(min_leads, max(len(ends), 1)))
            out["T_offset"] = np.full(n, t_end)
            out[QT_DURATION] = np.full(n, t_end - onset)
        return out, used
    if where == "beats":
        per_lead = {ld: f for ld, sig in cleaned.items() if (f := delineate(sig, rpeaks, fs, delineator)) is not None}
        need = min(min_leads, max(len(per_lead), 1))
        out: dict[str, np.ndarray] = {}
        for name in FIDUCIALS:
            stack = np.array([per_lead[ld][name] for ld in per_lead]) if per_lead else np.full((1, n), np.nan)
            count = np.isfinite(stack).sum(axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN beats give NaN, which is what we want
                med = np.nanmedian(stack, axis=0)
            out[name] = np.where(count >= need, med, np.nan)
        return out, list(per_lead)
    beat_per_lead = {ld: _median_beat_fiducials(sig, rpeaks, fs, delineator) for ld, sig in cleaned.items()}
    used = [ld for ld, f in beat_per_lead.items() if any(np.isfinite(v) for v in f.values())]
    need = min(min_leads, max(len(used), 1))
    if where == "global":
        glob = global_fiducials({ld: beat_per_lead[ld] for ld in used}, min_leads=need)
    else:
        glob = {}
        for name in FIDUCIALS:
            vals = np.asarray([beat_per_lead[ld][name] for ld in used], dtype=float)
            vals = vals[np.isfinite(vals)]
            glob[name] = float(np.median(vals)) if vals.size >= need and vals.size else float("nan")
    return {name: np.full(n, glob[name]) for name in FIDUCIALS}, used
