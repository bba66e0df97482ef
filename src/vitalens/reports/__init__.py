"""Reports: the PDF a clinician signs and the FHIR DiagnosticReport an EHR reads, from one value model."""

from __future__ import annotations

from vitalens.reports._model import (
    ReportAnalysis,
    ReportAnnotation,
    ReportFigure,
    ReportFinding,
    ReportImage,
    ReportInput,
    ReportSignoff,
    ReportVersion,
    StudyReport,
)
from vitalens.reports.fhir import build_diagnostic_report
from vitalens.reports.pdf import build_study_report

__all__ = [
    "ReportAnalysis",
    "ReportAnnotation",
    "ReportFigure",
    "ReportFinding",
    "ReportImage",
    "ReportInput",
    "ReportSignoff",
    "ReportVersion",
    "StudyReport",
    "build_diagnostic_report",
    "build_study_report",
]
