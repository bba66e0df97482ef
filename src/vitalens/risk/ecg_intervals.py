"""ECG interval arithmetic: heart rate, QT correction, frontal axis, reference ranges and rhythm regularity.

Why pure functions: these formulas decide what is flagged to a clinician, so each is small, takes its units
in its argument names (``qt_ms``, ``rr_ms``, ``net_i_mv``), has exact-value tests at every boundary, and
knows nothing of signals or neurokit2 (``vitalens.analyzers.ecg_intervals`` measures, this module judges).

Sources:
    * Bazett HC. An analysis of the time-relations of electrocardiograms. Heart 1920;7:353–370.
    * Fridericia LS. Die Systolendauer im Elektrokardiogramm bei normalen Menschen und bei Herzkranken.
      Acta Med Scand 1920;53:469–486.
    * AHA/ACCF/HRS Recommendations for the Standardization and Interpretation of the Electrocardiogram (2009):
      Part III, intraventricular conduction (Surawicz et al., Circulation 119:e235) for QRS duration and axis;
      Part IV, ST segment, T and U waves and the QT interval (Rautaharju et al., Circulation 119:e241) for QTc
      (prolonged when ≥ 450 ms in men, ≥ 460 ms in women).
    * Short QTc (≤ 340 ms): 2015 ESC Guidelines for ventricular arrhythmias (Priori et al., Eur Heart J
      36:2793).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = [
    "REFERENCE_RANGES",
    "HIGH_BOUND_EXCLUSIVE",
    "IRREGULAR_RR_CV",
    "axis_category",
    "flag",
    "frontal_axis_deg",
    "heart_rate_bpm",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "reference_range",
    "rhythm_regularity",
]

logger = logging.getLogger(__name__)

_AHA2009 = "AHA/ACCF/HRS 2009 ECG standardization recommendations"

#: name → (low, high, source). A value is "low" below ``low``, "high" above ``high`` (or at/above ``high`` for
#: names in ``HIGH_BOUND_EXCLUSIVE``), else "normal". ``None`` marks a side the guideline does not judge: the range
#: is then one-sided (a short QRS is no abnormality: the AHA statements define only prolonged conduction, so the
#: QRS duration has an upper limit and no lower one). Both-sided ranges are those where each direction names a
#: finding: bradycardia/tachycardia, short PR (pre-excitation)/first-degree AV block, short/long QTc, left/right
#: axis deviation.
REFERENCE_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "HR_bpm": (60.0, 100.0, "resting sinus rate 60–100 bpm (bradycardia < 60, tachycardia > 100)"),
    "RR_ms": (600.0, 1000.0, "RR of a 60–100 bpm rate"),
    "PR_ms": (120.0, 200.0, f"PR 120–200 ms (> 200 ms first-degree AV block); {_AHA2009}"),
    "QRS_ms": (
        None,
        110.0,
        f"QRS prolonged > 110 ms (nonspecific intraventricular conduction delay; 110–119 incomplete, ≥ 120 complete "
        f"bundle branch block); no lower limit: a narrow QRS is not abnormal; {_AHA2009}, Part III",
    ),
    "QTc_ms_male": (340.0, 450.0, f"QTc prolonged ≥ 450 ms in men ({_AHA2009}, Part IV); short ≤ 340 ms (ESC 2015)"),
    "QTc_ms_female": (
        340.0,
        460.0,
        f"QTc prolonged ≥ 460 ms in women ({_AHA2009}, Part IV); short ≤ 340 ms (ESC 2015)",
    ),
    "QTc_ms": (340.0, 450.0, "QTc with sex unknown: the male limit (450 ms) is used, the more sensitive one"),
    "QRS_axis_deg": (-30.0, 90.0, f"frontal QRS axis −30° to +90°; {_AHA2009}, Part III"),
}

#: Ranges whose upper limit itself is abnormal ("prolonged when ≥ 450 ms"); and for the short-QT lower limit
#: "≤ 340 ms" is abnormal too, so QTc ranges are open at both ends.
HIGH_BOUND_EXCLUSIVE: frozenset[str] = frozenset({"QTc_ms_male", "QTc_ms_female", "QTc_ms"})
_LOW_BOUND_EXCLUSIVE: frozenset[str] = HIGH_BOUND_EXCLUSIVE

#: Aliases: every QTc formula is judged against the same QTc limits.
_ALIASES = {
    "QTc_bazett_ms": "QTc_ms",
    "QTc_fridericia_ms": "QTc_ms",
    "QRS_axis": "QRS_axis_deg",
    "axis_deg": "QRS_axis_deg",
}

#: RR intervals are "irregular" when their coefficient of variation exceeds this (a screening heuristic;
#: marked sinus arrhythmia in the young can exceed it, and it does not name the rhythm).
IRREGULAR_RR_CV = 0.10


def _positive_ms(value: float, name: str) -> float:
    if math.isnan(value):
        return value
    if not value > 0:
        raise InputError(f"{name} must be a positive number of milliseconds; got {value!r}", field=name)
    return float(value)


def heart_rate_bpm(rr_ms: float) -> float:
    """Heart rate in beats per minute from an RR interval in ms: ``60000 / rr_ms``.

    NaN gives NaN; a non-positive RR raises ``InputError``.
    """
    rr = _positive_ms(rr_ms, "rr_ms")
    return 60_000.0 / rr


def qtc_bazett_ms(qt_ms: float, rr_ms: float) -> float:
    """QT corrected for rate by Bazett (1920): ``QT / sqrt(RR in s)``, in ms.

    Example: QT 400 ms at RR 640 ms gives 500.0 ms; at RR 1000 ms (60 bpm) QTc equals QT. NaN in, NaN out.
    """
    qt, rr = _positive_ms(qt_ms, "qt_ms"), _positive_ms(rr_ms, "rr_ms")
    return qt / math.sqrt(rr / 1000.0)


def qtc_fridericia_ms(qt_ms: float, rr_ms: float) -> float:
    """QT corrected for rate by Fridericia (1920): ``QT / cbrt(RR in s)``, in ms.

    Over-corrects less than Bazett at high rates. QT 400 ms at RR 1000 ms gives 400.0 ms. NaN in, NaN out.
    """
    qt, rr = _positive_ms(qt_ms, "qt_ms"), _positive_ms(rr_ms, "rr_ms")
    return float(qt / (rr / 1000.0) ** (1.0 / 3.0))


def frontal_axis_deg(net_i_mv: float, net_avf_mv: float) -> float:
    """Frontal-plane QRS axis in degrees, in (−180, 180], from the net QRS deflections of leads I and aVF.

    On the hexaxial reference system lead I reads ``E·cos θ`` and aVF reads ``(√3/2)·E·sin θ`` (Goldberger's
    lead is √3/2 of the projection on its axis), so ``θ = atan2(2·aVF/√3, I)``. Equal positive deflections
    therefore give 40.9°, not 45°; I alone gives 0°, aVF alone +90°.

    Args:
        net_i_mv: net QRS amplitude in lead I (R height minus S depth), mV.
        net_avf_mv: the same in aVF, mV.

    Returns:
        The axis in degrees, or NaN when both deflections are zero or either is NaN.
    """
    if math.isnan(net_i_mv) or math.isnan(net_avf_mv) or (net_i_mv == 0 and net_avf_mv == 0):
        return float("nan")
    angle = math.degrees(math.atan2(2.0 * net_avf_mv / math.sqrt(3.0), net_i_mv))
    return 180.0 if angle <= -180.0 else angle


def axis_category(axis_deg: float | None) -> str | None:
    """Name the frontal axis (AHA/ACCF/HRS 2009 Part III).

    ``normal`` −30° ≤ axis ≤ 90°; ``left axis deviation`` −90° ≤ axis < −30°; ``right axis deviation``
    90° < axis ≤ 180°; ``extreme axis deviation`` −180° < axis < −90°. ``None`` for ``None``/NaN.
    """
    if axis_deg is None or math.isnan(axis_deg):
        return None
    axis = ((axis_deg + 180.0) % 360.0) - 180.0
    if axis == -180.0:
        axis = 180.0
    if -30.0 <= axis <= 90.0:
        return "normal"
    if -90.0 <= axis < -30.0:
        return "left axis deviation"
    if 90.0 < axis <= 180.0:
        return "right axis deviation"
    return "extreme axis deviation"


def reference_range(name: str, sex: str | None = None) -> tuple[str, float | None, float | None, str]:
    """``(resolved name, low, high, source)`` for ``name`` (QTc names resolve by ``sex``: ``"male"``/``"female"``).

    ``low`` or ``high`` is ``None`` where the range is one-sided (QRS duration has no lower limit).
    """
    key = _ALIASES.get(name, name)
    if key == "QTc_ms" and sex in {"male", "female"}:
        key = f"QTc_ms_{sex}"
    if key not in REFERENCE_RANGES:
        raise unknown_name_error("ECG measurement", name, [*REFERENCE_RANGES, *_ALIASES])
    low, high, source = REFERENCE_RANGES[key]
    return key, low, high, source


def flag(name: str, value: float | None, sex: str | None = None) -> str | None:
    """``"low"``, ``"high"`` or ``"normal"`` for a measurement against ``REFERENCE_RANGES``; ``None`` if not computed.

    Boundaries: a value equal to a limit is normal (PR 200 ms, HR 100 bpm, QRS 110 ms, axis −30°), except QTc,
    which is abnormal at its limits (≥ 450/460 ms prolonged, ≤ 340 ms short). A one-sided range never flags the
    side it lacks: any QRS duration up to 110 ms, however short, is ``"normal"``.

    Args:
        name: a key of ``REFERENCE_RANGES`` or an alias (``QTc_bazett_ms``, ``QTc_fridericia_ms``).
        value: the measurement in the unit its name says; ``None``/NaN gives ``None``.
        sex: ``"male"``/``"female"`` selects the QTc limit; otherwise the male (lower) one is used.

    Raises:
        UnknownNameError: ``name`` has no reference range (lists those that do).
    """
    key, low, high, _ = reference_range(name, sex)
    if value is None or math.isnan(value):
        return None
    if low is not None and (value < low or (key in _LOW_BOUND_EXCLUSIVE and value <= low)):
        return "low"
    if high is not None and (value > high or (key in HIGH_BOUND_EXCLUSIVE and value >= high)):
        return "high"
    return "normal"


def rhythm_regularity(rr_ms: np.ndarray | list[float]) -> dict[str, Any]:
    """Beat-to-beat variability of RR intervals and a regular/irregular call.

    Args:
        rr_ms: successive RR intervals in ms (NaNs are dropped).

    Returns:
        ``{"n_intervals", "mean_rr_ms", "sdnn_ms", "rmssd_ms", "cv", "regularity", "threshold"}``: SDNN is the
        sample standard deviation (ddof 1), RMSSD the root mean square of successive differences, CV = SDNN /
        mean. ``regularity`` is ``"irregular"`` when CV > ``IRREGULAR_RR_CV`` (0.10), ``"regular"`` otherwise,
        and ``"undetermined"`` (with ``None`` statistics where undefined) for fewer than 3 intervals.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    rr = rr[np.isfinite(rr)]
    threshold = f"irregular when the coefficient of variation of RR exceeds {IRREGULAR_RR_CV:.2f}"
    n = int(rr.size)
    out: dict[str, Any] = {
        "n_intervals": n,
        "mean_rr_ms": None,
        "sdnn_ms": None,
        "rmssd_ms": None,
        "cv": None,
        "regularity": "undetermined",
        "threshold": threshold,
    }
    if n == 0:
        return out
    out["mean_rr_ms"] = float(rr.mean())
    if n >= 2:
        out["sdnn_ms"] = float(rr.std(ddof=1))
        out["rmssd_ms"] = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
        out["cv"] = out["sdnn_ms"] / out["mean_rr_ms"]
    if n >= 3:
        out["regularity"] = "irregular" if out["cv"] > IRREGULAR_RR_CV else "regular"
    return out
