"""``fundus.vessels``: each fundus photograph → vessel map → retinal vessel biomarkers (the eyes → heart signs).

Per eye: the field of view is found and the photograph resampled so it is as wide as DRIVE's (the card's
``fov_diameter_px``); the trained vessel U-Net (or, without a bundled model, the classical Sato filter) gives a
per-pixel vessel probability, thresholded at the card's operating point; the vessel tree, the optic disc and
zone B then give vessel density, box-counting fractal dimension, distance- and curvature-based tortuosity, and
the zone-B calibres summarised as CRAE, CRVE (Knudtson's revised formulas) and AVR
(:mod:`vitalens.vessels.biomarkers`, arithmetic in :mod:`vitalens.risk.vessels`). The vessel map comes back as an
overlay in the uploaded image's coordinates.

Every biomarker is a research measurement: the micrometre scale assumes an average optic disc, artery/vein
labels come from a colour heuristic that is unmeasured on real photographs, and none of the values is
calibrated against the grading software of the cohorts whose reference values are shown beside them.

The U-Net runs on ONNX Runtime when the artifact holds a verified ``model.onnx`` (one image of any size; the graph
pads and crops as the net does) and the device is the CPU, else on PyTorch; ``extras["backend"]`` says which
(``classical`` for the Sato fallback).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vitalens.analyzers._base import Analyzer, Availability
from vitalens.analyzers._contract import Measurements, Narrative, Overlays, Table
from vitalens.analyzers._registry import register_analyzer
from vitalens.domain import AnalysisResult, Explanation, Measurement, ModelInfo, StudyInputs
from vitalens.risk.vessels import REFERENCE_VALUES, ReferenceValue, flag_against_reference
from vitalens.slots import ImageLimits

__all__ = ["FundusVesselsAnalyzer", "EYES", "CLASSICAL_VESSEL_SHARE"]

logger = logging.getLogger(__name__)

#: Slot → how the eye is named in measurement names.
EYES = {"fundus_right": "Right eye (OD)", "fundus_left": "Left eye (OS)"}

#: Without a trained model the classical map is thresholded at its top 12 % of field-of-view pixels (DRIVE's
#: manual segmentations mark 12–13 % of the field as vessel).
CLASSICAL_VESSEL_SHARE = 0.12

_METHODS = {
    "density": "vessel pixels / field-of-view pixels of the thresholded map",
    "fractal_dimension": "box counting (boxes 2–32 px at the reference scale) of the thresholded map",
    "tortuosity_distance": "arc length / chord length of each centreline segment ≥ 0.4 disc diameters, "
    "length-weighted mean (Hart et al. 1999)",
    "tortuosity_curvature": "total turning angle / arc length of each smoothed centreline segment, length-weighted "
    "mean (Hart et al. 1999)",
    "crae": "Knudtson's revised formula (k = 0.88) over the six widest arterioles crossing zone B (0.5–1 disc "
    "diameters from the disc margin); widths at half vessel probability, µm at an assumed 1,800 µm disc",
    "crve": "Knudtson's revised formula (k = 0.95) over the six widest venules crossing zone B; same widths and scale",
    "avr": "CRAE / CRVE (scale-free)",
}


def _reference_text(ref: ReferenceValue) -> str:
    return f"reference {ref.mean:g} ± {ref.sd:g} {ref.unit} ({ref.source}); shown as context, not calibrated to ours"


@register_analyzer(
    "fundus.vessels",
    modality="fundus",
    title="Retinal vessels",
    any_of=[("fundus_left", "fundus_right")],
    limits={
        "fundus_left": ImageLimits(colour="rgb", min_side=128, max_aspect=2.0),
        "fundus_right": ImageLimits(colour="rgb", min_side=128, max_aspect=2.0),
    },
    default_artifact="fundus-vessels",
    dataset="drive",
    no_export_reason=(
        "DRIVE's truth is a manual vessel segmentation; a review holds no vessel mask, so the DRIVE writer skips "
        "every reviewed study (it never exports the model's own map as truth)"
    ),
    quality_gates={"fundus_left": ("fundus.gradable",), "fundus_right": ("fundus.gradable",)},
    render=(
        Measurements(title="Vessel biomarkers"),
        Overlays(title="Vessel map", slots=("fundus_left", "fundus_right")),
        Table(
            title="Zone-B vessels",
            key="zone_vessels",
            columns=(("eye", "Eye"), ("kind", "Kind"), ("width_um", "Width (µm)"), ("profiles", "Profiles")),
        ),
        Narrative(),
    ),
    labels=(("vessel", "Retinal vessel (per pixel)"),),
    train_command="vitalens train fundus.vessels --data DRIVE/ --out runs/fundus-vessels",
)
class FundusVesselsAnalyzer(Analyzer):
    """Fundus photograph(s) → vessel map → density, fractal dimension, tortuosity, CRAE, CRVE, AVR."""

    # -- model or classical fallback -----------------------------------------------------------------------
    @property
    def has_model(self) -> bool:
        return self.artifact is not None and (self.artifact / "card.json").is_file()

    def availability(self) -> Availability:
        """Always ready: without a bundled model the classical filter measures the vessels (and says so)."""
        return Availability(True)

    def model_info(self) -> ModelInfo:
        if self.has_model:
            return self.card.model_info()
        return ModelInfo(
            name="sato-classical",
            analyzer=self.name,
            version="0.1.0",
            demonstration=True,
            trained_on="no training: Sato multi-scale tubeness filter (classical fallback)",
        )

    def _settings(self) -> dict[str, Any]:
        from vitalens.vessels.preprocess import DRIVE_FOV_DIAMETER_PX

        if not self.has_model:
            return {"fov": DRIVE_FOV_DIAMETER_PX, "clip": 0.01, "flip": False, "threshold": None}
        extra = self.card.input.extra
        return {
            "fov": float(extra.get("fov_diameter_px") or DRIVE_FOV_DIAMETER_PX),
            "clip": float(extra.get("clip_limit", 0.01)),
            "flip": bool(extra.get("flip_average", True)),
            "threshold": self.card.threshold("vessel"),
        }

    def vessel_map(self, image: np.ndarray) -> tuple[Any, np.ndarray, float, str]:
        """(scaled photograph, vessel probability at the reference scale, threshold, method) for one eye."""
        from vitalens.vessels.classical import classical_vesselness
        from vitalens.vessels.preprocess import rescale_to_fov, vessel_channel

        s = self._settings()
        scaled = rescale_to_fov(image, s["fov"])
        channel = vessel_channel(scaled.image, scaled.fov, clip_limit=s["clip"])
        if self.has_model:
            from vitalens.vessels.segment import net_vessel_probability

            session = self.onnx_session()
            net = None if session is not None else self.model()
            prob = net_vessel_probability(
                net, channel, device=str(self.device), flip_average=s["flip"], session=session
            )
            return scaled, np.where(scaled.fov, prob, 0.0), float(s["threshold"]), "vessel U-Net"
        score = classical_vesselness(channel, scaled.fov, method="sato")
        threshold = float(np.quantile(score[scaled.fov], 1.0 - CLASSICAL_VESSEL_SHARE))
        return scaled, score, threshold, "Sato filter (classical)"

    # -- analysis -----------------------------------------------------------------------------------------
    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        from PIL import Image

        from vitalens.explain import overlay_png
        from vitalens.vessels.biomarkers import measure_vessel_biomarkers

        measurements: list[Measurement] = []
        explanations: list[Explanation] = []
        per_eye: dict[str, Any] = {}
        zone_rows: list[dict[str, Any]] = []
        warnings: list[str] = []
        method = ""
        for slot, eye in EYES.items():
            image = inputs.get(slot)
            if image is None:
                continue
            scaled, prob, threshold, method = self.vessel_map(image)
            b = measure_vessel_biomarkers(scaled.image, scaled.fov, prob, threshold)
            measurements += self._measurements(eye, b)
            per_eye[slot] = {**b.as_dict(), "threshold": threshold, "scale_factor": scaled.factor, "method": method}
            zone_rows += [
                {
                    "eye": eye,
                    "kind": "arteriole" if v.artery else "venule",
                    "width_um": round(v.width_um, 1),
                    "profiles": v.n_profiles,
                }
                for v in sorted(b.zone_vessels, key=lambda v: (not v.artery, -v.width_um))
            ]
            warnings += [f"{eye}: {note}" for note in b.notes]
            h, w = image.shape[:2]
            heat = np.asarray(
                Image.fromarray(prob.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32
            )
            heat = np.clip(heat, 0.0, 1.0)
            explanations.append(
                Explanation(
                    target="vessel",
                    input_name=slot,
                    method=method,
                    heatmap=heat,
                    overlay_png=overlay_png(image, heat) if explain else None,
                    note=f"Vessel probability ({method}) on the {eye.lower()}; threshold {threshold:.2f}",
                )
            )
        warnings.append(
            "Vessel biomarkers are research measurements: the µm scale assumes an average optic disc (1,800 µm), "
            "artery/vein labels come from an unvalidated colour heuristic, and the reference values shown are "
            "context from cohorts graded with other software, not normal ranges for these numbers."
        )
        if not self.has_model:
            warnings.append("No trained vessel model is installed: the classical Sato filter segmented the vessels.")
        elif self.card.demonstration:
            warnings.append(
                f"Demonstration model trained on {self.card.trained_on}: not validated, not for clinical use."
            )
        fields: dict[str, Any] = {
            "measurements": measurements,
            "explanations": explanations,
            "extras": {
                "eyes": per_eye,
                "zone_vessels": zone_rows,
                "backend": self.backend if self.has_model else "classical",
            },
            "warnings": warnings,
            "explanation": self._narrative(per_eye, method),
        }
        if self.has_model:
            return self.base_result(**fields)
        return AnalysisResult(
            analyzer=self.name,
            model=self.model_info(),
            card={"name": "sato-classical", "analyzer": self.name, "explanation_method": "Sato filter response"},
            trained_on=self.model_info().trained_on,
            demonstration=True,
            **fields,
        )

    @staticmethod
    def _measurements(eye: str, b: Any) -> list[Measurement]:
        def ref_kw(name: str, value: float | None) -> dict[str, Any]:
            ref = REFERENCE_VALUES.get(name)
            if ref is None:
                return {}
            return {
                "reference_low": ref.low,
                "reference_high": ref.high,
                "flag": flag_against_reference(ref, value),
            }

        def text(name: str) -> str:
            ref = REFERENCE_VALUES.get(name)
            return _METHODS[name] + (f"; {_reference_text(ref)}" if ref else "")

        density = None if b.density is None else 100.0 * b.density
        rows = [
            Measurement(name=f"{eye}: vessel density", value=density, unit="%", method=text("density")),
            Measurement(
                name=f"{eye}: fractal dimension",
                value=b.fractal_dimension,
                unit="1",
                method=text("fractal_dimension"),
                **ref_kw("fractal_dimension", b.fractal_dimension),
            ),
            Measurement(
                name=f"{eye}: tortuosity (arc/chord)",
                value=b.tortuosity_distance,
                unit="1",
                method=text("tortuosity_distance"),
            ),
            Measurement(
                name=f"{eye}: tortuosity (curvature)",
                value=b.tortuosity_curvature_per_mm,
                unit="rad/mm",
                method=text("tortuosity_curvature"),
            ),
            Measurement(
                name=f"{eye}: CRAE", value=b.crae_um, unit="µm", method=text("crae"), **ref_kw("crae", b.crae_um)
            ),
            Measurement(
                name=f"{eye}: CRVE", value=b.crve_um, unit="µm", method=text("crve"), **ref_kw("crve", b.crve_um)
            ),
            Measurement(name=f"{eye}: AVR", value=b.avr, unit="1", method=text("avr")),
        ]
        for m in rows:
            m.unit_ucum = {"%": "%", "1": "1", "rad/mm": "rad/mm", "µm": "um"}[m.unit]
        return rows

    @staticmethod
    def _narrative(per_eye: dict[str, Any], method: str) -> str:
        parts = []
        for slot, d in per_eye.items():
            eye = EYES[slot]
            bits = [f"vessel density {100 * d['density']:.1f} %" if d["density"] is not None else "density n/a"]
            if d["avr"] is not None:
                bits.append(f"AVR {d['avr']:.2f} (CRAE {d['crae_um']:.0f} µm, CRVE {d['crve_um']:.0f} µm)")
            else:
                bits.append("calibres not measured")
            parts.append(f"{eye}: " + ", ".join(bits) + ".")
        return f"Vessels segmented by the {method}. " + " ".join(parts)
