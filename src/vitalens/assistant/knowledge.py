"""The bundled knowledge base: hand-written pages (``data/kb/*.md``) and passages generated from the code's own
constants (the proxy formulas and bands, the ECG tier edges, the interval reference ranges).

Why generate the numbers: the assistant must never quote a formula or a range that the product does not compute; read
from ``vitalens.risk`` they cannot drift from what the analyzers do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from functools import lru_cache
from importlib import resources

from vitalens.assistant._types import Passage, PassageKind

__all__ = ["knowledge_passages", "knowledge_version", "parse_kb_page"]

logger = logging.getLogger(__name__)

_SECTION = re.compile(r"^## (.+)$", re.MULTILINE)
_SOURCES = re.compile(r"^Sources?:\s*(.+)$", re.MULTILINE)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_kb_page(page: str, markdown: str) -> list[Passage]:
    """Split one page at its ``## `` headings; each section's ``Sources:`` line becomes its citation.

    Raises:
        ValueError: a section without a ``Sources:`` line (every knowledge passage must cite its sources).
    """
    heads = list(_SECTION.finditer(markdown))
    passages = []
    for i, head in enumerate(heads):
        body = markdown[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(markdown)].strip()
        sources = _SOURCES.search(body)
        if sources is None:
            raise ValueError(f"knowledge page {page}: section '{head.group(1)}' has no 'Sources:' line")
        text = " ".join(_SOURCES.sub("", body).split())
        title = head.group(1).strip()
        passages.append(
            Passage(
                id=f"kb:{page}#{_slug(title)}",
                kind=PassageKind.KNOWLEDGE,
                title=title,
                text=text,
                source=sources.group(1).strip(),
                anchor=f"/knowledge#{page}-{_slug(title)}",
            )
        )
    return passages


def _range_text(low: float | None, high: float | None) -> str:
    """``"120 to 200"``, or one side only (``"up to 110"``) for a one-sided reference range."""
    if low is None:
        return f"up to {high:g}"
    if high is None:
        return f"from {low:g}"
    return f"{low:g} to {high:g}"


def _generated() -> list[Passage]:
    from vitalens.risk.cardio import BAND_LOW_MAX, BAND_MEDIUM_MAX, OVERALL_WEIGHTS, PROXY_WEIGHTS
    from vitalens.risk.ecg_intervals import REFERENCE_RANGES
    from vitalens.risk.ecg_tiers import DEFAULT_TIER_EDGES

    names = {"H": "P(hypertensive retinopathy)", "D": "P(diabetic retinopathy)", "A": "P(AMD)"}
    formulas = "; ".join(
        f"{proxy} = " + " + ".join(f"{w:g}·{names[k]}" for k, w in weights.items())
        for proxy, weights in PROXY_WEIGHTS.items()
    )
    overall = " + ".join(f"{w:g}·{k}" for k, w in OVERALL_WEIGHTS.items())
    low, high = DEFAULT_TIER_EDGES
    ranges = "; ".join(f"{name}: {_range_text(lo, hi)} ({why})" for name, (lo, hi, why) in REFERENCE_RANGES.items())
    code = "vitalens source code"
    return [
        Passage(
            id="kb:formulas#cardio-proxies",
            kind=PassageKind.KNOWLEDGE,
            title="The eyes-to-heart proxies and their band",
            text=(
                f"The fundus analyzer combines calibrated probabilities into cardiovascular proxies: {formulas}. "
                f"The overall score is {overall}. Band: Low when overall ≤ {BAND_LOW_MAX:g}, Medium when "
                f"≤ {BAND_MEDIUM_MAX:g}, High above. These are retinal screening proxies, not a validated "
                "cardiovascular risk score such as QRISK3 or SCORE2, which need blood pressure, lipids and history."
            ),
            source=f"{code}: vitalens/risk/cardio.py; Wong & Mitchell, Lancet 2004; Poplin et al., Nat Biomed Eng 2018",
            anchor="/knowledge#formulas-cardio-proxies",
        ),
        Passage(
            id="kb:formulas#ecg-tiers",
            kind=PassageKind.KNOWLEDGE,
            title="ECG risk tiers",
            text=(
                "Each ECG superclass probability is placed in a tier: Low below "
                f"{low:g}, High from {high:g}, Moderate in between (unless the model card gives other edges). A "
                "finding at or above its decision threshold is never Low: it is at least Moderate, because the "
                "threshold can sit below the Low edge when it is chosen for high sensitivity (MI: 95 %)."
            ),
            source=f"{code}: vitalens/risk/ecg_tiers.py",
            anchor="/knowledge#formulas-ecg-tiers",
        ),
        Passage(
            id="kb:formulas#interval-ranges",
            kind=PassageKind.KNOWLEDGE,
            title="ECG interval reference ranges",
            text=(
                f"Reference ranges the interval analyzer flags against: {ranges}. QT is corrected by Bazett "
                "(QT/√RR) and Fridericia (QT/∛RR) with RR in seconds."
            ),
            source=(
                f"{code}: vitalens/risk/ecg_intervals.py; AHA/ACCF/HRS 2009 ECG standardization recommendations "
                "(Surawicz et al., Circulation 119:e235; Rautaharju et al., Circulation 119:e241); Bazett 1920; "
                "Fridericia 1920; ESC 2015 ventricular arrhythmia guidelines"
            ),
            anchor="/knowledge#formulas-interval-ranges",
        ),
    ]


@lru_cache(maxsize=1)
def knowledge_passages() -> tuple[Passage, ...]:
    """Every knowledge passage: the bundled pages, then the generated ones."""
    folder = resources.files("vitalens.assistant").joinpath("data", "kb")
    passages: list[Passage] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            passages.extend(parse_kb_page(entry.name.removesuffix(".md"), entry.read_text(encoding="utf-8")))
    passages.extend(_generated())
    logger.debug("knowledge base: %d passages", len(passages))
    return tuple(passages)


def knowledge_version() -> str:
    """Hash of every passage (ids and texts): changes whenever the knowledge base does."""
    digest = hashlib.sha256()
    for p in knowledge_passages():
        digest.update(p.id.encode() + b"\0" + p.text.encode() + b"\0")
    return digest.hexdigest()[:12]
