"""An analyzer's result section, resolved from its contract's render blocks into parts every renderer draws.

Why one resolver: the results page, the print view and the PDF must show the same things for an analyzer, and none
of them may know any analyzer. Each reads the analyzer's :class:`~vitalens.analyzers.AnalyzerContract` (its human
title and its :data:`~vitalens.analyzers._contract.RenderBlock` list) through :func:`section_heading` and
:func:`resolve_blocks`, which turn a block and the stored result into a :class:`Part` — which findings, which
rows, which figures, which text — so a renderer only draws parts (a Jinja macro per kind, a ReportLab function per
kind). A block with nothing to show resolves to no part; an analyzer that is no longer registered (old rows) gets
its name as title and :func:`~vitalens.analyzers.default_render`.

Example:
    >>> from vitalens.analyzers import Findings, Narrative
    >>> parts = resolve_blocks((Findings(), Narrative()), result={"explanation": "All clear."}, findings=[])
    >>> [p.kind for p in parts]
    ['narrative']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vitalens.analyzers._contract import (
    Block,
    Classes,
    EcgAttribution,
    Findings,
    Measurements,
    Narrative,
    Overlays,
    Scores,
    Summary,
    Table,
    ThreePanel,
    default_render,
)

__all__ = [
    "Badge",
    "Figure",
    "Heading",
    "Part",
    "analyzer_blocks",
    "method_title",
    "normal_conflict",
    "resolve_blocks",
    "section_heading",
    "slot_title",
    "stage_title",
    "warning_text",
]

logger = logging.getLogger(__name__)

#: Display label of a summary field (any other field is shown capitalised).
_FIELD_LABELS = {"band": "Band", "tier": "Tier"}


@dataclass(frozen=True)
class Heading:
    """A section's heading: the clinician's title, and beneath it (small) the analyzer name and model version."""

    title: str
    analyzer: str
    model: str

    @property
    def subtitle(self) -> str:
        return f"{self.analyzer} · {self.model}" if self.model else self.analyzer


@dataclass(frozen=True)
class Badge:
    """One summary badge: ``field`` (``band``), its label (``Band``), its value and the glossary anchor."""

    field: str
    label: str
    value: str
    glossary: str | None = None
    #: how the value is defined, with its edges (the result's ``extras["<field>_definition"]``)
    definition: str | None = None


@dataclass(frozen=True)
class Figure:
    """One explanation map of one input slot; ``ref`` is the renderer's own object (a stored row, an image)."""

    slot: str
    target: str
    method: str
    ref: Any = None
    #: the explained finding's name (``Diabetic retinopathy``), filled by :func:`resolve_blocks` from the findings
    label: str = ""

    @property
    def caption(self) -> str:
        """``Left eye (OS): Diabetic retinopathy — Grad-CAM`` — the same words on the page and in the PDF (the
        finding's code where its name is not known)."""
        return f"{slot_title(self.slot)}: {self.what} — {self.method_words}"

    @property
    def what(self) -> str:
        """The explained finding's name (its code where the name is not known)."""
        return self.label or self.target

    @property
    def method_words(self) -> str:
        return method_title(self.method)


#: what the explanation methods are called in a caption (an unknown method keeps its name, spaced)
METHOD_TITLES: dict[str, str] = {
    "grad-cam": "Grad-CAM",
    "gradcam": "Grad-CAM",
    "saliency": "saliency",
    "integrated_gradients": "integrated gradients",
    "input_x_gradient": "input × gradient",
    "occlusion": "occlusion",
}


def method_title(method: str) -> str:
    """The explanation method in words (``grad-cam`` → ``Grad-CAM``)."""
    return METHOD_TITLES.get(method.lower(), method.replace("_", " "))


@dataclass
class Part:
    """One resolved block: what a renderer draws for it (the fields its ``kind`` uses; the rest stay empty).

    Kinds: ``summary`` (badges), ``findings`` (finding objects, ``normal``, ``tiers``, ``chart``), ``classes``
    (``columns`` × ``rows`` of probabilities, ``marked`` cells), ``scores`` / ``table`` (``columns`` × ``rows``),
    ``measurements`` (measurement objects), ``overlays`` / ``ecg_attribution`` / ``three_panel`` (``figures`` of
    ``slots``), ``narrative`` (``text``). ``note`` is a line under the part.
    """

    kind: str
    title: str
    block: Block
    badges: list[Badge] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    measurements: list[Any] = field(default_factory=list)
    normal: str | None = None
    tiers: bool = False
    chart: bool = False
    value: str = "Probability"
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    marked: set[tuple[int, int]] = field(default_factory=set)
    figures: list[Figure] = field(default_factory=list)
    slots: tuple[str, ...] = ()
    text: str = ""
    note: str = ""


def _contract(name: str) -> Any | None:
    from vitalens.analyzers import get_contract, is_analyzer

    try:
        return get_contract(name) if is_analyzer(name) else None
    except Exception as exc:  # noqa: BLE001 - a registry problem must not take the results page down
        logger.warning("no contract for %s: %s", name, exc)
        return None


def section_heading(analyzer: str, model_name: str | None = None, model_version: str | None = None) -> Heading:
    """The heading of ``analyzer``'s section: its contract's title (its name when it is no longer registered)."""
    contract = _contract(analyzer)
    model = " ".join(x for x in (model_name, f"version {model_version}" if model_version else None) if x)
    return Heading(title=contract.title if contract is not None else analyzer, analyzer=analyzer, model=model)


_QUALITY_WARNING = re.compile(r"^input quality \((?P<slot>[\w.-]+), (?P<gate>[^)]+)\): (?P<message>.*)$", re.S)


def warning_text(warning: str) -> str:
    """A stored warning in clinical words: the quality gate's ``input quality (fundus_left, fundus.gradable): …``
    becomes ``Input quality, Left eye (OS) (fundus.gradable): …``; any other warning is shown as written."""
    m = _QUALITY_WARNING.match(warning)
    if m is None:
        return warning
    return f"Input quality, {slot_title(m['slot'])} ({m['gate']}): {m['message']}"


#: the analysis stages that are not an analyzer, in words (``validate`` and ``report``, see service/jobs)
STAGE_TITLES: dict[str, str] = {"validate": "Checking the inputs", "report": "Writing the report"}


def stage_title(name: str, analyzer: str | None = None) -> str:
    """What an analysis stage is in words: an analyzer stage by its section title ("Eyes → heart"), the others
    by :data:`STAGE_TITLES`; an unknown stage keeps its name."""
    if analyzer:
        return section_heading(analyzer).title
    return STAGE_TITLES.get(name, name)


def analyzer_blocks(analyzer: str) -> tuple[Block, ...]:
    """The render blocks of ``analyzer`` (the default layout when it is no longer registered)."""
    contract = _contract(analyzer)
    return contract.blocks if contract is not None else default_render(())


def _name(f: Any) -> str:
    return str(getattr(f, "name", None) or getattr(f, "label", None) or f.code)


def _pct(p: float | None) -> str:
    return "—" if p is None else f"{100.0 * float(p):.0f}%"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def slot_title(slot: str | None) -> str:
    """What a clinician calls the slot ("Left eye (OS)"); an unknown slot keeps its name, spaced."""
    if not slot:
        return ""
    try:
        from vitalens.slots import get_slot

        return str(get_slot(slot).title)
    except Exception:  # noqa: BLE001 - an unknown slot keeps its name
        return slot.replace("_", " ")


def finding_value(analyzer: str, code: str) -> str:
    """What the number of finding ``code`` of ``analyzer`` is (its findings block's ``value``: ``Probability``, or a
    score's name such as ``Anomaly score``), for the exports that state it in words (FHIR unit, DICOM SR concept)."""
    blocks = analyzer_blocks(analyzer)
    claimed = _claimed_codes(blocks)
    for b in blocks:
        if isinstance(b, Findings) and (code in b.codes if b.codes else code not in claimed):
            return b.value
    return "Probability"


def _claimed_codes(blocks: Sequence[Block]) -> set[str]:
    """Codes some block names explicitly (a ``Findings`` without ``codes`` shows every other one)."""
    out: set[str] = set()
    for b in blocks:
        if isinstance(b, Findings | Classes) and b.codes:
            out.update(b.codes)
    return out


def _findings_part(b: Findings, findings: Sequence[Any], claimed: set[str]) -> Part | None:
    chosen = [f for f in findings if (f.code in b.codes if b.codes else f.code not in claimed)]
    if not chosen:
        return None
    chosen = sorted(chosen, key=lambda f: (str(getattr(f, "input_name", None) or ""), -float(f.probability)))
    note = normal_conflict(chosen, b.normal) if b.normal else ""
    return Part(
        kind="findings",
        title=b.title,
        block=b,
        findings=chosen,
        normal=b.normal,
        tiers=b.tiers,
        chart=b.chart,
        value=b.value,
        note=note,
    )


def normal_conflict(findings: Sequence[Any], normal: str) -> str:
    """The sentence stating a disagreement between the "normal" output and the abnormal findings, else ``""``.

    "Normal" means the absence of every abnormal finding, so the model's scores contradict themselves when Normal
    is positive beside a positive abnormal finding, or when Normal is negative while no abnormal finding is positive.
    Checked per input (each eye on its own); the words are the same on the page and in the PDF.
    """
    out = []
    groups: dict[str, list[Any]] = {}
    for f in findings:
        groups.setdefault(str(getattr(f, "input_name", None) or ""), []).append(f)
    for slot, group in groups.items():
        norm = next((f for f in group if f.code == normal), None)
        if norm is None:
            continue
        abnormal = [f for f in group if f.code != normal and bool(f.positive)]
        where = f"{slot_title(slot)}: the" if slot else "The"
        if bool(norm.positive) and abnormal:
            names = ", ".join(_name(f) for f in abnormal)
            out.append(
                f"{where} scores disagree: “{_name(norm)}” is above its threshold ({_pct(norm.probability)}) while "
                f"{names} {'is' if len(abnormal) == 1 else 'are'} positive. Normal means the absence of the abnormal "
                "findings, so both cannot hold; review the positive findings."
            )
        elif not bool(norm.positive) and not abnormal:
            out.append(
                f"{where} scores disagree: no abnormal finding is positive, yet “{_name(norm)}” is below its "
                f"threshold ({_pct(norm.probability)})."
            )
    return " ".join(out)


def _classes_part(b: Classes, findings: Sequence[Any], result: Mapping[str, Any]) -> Part | None:
    codes = list(b.codes) if b.codes else []
    chosen = [f for f in findings if not codes or f.code in codes]
    if not chosen:
        return None
    if not codes:
        codes = list(dict.fromkeys(f.code for f in chosen))
    groups = list(dict.fromkeys(getattr(f, "input_name", None) for f in chosen))
    by = {(getattr(f, "input_name", None), f.code): f for f in chosen}
    names = {f.code: _name(f) for f in chosen}
    columns = ["Class"] + [slot_title(g) or "Probability" for g in groups]
    rows: list[list[str]] = []
    marked: set[tuple[int, int]] = set()
    for r, code in enumerate(codes):
        row = [f"{code} · {names.get(code, code)}" if names.get(code, code) != code else code]
        for c, g in enumerate(groups):
            f = by.get((g, code))
            row.append(_pct(f.probability) if f is not None else "—")
            if f is not None and bool(f.positive):
                marked.add((r, c + 1))
        rows.append(row)
    note = "Most probable class marked ▲."
    expected = (result.get("extras") or {}).get(b.expected_key) if b.expected_key and b.ordered else None
    if isinstance(expected, Mapping):
        rows.append(["Expected grade (Σ k·p(k))"] + [_cell(expected.get(g)) for g in groups])
    elif isinstance(expected, int | float):
        rows.append(["Expected grade (Σ k·p(k))", _cell(float(expected))])
    return Part(kind="classes", title=b.title, block=b, columns=columns, rows=rows, marked=marked, note=note)


def _scores_part(b: Scores, result: Mapping[str, Any]) -> Part | None:
    values = result.get("proxies") if b.key == "proxies" else (result.get("extras") or {}).get(b.key)
    if not isinstance(values, Mapping) or not values:
        return None
    rows = []
    for key, value in values.items():
        if not isinstance(value, int | float):
            continue
        rows.append([b.names.get(key, key.replace("_", " ")), f"{float(value):.2f}", b.formulas.get(key, "")])
    if not rows:
        return None
    columns = ["Score", "Value (0–1)"] + (["How it is computed"] if any(r[2] for r in rows) else [])
    rows = [r if len(columns) == 3 else r[:2] for r in rows]
    return Part(kind="scores", title=b.title, block=b, columns=columns, rows=rows, note=b.note)


def _table_part(b: Table, result: Mapping[str, Any]) -> Part | None:
    items = (result.get("extras") or {}).get(b.key)
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        return None
    items = [i for i in items if isinstance(i, Mapping)]
    if not items:
        return None
    columns = b.columns or tuple((k, k.replace("_", " ").capitalize()) for k in items[0])
    rows = [[_cell(i.get(k)) for k, _ in columns] for i in items]
    return Part(kind="table", title=b.title, block=b, columns=[h for _, h in columns], rows=rows)


def _figures_part(kind: str, b: Block, slots: tuple[str, ...], figures: Sequence[Figure]) -> Part | None:
    chosen = [f for f in figures if not slots or f.slot in slots]
    if slots:
        chosen.sort(key=lambda f: slots.index(f.slot))
    if not chosen:
        return None
    return Part(kind=kind, title=b.title, block=b, figures=chosen, slots=slots)


def resolve_blocks(
    blocks: Sequence[Block],
    *,
    result: Mapping[str, Any],
    findings: Sequence[Any] = (),
    measurements: Sequence[Any] = (),
    figures: Sequence[Figure] = (),
) -> list[Part]:
    """The parts of one analyzer's section, in the order of its blocks.

    Args:
        blocks: the contract's render blocks (:func:`analyzer_blocks`).
        result: the stored result (``AnalysisResult`` as JSON: ``band``, ``tier``, ``proxies``, ``extras``,
            ``explanation``...).
        findings: this analyzer's findings (objects with ``code``, ``name`` or ``label``, ``probability``,
            ``threshold``, ``positive``, ``tier``, optional ``input_name``): store rows or report values.
        measurements: this analyzer's measurements.
        figures: this analyzer's explanation maps that have a picture.

    Returns:
        One :class:`Part` per block that has something to show.
    """
    claimed = _claimed_codes(blocks)
    names = {str(f.code): _name(f) for f in findings}
    figures = [replace(f, label=f.label or names.get(f.target, "")) for f in figures]
    parts: list[Part | None] = []
    for b in blocks:
        if isinstance(b, Summary):
            extras = result.get("extras") or {}
            values = {f: result.get(f) if result.get(f) not in (None, "") else extras.get(f) for f in b.fields}
            badges = [
                Badge(
                    f,
                    _FIELD_LABELS.get(f, f.replace("_", " ").capitalize()),
                    _cell(v),
                    b.glossary.get(f),
                    str(extras[f"{f}_definition"]) if extras.get(f"{f}_definition") else None,
                )
                for f, v in values.items()
                if v not in (None, "") and not isinstance(v, Mapping | list)
            ]
            parts.append(Part(kind="summary", title=b.title, block=b, badges=badges) if badges else None)
        elif isinstance(b, Findings):
            parts.append(_findings_part(b, findings, claimed))
        elif isinstance(b, Classes):
            parts.append(_classes_part(b, findings, result))
        elif isinstance(b, Scores):
            parts.append(_scores_part(b, result))
        elif isinstance(b, Measurements):
            parts.append(
                Part(kind="measurements", title=b.title, block=b, measurements=list(measurements))
                if measurements
                else None
            )
        elif isinstance(b, Overlays):
            parts.append(_figures_part("overlays", b, b.slots, figures))
        elif isinstance(b, EcgAttribution):
            parts.append(_figures_part("ecg_attribution", b, (b.slot,), figures))
        elif isinstance(b, ThreePanel):
            parts.append(_figures_part("three_panel", b, (b.slot,) if b.slot else (), figures))
        elif isinstance(b, Table):
            parts.append(_table_part(b, result))
        elif isinstance(b, Narrative):
            text = result.get("explanation") if b.key == "explanation" else (result.get("extras") or {}).get(b.key)
            parts.append(Part(kind="narrative", title=b.title, block=b, text=str(text)) if text else None)
        else:
            logger.warning("render block kind %r has no renderer; skipped", b.kind)
    return [p for p in parts if p is not None]
