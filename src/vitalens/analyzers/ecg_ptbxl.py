"""``ecg.ptbxl``: a 12-lead ECG → calibrated probabilities of NORM, MI, STTC, CD, HYP, risk tiers, attributions.

Why everything from the card: the lead order, sampling rate, duration, z-score statistics, calibration,
thresholds, tier edges and the explanation method were all fixed when the model was trained (and the method by
the randomisation sanity check), so inference reads them from ``card.json`` and hard-codes none of them.
Preprocessing that changes the signal (resampling, cropping, padding) is done only where the card allows it and is
reported in the result's ``warnings``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from vitalens.analyzers._base import Analyzer
from vitalens.analyzers._contract import Alias, AliasField, EcgAttribution, Findings, Narrative, Summary
from vitalens.analyzers._registry import register_analyzer
from vitalens.artifacts import apply_calibration
from vitalens.domain import AnalysisResult, Coding, Explanation, Finding, InputName, Modality, StudyInputs
from vitalens.errors import InputError
from vitalens.risk.ecg_tiers import ABNORMAL_CLASSES, DEFAULT_TIER_EDGES, overall_tier, risk_tier, tier_definition
from vitalens.slots import EcgLimits
from vitalens.terminology import snomed

if TYPE_CHECKING:
    from vitalens.io.ecg import ECGRecord

__all__ = ["EcgPtbxlAnalyzer", "prepare_ecg", "attribution_on_record", "ATTRIBUTION_BINS"]

logger = logging.getLogger(__name__)

#: Time bins per lead of the attribution arrays returned in ``extras`` (JSON-sized; 250 bins = 40 ms at 10 s).
ATTRIBUTION_BINS = 250


def prepare_ecg(
    record: ECGRecord,
    *,
    leads: list[str],
    fs_hz: float,
    duration_s: float,
    mean: list[float] | None,
    std: list[float] | None,
    resample_allowed: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Bring ``record`` to the card's contract: leads in order, ``fs_hz``, ``duration_s``, z-scored per lead.

    Returns:
        ``(x, notes)``: ``x`` float32 ``(len(leads), round(fs_hz * duration_s))``, and one note per change made.

    Raises:
        InputError: leads missing, an unusable signal, or a rate differing from the card when resampling is
            not allowed.
    """
    from vitalens.io.ecg import normalise_lead_name, resample, validate_ecg

    notes: list[str] = []
    wanted = [normalise_lead_name(ld) for ld in leads]
    rec = record
    if any(ld not in rec.leads for ld in wanted) and hasattr(rec, "to_standard12"):
        rec = rec.to_standard12()
        derived = rec.meta.get("derived_leads")
        if derived:
            notes.append(f"derived leads {', '.join(derived)} from I and II")
    validate_ecg(rec, leads=wanted)
    if abs(rec.fs_hz - fs_hz) > 1e-6:
        if not resample_allowed:
            raise InputError(
                f"ECG sampled at {rec.fs_hz:g} Hz; the model expects {fs_hz:g} Hz and its card forbids resampling",
                field="ecg",
            )
        notes.append(f"resampled from {rec.fs_hz:g} Hz to {fs_hz:g} Hz")
        rec = resample(rec, fs_hz)
    x = rec.select(wanted).signal.astype(np.float32)
    n = int(round(fs_hz * duration_s))
    if x.shape[1] > n:
        start = (x.shape[1] - n) // 2
        notes.append(f"cropped the central {duration_s:g} s of a {x.shape[1] / fs_hz:.2f} s recording")
        x = x[:, start : start + n]
    if mean is not None and std is not None:
        x = (x - np.asarray(mean, dtype=np.float32)[:, None]) / np.asarray(std, dtype=np.float32)[:, None]
    if x.shape[1] < n:
        # only where the card's min_duration_s allows a shorter recording; said in the warnings and the explanation
        notes.append(f"zero-padded a {x.shape[1] / fs_hz:.2f} s recording to {duration_s:g} s")
        x = np.pad(x, ((0, 0), (0, n - x.shape[1])))
    for note in notes:
        logger.info("ecg.ptbxl input: %s", note)
    return x.astype(np.float32), notes


def attribution_on_record(heat: np.ndarray, record: ECGRecord, *, fs_hz: float, duration_s: float) -> np.ndarray:
    """Map an attribution from the model's input (after :func:`prepare_ecg`) back to the uploaded record's time axis.

    Why: the clinician reads the record as uploaded (its own rate and length, on the 12-lead sheet); a map in the
    model's 100 Hz, cropped coordinates cannot be drawn under that trace. This inverts the time changes of
    :func:`prepare_ecg`: the resampling (``ceil(n · fs_hz / record.fs_hz)`` samples), the central crop and the
    zero padding. Record samples outside the window the model saw get 0 (the model never looked there); inside it
    the map is linearly interpolated, so values stay in the map's range.

    Args:
        heat: ``(leads, round(fs_hz · duration_s))``: one row per lead the model saw (the card's lead order).
        record: the uploaded record.
        fs_hz, duration_s: the card's rate and duration (what :func:`prepare_ecg` was given).

    Returns:
        float32 ``(leads, record.n_samples)``, rows in the order of ``heat``.

    Example:
        >>> rec = ECGRecord(np.zeros((12, 5000), np.float32), 500.0, STANDARD_LEADS)  # doctest: +SKIP
        >>> attribution_on_record(np.ones((12, 1000)), rec, fs_hz=100, duration_s=10).shape  # doctest: +SKIP
        (12, 5000)
    """
    import math

    heat = np.asarray(heat, dtype=np.float64)
    n_rec = int(record.n_samples)
    ratio = fs_hz / float(record.fs_hz)
    n_res = n_rec if abs(ratio - 1.0) < 1e-9 else math.ceil(n_rec * ratio)
    n = heat.shape[1]
    start = (n_res - n) // 2 if n_res > n else 0
    seen = min(n, n_res)  # padded samples lie beyond the record: not mapped back
    k = np.arange(n_rec, dtype=np.float64) * ratio - start  # position of each record sample in the model input
    inside = (k >= -0.5) & (k <= seen - 0.5)
    kc = np.clip(k, 0.0, seen - 1.0)
    grid = np.arange(seen, dtype=np.float64)
    out = np.stack([np.interp(kc, grid, row[:seen]) for row in heat]) * inside[None, :]
    return out.astype(np.float32)


#: SNOMED CT codes of the superclasses that have an exact one (STTC, CD and HYP group several disorders: none).
LABEL_CODES: dict[str, tuple[Coding, ...]] = {"MI": (snomed("22298006", "Myocardial infarction"),)}


@register_analyzer(
    "ecg.ptbxl",
    modality=Modality.ECG,
    title="12-lead ECG",
    inputs=(InputName.ECG,),
    default_artifact="ecg-ptbxl",
    dataset="ptbxl",
    quality_gates={"ecg": ("ecg.signal_quality",)},
    render=(
        Summary(fields=("tier",), glossary={"tier": "tier"}),
        Findings(title="Diagnostic superclasses", tiers=True, normal="NORM"),
        EcgAttribution(slot="ecg"),
        Narrative(),
    ),
    labels=(
        ("NORM", "Normal ECG"),
        ("MI", "Myocardial infarction"),
        ("STTC", "ST/T change"),
        ("CD", "Conduction disturbance"),
        ("HYP", "Hypertrophy"),
    ),
    description="12-lead ECG: PTB-XL superclasses (NORM, MI, STTC, CD, HYP), calibrated, tiered, attributed",
    train_command="vitalens train ecg.ptbxl --data PTB-XL/ --out runs/ecg-ptbxl",
    # the first version's ``POST /api/v1/predict/ecg`` (file, format, fs_hz) and ``vitalens analyze ecg RECORD``:
    # the intervals alongside, the attribution summary always, the raw arrays with ``explain``
    companions=("ecg.intervals",),
    aliases=(
        Alias(
            "ecg",
            fields=(
                AliasField(
                    "file", "ecg", option="", description="ECG: WFDB .hea (or .zip), DICOM, aECG/MUSE XML, CSV."
                ),
                AliasField(
                    "format",
                    "ecg.format",
                    label="ECG format",
                    description="wfdb | dicom | aecg | muse | csv (default: detect).",
                ),
                AliasField(
                    "fs_hz", "ecg.fs_hz", option="--fs", gt=0, description="Sampling rate in Hz (CSV without one)."
                ),
            ),
            always_explain=True,
            explain_extras={"attribution_arrays": "attribution"},
            companions_key="intervals",
        ),
    ),
)
class EcgPtbxlAnalyzer(Analyzer):
    """12-lead ECG screening for the five PTB-XL diagnostic superclasses."""

    def slot_limits(self, slot: str) -> Any:
        """The contract's limits, with the card's leads required (present, or derivable from I and II) and the
        card's shortest recording: ``min_duration_s``, else its ``duration_s``, so a 0.1 s upload is refused with
        the reason instead of being zero-padded into a confident answer."""
        limits = super().slot_limits(slot)
        if slot == "ecg" and isinstance(limits, EcgLimits) and self.availability().ready:
            spec = self.card.input
            shortest = spec.min_duration_s if spec.min_duration_s is not None else spec.duration_s
            limits = limits.tighten(
                EcgLimits(required_leads=tuple(spec.leads) if spec.leads else (), min_duration_s=shortest)
            )
        return limits

    def preprocess(self, record: ECGRecord) -> tuple[np.ndarray, list[str]]:
        """The card's preprocessing of one record (see :func:`prepare_ecg`)."""
        spec = self.card.input
        if spec.fs_hz is None or spec.leads is None:
            raise InputError("the model card lacks fs_hz or leads; not an ECG artifact", field="ecg")
        return prepare_ecg(
            record,
            leads=list(spec.leads),
            fs_hz=float(spec.fs_hz),
            duration_s=float(spec.duration_s or 10.0),
            mean=spec.mean,
            std=spec.std,
            resample_allowed=spec.resize_allowed,
        )

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        import torch

        from vitalens.io.ecg import normalise_lead_name

        card = self.card
        net = self.model()
        x, notes = self.preprocess(inputs.ecg)
        device = next(net.parameters()).device
        with torch.no_grad():
            logits = net(torch.from_numpy(x)[None].to(device)).float().cpu().numpy()
        probs = np.clip(apply_calibration(card.calibration, logits)[0], 0.0, 1.0)
        edges = tuple(card.extra.get("tier_edges", DEFAULT_TIER_EDGES))
        calibrated = card.calibration.method != "none"
        findings = []
        for j, code in enumerate(card.labels):
            p, t = float(probs[j]), card.threshold(code)
            findings.append(
                Finding(
                    code=code,
                    name=card.name_of(code),
                    probability=p,
                    threshold=t,
                    positive=p >= t,
                    calibrated=calibrated,
                    tier=risk_tier(p, edges, positive=p >= t) if code in ABNORMAL_CLASSES else None,
                    codes=list(LABEL_CODES.get(code, ())),
                )
            )
        by_code = {f.code: f.probability for f in findings}
        tier = overall_tier(by_code, edges, positives=[f.code for f in findings if f.positive])
        explanations: list[Explanation] = []
        attribution: dict[str, Any] = {}
        method = card.explanation_method or "saliency"
        if explain:
            explanations, attribution = self._explain(net, x, inputs.ecg, findings, method)
        positives = [f.code for f in findings if f.positive]
        summary = ", ".join(f"{f.code} {f.probability:.2f}" for f in findings)
        return self.base_result(
            findings=findings,
            tier=tier,
            explanations=explanations,
            explanation=(
                "".join(f"Caution: {n}; the probabilities are less reliable. " for n in notes if "padded" in n)
                + f"Calibrated probabilities: {summary}. Positive at the card's thresholds: "
                f"{', '.join(positives) or 'none'}. Overall tier {tier.value} (highest abnormal class)."
            ),
            extras={
                "tier_edges": list(edges),
                "tier_definition": tier_definition(edges),
                "fs_hz": card.input.fs_hz,
                "leads": [normalise_lead_name(ld) for ld in card.input.leads or []],
                "attribution": attribution,
                "explanation_method": method,
                "preprocessing": notes,
            },
            warnings=notes,
        )

    def _explain(
        self, net: Any, x: np.ndarray, record: ECGRecord, findings: list[Finding], method: str
    ) -> tuple[list[Explanation], dict[str, Any]]:
        """Attributions for the positive abnormal findings (else the most probable abnormal class), on the uploaded
        record's time axis (:func:`attribution_on_record`), each drawn under the trace of the 12-lead sheet.

        One forward through the net and one backward per explained finding (not a forward per finding)."""
        from vitalens.explain.attribution1d import attribute_1d_many, downsample, normalize01
        from vitalens.io.ecg import normalise_lead_name
        from vitalens.plots.ecg import plot_12lead

        spec = self.card.input
        fs_hz, duration_s = float(spec.fs_hz or 100), float(spec.duration_s or 10.0)
        leads = [normalise_lead_name(ld) for ld in spec.leads or []]
        abnormal = [f for f in findings if f.code in ABNORMAL_CLASSES]
        targets = [f for f in abnormal if f.positive] or sorted(abnormal, key=lambda f: -f.probability)[:1]
        explanations, payload = [], {}
        labels = [f.code for f in findings]
        seconds = record.n_samples / float(record.fs_hz)
        attributions = attribute_1d_many(net, x, [labels.index(f.code) for f in targets], method=method)
        for f, a in zip(targets, attributions, strict=True):
            heat = attribution_on_record(a.per_lead, record, fs_hz=fs_hz, duration_s=duration_s)
            pooled = normalize01(heat.mean(axis=0))
            explanations.append(
                Explanation(
                    target=f.code,
                    input_name="ecg",
                    method=method,
                    heatmap=heat,
                    overlay_png=plot_12lead(
                        record,
                        attribution=heat,
                        attribution_leads=leads,
                        title=f"{f.name} ({f.code}): where the model looked ({method}) · "
                        f"{float(record.fs_hz):g} Hz · {seconds:.1f} s",
                    ),
                    note=(
                        f"per lead ({', '.join(leads)}) on the uploaded record's {record.n_samples} samples at "
                        f"{float(record.fs_hz):g} Hz; 0 where the model did not look"
                    ),
                )
            )
            bins = min(ATTRIBUTION_BINS, record.n_samples)
            payload[f.code] = {
                "method": method,
                "bins": bins,
                "bin_s": seconds / bins,
                "per_lead": np.round(downsample(heat, bins), 3).tolist(),
                "pooled": np.round(downsample(pooled, bins), 3).tolist(),
            }
        return explanations, payload
