"""``notes.symptoms``: the clinician's note → what it mentions (symptoms, findings, conditions, medications, body
sites) with ConText modifiers, and which of the study's condition labels it mentions.

Decision support, not a diagnosis: the output says what the *note says* ("the note mentions myocardial infarction —
family"), never what the patient has, and no entry of the note becomes a ``Finding``: findings are what a model
computed from a study's images and signals.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.analyzers._base import Analyzer
from vitalens.analyzers._contract import Entities, Narrative, Table
from vitalens.analyzers._registry import register_analyzer
from vitalens.artifacts import ModelCache
from vitalens.domain import AnalysisResult, Modality, ModelInfo, StudyInputs
from vitalens.slots import SlotKind, SlotSpec, TextLimits, is_slot, register_slot

__all__ = ["NotesSymptomsAnalyzer", "NOTES_SLOT"]

logger = logging.getLogger(__name__)

#: The free-text slot: typed, pasted or dictated (the web app's microphone fills it for the clinician to edit).
NOTES_SLOT = "notes"
_MAX_CHARS = 20_000  # vitalens.notes.MAX_NOTE_CHARS (not imported here: the registry imports this module eagerly)

if not is_slot(NOTES_SLOT):
    register_slot(
        SlotSpec(
            NOTES_SLOT,
            SlotKind.TEXT,
            "Symptom notes",
            TextLimits(max_chars=_MAX_CHARS, min_chars=1),
            source="study",
            description="The clinician's free-text note: symptoms, history, medications (typed, pasted or dictated).",
            example=lambda seed: ("", "Chest pain on exertion for two weeks, short of breath; no fever.", {}),
        )
    )

_MENTION_COLUMNS = (
    ("name", "Label"),
    ("analyzer", "Analyzer"),
    ("evidence", "Where the note says it"),
    ("modifiers", "Modifiers"),
    ("probability", "Zero-shot P"),
    ("by", "Found by"),
)


@register_analyzer(
    "notes.symptoms",
    modality=Modality.TEXT,
    title="Symptom notes",
    inputs=(NOTES_SLOT,),
    default_artifact=None,
    no_export_reason="rule-based entity extraction (medspaCy) with a pretrained encoder: nothing trained on labels",
    render=(
        Entities(),
        Table(title="Study labels the note mentions", key="mentions", columns=_MENTION_COLUMNS),
        Narrative(),
    ),
    description="Symptoms, findings, conditions, medications and body sites a note mentions, with negation, history, "
    "family, hypothetical and uncertainty (medspaCy ConText), and the study labels it mentions (MiniLM)",
)
class NotesSymptomsAnalyzer(Analyzer):
    """Symptom and finding extraction from the clinician's note (medspaCy + a curated lexicon); no trained net."""

    def __init__(
        self,
        artifact: Path | None = None,
        *,
        device: str | None = None,
        cache: ModelCache[Any] | None = None,
        models_dir: Path | None = None,
    ) -> None:
        super().__init__(artifact=None, device="cpu", cache=cache, models_dir=models_dir)

    def model_info(self) -> ModelInfo:
        from vitalens.notes import load_lexicon

        return ModelInfo(
            name="vitalens lexicon + medspaCy ConText; MiniLM zero-shot",
            analyzer=self.name,
            version=f"lexicon {load_lexicon().version}",
            demonstration=True,
            trained_on="no trained net: a project-curated lexicon and ConText rules; the zero-shot label "
            "calibration was fitted on 168 project-written sentences (bench/data/notes_eval.jsonl, dev split)",
        )

    def labels(self) -> list[tuple[str, str]]:
        return []

    def _study_labels(self, inputs: StudyInputs) -> dict[str, dict[str, str]]:
        """analyzer → {code: name} of every other analyzer this study's inputs can run (their cards' labels)."""
        from vitalens.analyzers._registry import create_analyzer, get_contract, list_analyzers

        present = inputs.present()
        out: dict[str, dict[str, str]] = {}
        for name in list_analyzers():
            if name == self.name or not get_contract(name).applies_to(present):
                continue
            try:
                labels = create_analyzer(name).labels()
            except Exception as exc:  # a plug-in's broken card must not break the note
                logger.warning("labels of %s unavailable for the note mapping: %s", name, exc)
                continue
            named = {code: label for code, label in labels if code not in {"N", "NORM", "O"}}
            if named:
                out[name] = named
        return out

    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
        from vitalens.notes import Modifier, extract_entities
        from vitalens.notes.zero_shot import load_calibration, map_note_to_labels

        text = str(inputs.get(NOTES_SLOT) or "")
        extraction = extract_entities(text)
        entities = [
            {
                "text": e.text,
                "type": e.type.value,
                "concept": e.concept,
                "start": e.start,
                "end": e.end,
                **{m.value: e.has(m) for m in Modifier},
                "triggers": {m.value: t for m, t in e.triggers.items()},
                "sentence": e.sentence,
            }
            for e in extraction.entities
        ]
        mentions: list[dict[str, Any]] = []
        warnings: list[str] = []
        try:
            for analyzer, labels in self._study_labels(inputs).items():
                for m in map_note_to_labels(text, labels, analyzer=analyzer, extraction=extraction):
                    if m.mentioned:
                        mentions.append(
                            {
                                "code": m.code,
                                "name": m.name,
                                "analyzer": analyzer,
                                "evidence": m.sentence,
                                "modifiers": ", ".join(x.value for x in m.modifiers) or "none",
                                "probability": round(m.probability, 3),
                                "by": "lexicon" if m.by_lexicon else "zero-shot",
                            }
                        )
        except Exception as exc:  # MiniLM missing or broken: the entities still stand, the mapping says why not
            logger.warning("zero-shot label mapping unavailable: %s", exc)
            warnings.append(f"The note was not mapped to the study's labels: {exc}")
        info = self.model_info()
        affirmed = [e.describe() for e in extraction.entities if e.type.value != "body_site"]
        summary = (
            ("The note mentions " + "; ".join(affirmed) + ".")
            if affirmed
            else "The note mentions no term of the lexicon."
        )
        if mentions:
            summary += (
                " Of the study's labels it mentions "
                + ", ".join(
                    f"{m['name']}" + (f" ({m['modifiers']})" if m["modifiers"] != "none" else "") for m in mentions
                )
                + "."
            )
        calibration = load_calibration()
        return AnalysisResult(
            analyzer=self.name,
            model=info,
            card={
                "name": info.name,
                "version": info.version,
                "intended_use": "Lists what a clinician's note mentions, with negation and context, beside the study's "
                "findings. It reports what the note says, never what the patient has.",
                "limitations": "Rule-based: a term missing from the lexicon is missed, and ConText rules misread some "
                "sentences. Zero-shot label mapping by MiniLM similarity, calibrated on a small project-written set; "
                "evaluated in bench/notes.py.",
                "training_data": {"description": info.trained_on},
                "calibration": f"Platt on cosine similarity (slope {calibration.slope:g}, intercept "
                f"{calibration.intercept:g}, threshold {calibration.threshold:g})",
                "threshold_method": "F1-maximising threshold on the dev split",
            },
            trained_on=info.trained_on,
            demonstration=True,
            explanation=f"{summary} {DECISION_SUPPORT_NOTICE}",
            extras={
                "entities": entities,
                "mentions": mentions,
                "lexicon_version": extraction.lexicon_version,
                "note_chars": len(text),
            },
            warnings=warnings,
        )
