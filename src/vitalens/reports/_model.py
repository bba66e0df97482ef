"""What a study report contains, as plain pydantic values (no database, no ReportLab).

Why a model of its own: the PDF and the FHIR builders must print exactly what the service stored, and tests
must be able to render a report without a database. ``vitalens.service.ops.reports`` fills a
:class:`StudyReport` from the store; the builders only format it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.domain import Coding, Measurement, QualityResult, utcnow

__all__ = [
    "ReportImage",
    "ReportFigure",
    "ReportInput",
    "ReportFinding",
    "ReportAnalysis",
    "ReportAnnotation",
    "ReportSignoff",
    "ReportVersion",
    "StudyReport",
]

logger = logging.getLogger(__name__)


class ReportImage(BaseModel):
    """One picture of the report: an input thumbnail or an explanation overlay (PNG/JPEG bytes)."""

    title: str
    data: bytes = Field(repr=False)
    caption: str = ""


class ReportFigure(BaseModel):
    """One explanation map of an analyzer, drawn where its contract's render blocks put it."""

    slot: str = Field(description="The input slot the map is in the coordinates of.")
    target: str
    method: str
    image: ReportImage
    original: ReportImage | None = Field(default=None, description="The input image (three-panel views).")
    heat: ReportImage | None = Field(default=None, description="The map alone (three-panel views).")


class ReportInput(BaseModel):
    """One input of the study with its explanation overlays."""

    name: str = Field(description="Input slot, e.g. 'fundus_left' or 'ecg'.")
    kind: str = Field(description="What the input is, e.g. 'image/jpeg 2124x2056' or 'ECG 12 leads, 500 Hz'.")
    image: ReportImage | None = None
    overlays: list[ReportImage] = Field(default_factory=list)


class ReportFinding(BaseModel):
    """One finding with the clinician's review of it (``review`` is None while unreviewed)."""

    code: str
    name: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float | None = None
    positive: bool
    tier: str | None = None
    review: str | None = Field(default=None, description="'confirmed' or 'corrected' by the clinician.")
    corrected_positive: bool | None = None
    review_note: str | None = None
    codes: list[Coding] = Field(default_factory=list, description="Standard codes the analyzer gave the finding.")
    input_name: str | None = Field(default=None, description="The input slot it concerns (per-eye analyzers).")

    @property
    def final_positive(self) -> bool:
        """Positive as the clinician left it: the correction when corrected, else the model's call."""
        if self.review == "corrected" and self.corrected_positive is not None:
            return self.corrected_positive
        return self.positive


class ReportAnalysis(BaseModel):
    """One analyzer's result as stored: the model that produced it and what it found."""

    analyzer: str
    title: str = Field(default="", description="The analyzer's human title (its contract's); its name when empty.")
    status: str = "COMPLETE"
    model_name: str | None = None
    model_version: str | None = None
    demonstration: bool = True
    trained_on: str | None = None
    band: str | None = None
    tier: str | None = None
    proxies: dict[str, float] = Field(default_factory=dict)
    explanation: str = ""
    findings: list[ReportFinding] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why this analyzer failed (PARTIAL analyses).")
    quality: list[QualityResult] = Field(
        default_factory=list, description="The input quality gates' verdicts (pass / flag / refuse) before it ran."
    )
    warnings: list[str] = Field(default_factory=list, description="What the reader must know beside the findings.")
    extras: dict[str, Any] = Field(
        default_factory=dict, description="The result's extras the render blocks read (tables, scores, grades)."
    )
    figures: list[ReportFigure] = Field(default_factory=list, description="Its explanation maps with pictures.")


class ReportAnnotation(BaseModel):
    """A clinician's region annotation on an input."""

    input_name: str
    kind: str = Field(description="'box', 'polygon' or 'brush'.")
    label: str
    note: str | None = None
    author: str | None = None
    version: int = 1


class ReportVersion(BaseModel):
    """An earlier signed version of the report (the amendment history printed on an amended report)."""

    version: int
    clinician: str
    signed_at: datetime
    reason: str | None = Field(default=None, description="Why this version amended the one before it.")


class ReportSignoff(BaseModel):
    """Who signed the study off, when, with which note, after reviewing how many findings."""

    clinician: str
    signed_at: datetime
    note: str | None = None
    amends: str | None = Field(default=None, description="Id of the signed report this one amends (replaces).")
    version: int = Field(default=1, ge=1, description="1 for the first sign-off, +1 for each amendment.")
    amendment_reason: str | None = Field(default=None, description="Why this version amends the previous one.")
    finding_count: int | None = Field(default=None, ge=0, description="Findings in the signed analysis.")
    reviewed_count: int | None = Field(default=None, ge=0, description="Of those, reviewed by a clinician.")
    history: list[ReportVersion] = Field(default_factory=list, description="Earlier signed versions, oldest first.")


class StudyReport(BaseModel):
    """Everything the PDF and the FHIR DiagnosticReport say about one study."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    study_id: str
    pseudonym: str = Field(description="The patient's pseudonym; reports never carry a name.")
    site: str | None = None
    study_created_at: datetime | None = None
    study_date: date | None = None
    generated_at: datetime = Field(default_factory=utcnow)
    age_years: float | None = None
    sex: str | None = None
    inputs: list[ReportInput] = Field(default_factory=list)
    analyses: list[ReportAnalysis] = Field(default_factory=list)
    annotations: list[ReportAnnotation] = Field(default_factory=list)
    signoff: ReportSignoff | None = None
    narrative: str = Field(default="", description="The narrative paragraph (templates over the stored findings).")
    clinician_note: str = Field(default="", description="The clinician's free-text note of the study, verbatim.")
    notice: str = DECISION_SUPPORT_NOTICE

    @property
    def status(self) -> str:
        """``preliminary`` until signed, ``final`` once signed, ``amended`` when a signed report replaced another.

        Every exporter (FHIR, DICOM SR) reads this, so the statuses follow sign-off and amendment in one place.
        """
        if self.signoff is None:
            return "preliminary"
        return "amended" if self.signoff.amends else "final"

    @property
    def any_demonstration(self) -> bool:
        """True when any model behind the report is a demonstration model (not for clinical use)."""
        return any(a.demonstration for a in self.analyses)
