"""The analyzer contract: everything every surface (CLI, API, jobs, web, PDF, FHIR, export) reads about an analyzer.

Why declarative: the surfaces must not know any analyzer. They read, from the contract an analyzer registers with
``@register_analyzer``, its human title, the input slots it reads (with their limits and which are required), the
dataset adapter that writes its labels back out for retraining, the quality gates to run before it, and how its
results render — as a list of :data:`RenderBlock` values the web page, the PDF and the CLI each know how to draw.
The model card stays the source of labels, thresholds, preprocessing and normalisation; the contract names what
the card cannot (titles, slots, layout).

Example:
    >>> from vitalens.analyzers._contract import SlotUse, Findings, Overlays
    >>> uses = (SlotUse("fundus_left", any_of="eye"), SlotUse("fundus_right", any_of="eye"))
    >>> render = (Findings(), Overlays(slots=("fundus_left", "fundus_right")))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vitalens.slots import SlotLimits, SlotSpec, get_slot

if TYPE_CHECKING:
    from vitalens.analyzers._base import Analyzer

__all__ = [
    "SlotUse",
    "AnalyzerContract",
    "RenderBlock",
    "Block",
    "Summary",
    "Findings",
    "Classes",
    "Scores",
    "Measurements",
    "Overlays",
    "EcgAttribution",
    "ThreePanel",
    "Table",
    "Entities",
    "Narrative",
    "default_render",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlotUse:
    """How an analyzer uses one input slot.

    Attributes:
        slot: a registered slot name (:mod:`vitalens.slots`).
        required: the analyzer does not apply without it (unless it belongs to an ``any_of`` group).
        any_of: a group name: the analyzer applies when **at least one** slot of the group is present, and it runs
            on each one present (``fundus.dr`` reads whichever eyes a study has).
        limits: limits of this analyzer on top of the slot's own (e.g. ``ImageLimits(min_side=128)``).
    """

    slot: str
    required: bool = True
    any_of: str | None = None
    limits: SlotLimits | None = None

    @property
    def spec(self) -> SlotSpec:
        return get_slot(self.slot)


# -- render blocks -----------------------------------------------------------------------------------------------
class Block(BaseModel):
    """A declarative piece of an analyzer's results page; the web, PDF and CLI renderers draw each kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    title: str = ""


class Summary(Block):
    """Badges at the top of the section: result attributes such as the risk ``band`` and ``tier``.

    ``glossary`` maps a field to the glossary anchor that defines it (the badge links there).
    """

    kind: Literal["summary"] = "summary"
    fields: tuple[str, ...] = ("band", "tier")
    glossary: dict[str, str] = Field(default_factory=dict)


class Findings(Block):
    """Binary findings: probability, the card's threshold, positive or not, optional tier, a bar chart.

    Attributes:
        codes: the findings shown here (``None``: every finding no other block claims).
        chart: draw the probability bars with threshold ticks.
        tiers: show each finding's risk tier.
        normal: the code meaning "no abnormal finding" (e.g. ``N``, ``NORM``): shown as the absence of the others,
            never coloured as a finding.
    """

    kind: Literal["findings"] = "findings"
    title: str = "Findings"
    codes: tuple[str, ...] | None = None
    chart: bool = True
    tiers: bool = False
    normal: str | None = None


class Classes(Block):
    """Mutually exclusive classes (a grade): each class's probability, the most probable one, and the expected
    grade ``Σ k·p_k`` when the classes are ordered (stored in ``result.extras[expected_key]``)."""

    kind: Literal["classes"] = "classes"
    title: str = "Class probabilities"
    codes: tuple[str, ...] | None = None
    ordered: bool = False
    expected_key: str | None = "expected_grade"


class Scores(Block):
    """Named scores on a 0–1 scale with their formula text (e.g. the retinal cardiovascular proxies).

    Values come from ``result.proxies`` when ``key`` is ``proxies``, else from ``result.extras[key]`` (a mapping).
    ``names`` gives each score's display name, ``formulas`` its formula in words.
    """

    kind: Literal["scores"] = "scores"
    title: str = "Scores (0–1)"
    key: str = "proxies"
    names: dict[str, str] = Field(default_factory=dict)
    formulas: dict[str, str] = Field(default_factory=dict)
    note: str = ""


class Measurements(Block):
    """The measurements table: value, unit, reference range, out-of-range flag, method."""

    kind: Literal["measurements"] = "measurements"
    title: str = "Measurements"


class Overlays(Block):
    """Heat-map overlays of image slots (one figure per explanation, with an opacity control on the web)."""

    kind: Literal["overlays"] = "overlays"
    title: str = "Heat maps"
    slots: tuple[str, ...] = ()


class EcgAttribution(Block):
    """The 12-lead sheet of an ECG slot with the analyzer's per-lead attribution drawn over the trace."""

    kind: Literal["ecg_attribution"] = "ecg_attribution"
    title: str = "Where the model looked"
    slot: str = "ecg"


class ThreePanel(Block):
    """Original | heat map | overlay, side by side, for one image slot (the chest X-ray design's view)."""

    kind: Literal["three_panel"] = "three_panel"
    title: str = "Original, heat map, overlay"
    slot: str = ""


class Table(Block):
    """A table of rows from ``result.extras[key]`` (a list of mappings); ``columns`` are (field, heading) pairs."""

    kind: Literal["table", "entities"] = "table"
    key: str = ""
    columns: tuple[tuple[str, str], ...] = ()


class Entities(Table):
    """The entities found in a text slot (symptoms, findings, medications...) with their context modifiers."""

    kind: Literal["table", "entities"] = "entities"
    title: str = "Mentioned in the note"
    key: str = "entities"
    columns: tuple[tuple[str, str], ...] = (
        ("text", "Text"),
        ("type", "Type"),
        ("concept", "Concept"),
        ("negated", "Negated"),
        ("historical", "Historical"),
        ("family", "Family"),
        ("hypothetical", "Hypothetical"),
        ("uncertain", "Uncertain"),
    )


class Narrative(Block):
    """A paragraph of text: ``result.explanation`` (``key="explanation"``) or ``result.extras[key]``."""

    kind: Literal["narrative"] = "narrative"
    key: str = "explanation"


#: Any of the block kinds (for type hints; every block is a :class:`Block`).
RenderBlock = (
    Summary | Findings | Classes | Scores | Measurements | Overlays | EcgAttribution | ThreePanel | Table | Narrative
)


def default_render(uses: Iterable[SlotUse]) -> tuple[Block, ...]:
    """The layout of an analyzer that declares none: badges, findings, scores, measurements, the maps of its image
    slots and ECG slots, and the narrative."""
    from vitalens.slots import SlotKind

    specs = [u.spec for u in uses]
    images = tuple(s.name for s in specs if s.kind == SlotKind.IMAGE)
    blocks: list[Block] = [Summary(), Findings(), Scores(), Measurements()]
    if images:
        blocks.append(Overlays(slots=images))
    blocks += [EcgAttribution(slot=s.name) for s in specs if s.kind == SlotKind.ECG]
    blocks.append(Narrative())
    return tuple(blocks)


# -- the contract ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnalyzerContract:
    """What one registered analyzer is, reads, writes and shows (see the module docstring).

    Attributes:
        name: dotted name stored in rows (``fundus.odir``).
        cls: the :class:`~vitalens.analyzers.Analyzer` subclass.
        title: the clinician's title of the section ("Eyes → heart").
        modality: the modality it screens (``fundus``, ``ecg``, ``oct``, ``cxr``, ``text``...).
        uses: the slots it reads (:class:`SlotUse`), in display order.
        default_artifact: folder name of its bundled model under ``models/`` (``None``: it needs no model).
        dataset: the dataset adapter (:mod:`vitalens.data`) that reads its training data and writes its reviewed
            labels back out in the same published layout (``None``: nothing to export, e.g. measurements only).
        no_export_reason: why its reviewed studies cannot be exported and retrained on, when they cannot — no
            adapter (measurements, rules, a fusion of other analyzers) or a writer that needs what a review does
            not hold (a vessel mask); ``None``: ``vitalens feedback export`` writes them through ``dataset``.
        render: how its results render (:data:`RenderBlock` values); :func:`default_render` when not given.
        quality_gates: slot → names of quality gates (:mod:`vitalens.quality`) run before the analyzer.
        labels: (code, name) pairs for when no card is at hand (documentation, the "no model" state); the card's
            labels win whenever a card exists.
        description: one line for listings.
        train_command: how to make its model when none is bundled (shown in the "no bundled model" state).
        tags: free-form tags.
    """

    name: str
    cls: type[Analyzer]
    title: str
    modality: str
    uses: tuple[SlotUse, ...]
    default_artifact: str | None = None
    dataset: str | None = None
    no_export_reason: str | None = None
    render: tuple[Block, ...] = ()
    quality_gates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    labels: tuple[tuple[str, str], ...] = ()
    description: str = ""
    train_command: str | None = None
    tags: tuple[str, ...] = ()

    # -- slots ----------------------------------------------------------------------------------------------
    @property
    def slots(self) -> tuple[str, ...]:
        """Every slot the analyzer reads, in display order."""
        return tuple(u.slot for u in self.uses)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The slots that must all be present (required and in no ``any_of`` group)."""
        return tuple(u.slot for u in self.uses if u.required and u.any_of is None)

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        return tuple(u.slot for u in self.uses if not u.required)

    @property
    def any_of(self) -> dict[str, tuple[str, ...]]:
        """Group name → its slots; at least one of each group must be present."""
        groups: dict[str, list[str]] = {}
        for u in self.uses:
            if u.any_of is not None:
                groups.setdefault(u.any_of, []).append(u.slot)
        return {k: tuple(v) for k, v in groups.items()}

    def use(self, slot: str) -> SlotUse | None:
        return next((u for u in self.uses if u.slot == slot), None)

    def limits_for(self, slot: str) -> SlotLimits:
        """The limits a value of ``slot`` must meet for this analyzer (the slot's, tightened by the analyzer's)."""
        use = self.use(slot)
        return get_slot(slot).limits_with(use.limits if use is not None else None)

    def missing(self, present: Iterable[str]) -> list[str]:
        """What the study lacks for this analyzer, one phrase per gap (``age``, ``fundus_left or fundus_right``)."""
        have = set(present)
        gaps = [s for s in self.inputs if s not in have]
        gaps += [" or ".join(group) for group in self.any_of.values() if not have.intersection(group)]
        return gaps

    def applies_to(self, present: Iterable[str]) -> bool:
        """True when the slots ``present`` satisfy every requirement."""
        return not self.missing(present)

    def requirement_text(self) -> str:
        """``fundus_left, fundus_right, age`` / ``fundus_left or fundus_right`` — for messages."""
        parts = list(self.inputs) + [" or ".join(g) for g in self.any_of.values()]
        return ", ".join(parts) or "nothing"

    # -- rendering ------------------------------------------------------------------------------------------
    @property
    def blocks(self) -> tuple[Block, ...]:
        """The render blocks (declared, or :func:`default_render`)."""
        return self.render or default_render(self.uses)

    # -- description ----------------------------------------------------------------------------------------
    def public(self) -> dict[str, Any]:
        """JSON description for ``vitalens analyzers --json``, ``GET /api/v1/analyzers`` and the web form."""
        return {
            "name": self.name,
            "title": self.title,
            "modality": str(self.modality),
            "description": self.description,
            "requires": self.requirement_text(),
            "inputs": list(self.inputs),
            "optional_inputs": list(self.optional_inputs),
            "any_of": {k: list(v) for k, v in self.any_of.items()},
            "slots": [
                {
                    **u.spec.public(),
                    "required": u.required and u.any_of is None,
                    "any_of": u.any_of,
                    "limits": _limits_public(self.limits_for(u.slot)),
                }
                for u in self.uses
            ],
            "default_artifact": self.default_artifact,
            "dataset": self.dataset,
            "no_export_reason": self.no_export_reason,
            "quality_gates": {k: list(v) for k, v in self.quality_gates.items()},
            "render": [b.model_dump(mode="json") for b in self.blocks],
            "labels": [list(pair) for pair in self.labels],
            "train_command": self.train_command,
        }


def _limits_public(limits: SlotLimits) -> dict[str, Any]:
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(limits).items() if v not in (None, (), "")}
