"""The JSON document of one analysis, laid out by the analyzer's contract: what ``POST /api/v1/predict/{analyzer}``
and ``vitalens analyze NAME --json`` return.

Why from the contract: the API and the CLI must not know any analyzer. The document has the same top-level fields
for every analyzer (provenance, findings, measurements, scores, maps, warnings, the decision-support notice) and a
``sections`` list with one entry per render block of the contract (:mod:`vitalens.analyzers._contract`), holding
the data that block draws on the results page — so a client can lay the answer out as the web page does. Nothing is
invented: a field the result does not have is ``null`` or empty, never a default number.

Example:
    >>> from vitalens.analyzers import get_contract
    >>> doc = result_document(get_contract("fundus.odir"), result)  # doctest: +SKIP
    >>> [s["kind"] for s in doc["sections"]]  # doctest: +SKIP
    ['summary', 'findings', 'scores', 'overlays', 'narrative']
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

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
)

if TYPE_CHECKING:
    from vitalens.analyzers._contract import AnalyzerContract
    from vitalens.domain import AnalysisResult, Explanation, Finding

__all__ = ["result_document", "attribution_summary", "finding_key", "json_extras"]

logger = logging.getLogger(__name__)

#: Longest list kept in ``extras`` of the document (maps and traces are arrays of thousands: they have their own
#: fields, ``explanations`` and the ECG section).
_MAX_EXTRA_ITEMS = 64


def finding_key(finding: Finding, findings: Iterable[Finding]) -> str:
    """The key of a finding in ``probabilities``: its code, or ``slot:code`` when another input has the same code
    (an analyzer that runs on each eye reports ``fundus_left:2`` and ``fundus_right:2``)."""
    same = sum(1 for f in findings if f.code == finding.code)
    return f"{finding.input_name}:{finding.code}" if same > 1 and finding.input_name else finding.code


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "name": f.name,
        "probability": f.probability,
        "threshold": f.threshold,
        "positive": f.positive,
        "calibrated": f.calibrated,
        "tier": f.tier.value if f.tier is not None else None,
        "input": f.input_name,
    }


def _explanation(e: Explanation, images: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"target": e.target, "input": e.input_name, "method": e.method, "note": e.note}
    if images:
        entry["overlay_png_base64"] = base64.b64encode(e.overlay_png).decode() if e.overlay_png else None
    return entry


def _small(value: Any, depth: int = 0) -> bool:
    """True for JSON values small enough to travel in ``extras`` (no arrays of samples or pixels)."""
    if value is None or isinstance(value, bool | str):
        return not isinstance(value, str) or len(value) <= 2000
    if isinstance(value, int | float):
        return math.isfinite(float(value))
    if depth >= 3:
        return False
    if isinstance(value, list | tuple):
        return len(value) <= _MAX_EXTRA_ITEMS and all(_small(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return len(value) <= _MAX_EXTRA_ITEMS and all(
            isinstance(k, str) and _small(v, depth + 1) for k, v in value.items()
        )
    return False


def json_extras(result: AnalysisResult) -> dict[str, Any]:
    """The result's ``extras`` that are small JSON values (tier edges, the explanation method, an expected grade);
    arrays are left out (they are in ``explanations`` and the sections)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.extras.items() if _small(v)}


def attribution_summary(result: AnalysisResult, top_k: int = 3) -> dict[str, Any]:
    """Per explained class of an ECG result (``extras["attribution"]``): the leads with the most attribution and the
    time (s, on the uploaded record's axis) of the pooled peak."""
    import numpy as np

    out: dict[str, Any] = {}
    leads = result.extras.get("leads", [])
    for code, a in (result.extras.get("attribution") or {}).items():
        per_lead = np.asarray(a["per_lead"], dtype=float)
        pooled = np.asarray(a["pooled"], dtype=float)
        order = np.argsort(-per_lead.sum(axis=1))[:top_k]
        rows = list(a.get("leads") or leads)
        out[code] = {
            "method": a.get("method"),
            "top_leads": [rows[i] for i in order] if rows else [int(i) for i in order],
            "peak_time_s": round(float(pooled.argmax()) * float(a["bin_s"]), 2),
        }
    return out


# -- one function per block kind: the data that block draws -------------------------------------------------------
def _claimed_codes(blocks: Iterable[Block]) -> set[str]:
    claimed: set[str] = set()
    for b in blocks:
        codes = getattr(b, "codes", None)
        if isinstance(b, Findings | Classes) and codes:
            claimed.update(codes)
    return claimed


def _summary(block: Summary, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in block.fields:
        value = getattr(result, name, None) if name in ("band", "tier") else result.extras.get(name)
        values[name] = getattr(value, "value", value) if _small(getattr(value, "value", value)) else None
    return {"fields": values, "glossary": dict(block.glossary)}


def _findings(block: Findings, result: AnalysisResult, claimed: set[str], **_: Any) -> dict[str, Any]:
    if block.codes is not None:
        chosen = [f for f in result.findings if f.code in block.codes]
    else:
        chosen = [f for f in result.findings if f.code not in claimed]
    return {"findings": [_finding(f) for f in chosen], "normal": block.normal, "tiers": block.tiers}


def _classes(block: Classes, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    chosen = [f for f in result.findings if block.codes is None or f.code in block.codes]
    by_input: dict[str | None, list[Finding]] = {}
    for f in chosen:
        by_input.setdefault(f.input_name, []).append(f)
    groups = []
    for slot, group in by_input.items():
        top = max(group, key=lambda f: f.probability) if group else None
        groups.append(
            {
                "input": slot,
                "classes": [{"code": f.code, "name": f.name, "probability": f.probability} for f in group],
                "most_probable": top.code if top is not None else None,
            }
        )
    expected = result.extras.get(block.expected_key) if block.expected_key else None
    return {"groups": groups, "ordered": block.ordered, "expected": expected if _small(expected) else None}


def _scores(block: Scores, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    source = result.proxies if block.key == "proxies" else result.extras.get(block.key) or {}
    scores = [
        {"key": k, "name": block.names.get(k, k), "value": float(v), "formula": block.formulas.get(k)}
        for k, v in (source.items() if isinstance(source, dict) else ())
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return {"scores": scores, "note": block.note}


def _measurements(block: Measurements, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    return {"measurements": [m.model_dump(mode="json") for m in result.measurements]}


def _maps(slots: Iterable[str], result: AnalysisResult, images: bool) -> list[dict[str, Any]]:
    wanted = set(slots)
    return [_explanation(e, images) for e in result.explanations if not wanted or e.input_name in wanted]


def _overlays(block: Overlays, result: AnalysisResult, images: bool, **_: Any) -> dict[str, Any]:
    return {"slots": list(block.slots), "maps": _maps(block.slots, result, images)}


def _three_panel(block: ThreePanel, result: AnalysisResult, images: bool, **_: Any) -> dict[str, Any]:
    slot = getattr(block, "slot", "")
    return {"slot": slot, "maps": _maps((slot,) if slot else (), result, images)}


def _ecg(block: EcgAttribution, result: AnalysisResult, images: bool, **_: Any) -> dict[str, Any]:
    return {
        "slot": block.slot,
        "method": result.extras.get("explanation_method"),
        "attribution": attribution_summary(result),
        "maps": _maps((block.slot,), result, images),
    }


def _table(block: Table, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    rows = result.extras.get(block.key) or []
    columns = [list(c) for c in block.columns]
    keys = [c[0] for c in block.columns]
    picked = [{k: r.get(k) for k in keys} for r in rows if isinstance(r, dict)] if keys else []
    return {"columns": columns, "rows": [r for r in picked if _small(r)]}


def _narrative(block: Narrative, result: AnalysisResult, **_: Any) -> dict[str, Any]:
    text = result.explanation if block.key == "explanation" else result.extras.get(block.key)
    return {"text": text if isinstance(text, str) else None}


_SECTIONS: list[tuple[type[Block], Callable[..., dict[str, Any]]]] = [
    (Summary, _summary),
    (Findings, _findings),
    (Classes, _classes),
    (Scores, _scores),
    (Measurements, _measurements),
    (Overlays, _overlays),
    (ThreePanel, _three_panel),
    (EcgAttribution, _ecg),
    (Table, _table),  # Entities is a Table
    (Narrative, _narrative),
]


def _section(block: Block, result: AnalysisResult, claimed: set[str], images: bool) -> dict[str, Any]:
    head = {"kind": block.kind, "title": block.title}
    for kind, draw in _SECTIONS:
        if isinstance(block, kind):
            return {**head, **draw(block, result, claimed=claimed, images=images)}
    logger.warning("no JSON layout for render block %s; the section is left empty", block.kind)
    return head


def result_document(contract: AnalyzerContract, result: AnalysisResult, *, images: bool = False) -> dict[str, Any]:
    """The JSON document of ``result`` laid out by ``contract`` (see the module docstring).

    Args:
        contract: the analyzer's contract (its title and render blocks).
        result: what the analyzer returned.
        images: include each map's overlay as ``overlay_png_base64`` (large; off unless asked).
    """
    findings = result.findings
    blocks = contract.blocks
    claimed = _claimed_codes(blocks)
    return {
        "analyzer": result.analyzer,
        "title": contract.title,
        "model": result.model.model_dump(mode="json"),
        "card": result.card,
        "trained_on": result.trained_on,
        "demonstration": result.demonstration,
        "classes": [f.code for f in findings],
        "findings": [_finding(f) for f in findings],
        "probabilities": {finding_key(f, findings): f.probability for f in findings},
        "thresholds": {finding_key(f, findings): f.threshold for f in findings},
        "positive": [finding_key(f, findings) for f in findings if f.positive],
        "calibrated": bool(findings) and all(f.calibrated for f in findings),
        "tiers": {finding_key(f, findings): f.tier.value for f in findings if f.tier is not None},
        "band": result.band.value if result.band is not None else None,
        "tier": result.tier.value if result.tier is not None else None,
        "proxies": dict(result.proxies),
        "measurements": [m.model_dump(mode="json") for m in result.measurements],
        "explanation": result.explanation,
        "explanations": [_explanation(e, images) for e in result.explanations],
        "quality": [q.model_dump(mode="json") for q in result.quality],
        "extras": json_extras(result),
        "sections": [_section(b, result, claimed, images) for b in blocks],
        "warnings": list(result.warnings),
        "decision_support_notice": result.decision_support_notice,
    }
