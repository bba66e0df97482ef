"""Standard code systems and the few codes vitalens's own analyzers use (LOINC, SNOMED CT, UCUM).

Why one small module: the FHIR and DICOM exporters must name each terminology the same way (a FHIR ``system`` URI
and the matching DICOM coding-scheme designator), and analyzers need ready-made :class:`~vitalens.domain.Coding`
values. Codes here were checked against DICOM PS3.16's SNOMED CT subset (as shipped in pydicom) or the published
LOINC ECG codes; a finding without a standard code keeps only its label (exporters code it in the analyzer's own
code system), never a guessed code.
"""

from __future__ import annotations

import logging

from vitalens.domain import Coding

__all__ = [
    "LOINC",
    "SNOMED",
    "UCUM",
    "DICOM_SCHEME",
    "VITALENS_SYSTEM",
    "loinc",
    "snomed",
    "local_system",
]

logger = logging.getLogger(__name__)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
#: The base of vitalens's own code systems (one per analyzer: ``<base>/<analyzer>``).
VITALENS_SYSTEM = "https://vitalens.invalid/fhir/CodeSystem"

#: FHIR system URI → DICOM coding scheme designator (PS3.16 Table 8-1).
DICOM_SCHEME: dict[str, str] = {LOINC: "LN", SNOMED: "SCT", UCUM: "UCUM"}


def loinc(code: str, display: str) -> Coding:
    return Coding(system=LOINC, code=code, display=display)


def snomed(code: str, display: str) -> Coding:
    return Coding(system=SNOMED, code=code, display=display)


def local_system(analyzer: str) -> str:
    """The code system of one analyzer's own labels (``https://vitalens.invalid/fhir/CodeSystem/fundus.odir``)."""
    return f"{VITALENS_SYSTEM}/{analyzer}"
