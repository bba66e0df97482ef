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
from vitalens.analyzers._contract import EcgAttribution, Findings, Narrative, Summary
from vitalens.analyzers._registry import register_analyzer
from vitalens.artifacts import apply_calibration
from vitalens.domain import AnalysisResult, Coding, Explanation, Finding, InputName, Modality, StudyInputs
from vitalens.errors import InputError
from vitalens.risk.ecg_tiers import ABNORMAL_CLASSES, DEFAULT_TIER_EDGES, overall_tier, risk_tier
from vitalens.slots import EcgLimits
from vitalens.terminology import snomed

if TYPE_CHECKING:
    from vitalens.io.ecg import ECGRecord

__all__ = ["EcgPtbxlAnalyzer", "prepare_ecg", "ATTRIBUTION_BINS"]

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
            explanations, attribution = self._explain(net, x, findings, method, float(card.input.fs_hz or 100))
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
                "fs_hz": card.input.fs_hz,
                "leads": [normalise_lead_name(ld) for ld in card.input.leads or []],
                "attribution": attribution,
                "explanation_method": method,
                "preprocessing": notes,
            },
            warnings=notes,
        )

    def _explain(
        self, net: Any, x: np.ndarray, findings: list[Finding], method: str, fs_hz: float
    ) -> tuple[list[Explanation], dict[str, Any]]:
        """Attributions for the positive abnormal findings (else the most probable abnormal class)."""
        from vitalens.explain.attribution1d import attribute_1d, downsample

        abnormal = [f for f in findings if f.code in ABNORMAL_CLASSES]
        targets = [f for f in abnormal if f.positive] or sorted(abnormal, key=lambda f: -f.probability)[:1]
        explanations, payload = [], {}
        labels = [f.code for f in findings]
        for f in targets:
            a = attribute_1d(net, x, labels.index(f.code), method=method)
            explanations.append(
                Explanation(
                    target=f.code,
                    input_name="ecg",
                    method=method,
                    heatmap=a.per_lead,
                    note=f"per lead, {x.shape[1]} samples at {fs_hz:g} Hz after the card's preprocessing",
                )
            )
            payload[f.code] = {
                "method": method,
                "bins": ATTRIBUTION_BINS,
                "bin_s": x.shape[1] / fs_hz / min(ATTRIBUTION_BINS, x.shape[1]),
                "per_lead": np.round(downsample(a.per_lead, ATTRIBUTION_BINS), 3).tolist(),
                "pooled": np.round(downsample(a.pooled, ATTRIBUTION_BINS), 3).tolist(),
            }
        return explanations, payload
