"""Parsing untrusted ECG XML (HL7 aECG, GE MUSE) without entity-expansion or external-entity risks.

Why defusedxml: uploads come from outside. A regex for ``<!ENTITY`` on the raw bytes is evaded by any encoding
that does not spell ASCII bytes (UTF-16, UTF-32); ``defusedxml`` refuses entity declarations, external entities
and DTD tricks inside the parser, after decoding, whatever the encoding. No real aECG or MUSE export declares
entities. Sniffing the kind of document decodes the first bytes by their byte-order mark first, so a UTF-16 MUSE
export is recognised like a UTF-8 one.
"""

from __future__ import annotations

import codecs
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vitalens.errors import InputError

__all__ = ["parse_xml", "sniff_xml_kind", "local_name", "decode_xml_head"]

logger = logging.getLogger(__name__)

#: Byte-order marks → codec, longest first (UTF-32 LE starts with the UTF-16 LE mark).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_xml_head(head: bytes) -> str:
    """The first bytes of an XML file as text: by byte-order mark, by the ``<?`` pattern of UTF-16 without one,
    else as UTF-8 (undecodable bytes replaced, since this only sniffs)."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="replace")
    if head.startswith(b"<\x00?\x00"):
        return head.decode("utf-16-le", errors="replace")
    if head.startswith(b"\x00<\x00?"):
        return head.decode("utf-16-be", errors="replace")
    return head.decode("utf-8", errors="replace")


def parse_xml(path: Path, *, what: str) -> ET.Element:
    """Root element of the XML file at ``path``.

    Raises:
        InputError: the document declares entities or a DTD that defusedxml forbids, or is not well-formed.
    """
    import defusedxml
    import defusedxml.ElementTree as SafeET

    data = Path(path).read_bytes()
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise InputError(
            f"{what} XML declares entities or external references; refused for safety ({exc})", field="ecg"
        ) from exc
    except (ET.ParseError, ValueError, LookupError) as exc:  # LookupError: an unknown declared encoding
        raise InputError(f"{what} file is not well-formed XML: {exc}", field="ecg") from exc
    return root


def local_name(tag: str) -> str:
    """Tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def sniff_xml_kind(head: bytes) -> str | None:
    """``"muse"`` for a GE MUSE RestingECG, ``"aecg"`` for an HL7 AnnotatedECG, else ``None`` (first KBs, any
    Unicode encoding)."""
    text = decode_xml_head(head)
    if re.search(r"<\s*RestingECG[\s>]", text):
        return "muse"
    if re.search(r"<\s*(?:\w+:)?AnnotatedECG[\s>]", text):
        return "aecg"
    return None
