"""Parsing untrusted ECG XML (HL7 aECG, GE MUSE) without entity-expansion or external-entity risks.

Why a guard: uploads come from outside. The standard library parser never fetches external DTDs or
entities, and we additionally refuse any document that declares entities (``<!ENTITY``), which no real
aECG or MUSE export does, so "billion laughs" style payloads are rejected before parsing.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vitalens.errors import InputError

__all__ = ["parse_xml", "sniff_xml_kind", "local_name"]

logger = logging.getLogger(__name__)

_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def parse_xml(path: Path, *, what: str) -> ET.Element:
    """Root element of the XML file at ``path``; entity declarations and malformed XML raise ``InputError``."""
    data = Path(path).read_bytes()
    if _ENTITY.search(data):
        raise InputError(f"{what} XML declares entities (<!ENTITY>); refused for safety", field="ecg")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{what} file is not well-formed XML: {exc}", field="ecg") from exc


def local_name(tag: str) -> str:
    """Tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def sniff_xml_kind(head: bytes) -> str | None:
    """``"muse"`` for a GE MUSE RestingECG, ``"aecg"`` for an HL7 AnnotatedECG, else ``None`` (first KBs)."""
    if re.search(rb"<\s*RestingECG[\s>]", head):
        return "muse"
    if re.search(rb"<\s*(?:\w+:)?AnnotatedECG[\s>]", head):
        return "aecg"
    return None
