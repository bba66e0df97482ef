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
    "Alias",
    "AliasField",
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
        value: what each finding's number is, as its column is headed in the page, the PDF and the CLI:
            ``Probability``, or a score's name (``Anomaly score``) where the number lies in [0, 1] but is not a
            probability — a reader must not take a distance-based score for a chance of disease.
    """

    kind: Literal["findings"] = "findings"
    title: str = "Findings"
    codes: tuple[str, ...] | None = None
    chart: bool = True
    tiers: bool = False
    normal: str | None = None
    value: str = "Probability"


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


# -- short names ---------------------------------------------------------------------------------------------------
#: Names an alias's form and command keep for themselves (``explain`` in the form; these options on the command).
RESERVED_ALIAS_FIELDS = frozenset({"explain", "json", "plot", "artifact", "help"})


@dataclass(frozen=True)
class AliasField:
    """One field of an alias's form (``POST /api/v1/predict/<alias>``) and option of its command (``vitalens analyze
    <alias>``), and the slot or slot hint it fills.

    Why declared: the first version's paths took their own field names (``left`` for ``fundus_left``, ``file`` and
    ``fs_hz`` for the ``ecg`` slot and its hint); integrators and scripts still send them, so the analyzer says how
    they map and the surfaces read that, knowing no analyzer.

    Attributes:
        name: the form field (``left``, ``file``, ``fs_hz``).
        target: a slot the analyzer reads (``fundus_left``) or one of that slot's hints (``ecg.fs_hz``).
        option: the command's option (``--fs``); default ``--`` + the name with ``_`` and ``.`` as ``-``; ``""``: the
            command's positional argument.
        description: help text of the field and the option; default the slot's (or the hint's) description.
        gt: a number hint's bound checked by the form itself before the hint's own limits (the first version
            answered ``fs_hz: input should be greater than 0`` there).
        label: a choice hint's values are checked against its choices before anything is decoded, and a wrong one
            answers ``<name>: Unknown <label> 'x'. Valid: ...`` naming this field (the first version's answer).
    """

    name: str
    target: str
    option: str | None = None
    description: str = ""
    gt: float | None = None
    label: str | None = None

    @property
    def slot(self) -> str:
        return self.target.partition(".")[0]

    @property
    def hint(self) -> str | None:
        """The hint this field fills, ``None`` when it fills the slot itself."""
        return self.target.partition(".")[2] or None

    @property
    def cli_option(self) -> str:
        """The command's option (``""`` for the positional argument)."""
        if self.option is not None:
            return self.option
        return "--" + self.name.replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class Alias:
    """A short name of an analyzer: ``POST /api/v1/predict/<name>`` and ``vitalens analyze <name>``.

    The short name answers the analyzer's own JSON document, with the contract's ``companions`` run on the same
    inputs and their measurements added under ``companions_key`` (:func:`vitalens.service.ops.predict.with_companions`;
    a companion that fails adds a warning, never fails the answer). The first version's ``/predict/fundus`` and
    ``/predict/ecg`` (and ``analyze fundus``/``ecg``) are aliases of ``fundus.odir`` and ``ecg.ptbxl``.

    Attributes:
        name: the short name (``fundus``); a lowercase word, never an analyzer's dotted name or another's alias.
        fields: the form fields / options (:class:`AliasField`); empty: one per slot by the slot's name and one per
            hint as ``<slot>.<hint>``, the full-name route's form.
        always_explain: the analysis always computes its explanations (the first version always returned the ECG
            attribution summary); ``explain`` then adds ``explain_extras`` instead of overlay images.
        explain_extras: answer key → ``result.extras`` key, added when ``explain`` is asked
            (``{"attribution_arrays": "attribution"}``).
        companions_key: where the companions' measurements go in the answer.
    """

    name: str
    fields: tuple[AliasField, ...] = ()
    always_explain: bool = False
    explain_extras: Mapping[str, str] = field(default_factory=dict)
    companions_key: str = "companion_measurements"

    def fields_for(self, uses: Iterable[SlotUse]) -> tuple[AliasField, ...]:
        """The declared fields, else the slots' own names and their hints' ``<slot>.<hint>`` names."""
        if self.fields:
            return self.fields
        out: list[AliasField] = []
        for use in uses:
            out.append(AliasField(use.slot, use.slot))
            out += [AliasField(f"{use.slot}.{h.name}", f"{use.slot}.{h.name}") for h in use.spec.hints]
        return tuple(out)


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
        aliases: its short names (:class:`Alias`): ``/api/v1/predict/<alias>`` and ``vitalens analyze <alias>``.
        companions: analyzers run on the same inputs whose measurements its aliases return alongside its own
            (``ecg.intervals`` with ``ecg.ptbxl``); the full-name route answers this analyzer alone.
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
    aliases: tuple[Alias, ...] = ()
    companions: tuple[str, ...] = ()

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

    def alias(self, name: str) -> Alias | None:
        """Its alias ``name``, ``None`` when it has none by that name."""
        return next((a for a in self.aliases if a.name == name), None)

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
            "aliases": [a.name for a in self.aliases],
            "companions": list(self.companions),
        }


def _limits_public(limits: SlotLimits) -> dict[str, Any]:
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(limits).items() if v not in (None, (), "")}
