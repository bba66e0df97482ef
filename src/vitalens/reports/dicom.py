"""Results out as DICOM: the signed report as Encapsulated PDF, and the findings as a Structured Report.

Why both: a PACS shows the Encapsulated PDF to a reader as the report that was signed (byte for byte), and stores
the Structured Report as machine-readable results — the IHE AI Results idea: which algorithm (name and version)
produced which finding, with what probability, and what a clinician made of it. The SR is a TID 1500 Measurement
Report built with highdicom (one measurement group per analyzer, the model as its Algorithm Identification, each
finding as a qualitative evaluation Present/Absent with its probability, each measurement with its LOINC concept
and UCUM unit where the analyzer coded them); the decision-support notice travels as a Comment.

Identity: both objects join the study the images came from (its Study Instance UID when the inputs were DICOM,
else a UID derived from the study id) and name the patient by the site's pseudonym, as the stored inputs do.
Flags follow the report: an unsigned report gives a PARTIAL, UNVERIFIED SR; a signed one COMPLETE and VERIFIED by
the signer (the EPDF exists only for signed reports).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from vitalens import __version__
from vitalens.reports._model import ReportAnalysis, StudyReport
from vitalens.terminology import DICOM_SCHEME

__all__ = [
    "ENCAPSULATED_PDF_SOP_CLASS",
    "LOCAL_SCHEME",
    "build_encapsulated_pdf",
    "build_structured_report",
    "identity_dataset",
    "study_instance_uid",
]

logger = logging.getLogger(__name__)

ENCAPSULATED_PDF_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"
#: Private coding scheme of vitalens's own labels (PS3.16: local schemes start with "99").
LOCAL_SCHEME = "99VTL"
_SEX = {"female": "F", "male": "M", "other": "O"}


def study_instance_uid(study_id: str) -> str:
    """A stable Study Instance UID for a study that came without DICOM inputs (derived from its id)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["vitalens-study", study_id]))


def identity_dataset(report: StudyReport, *, source: Any | None = None) -> Any:
    """The patient and study attributes both objects carry: from a received DICOM input when there is one
    (its de-identified copy: the pseudonym and the original Study Instance UID), else from the report."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.PatientID = report.pseudonym
    ds.PatientName = f"{report.pseudonym}^"  # one family-name component, said so with the trailing caret
    ds.PatientBirthDate = ""
    ds.PatientSex = _SEX.get(report.sex or "", "")
    day = report.study_date or (report.study_created_at or report.generated_at).date()
    ds.StudyDate = day.strftime("%Y%m%d")
    ds.StudyTime = report.study_created_at.strftime("%H%M%S") if report.study_created_at else ""
    ds.StudyInstanceUID = study_instance_uid(report.study_id)
    ds.StudyID = report.study_id[:16]
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    if source is not None:
        for keyword in ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber"):
            if source.get(keyword):
                setattr(ds, keyword, source.get(keyword))
    # highdicom reads the patient/study modules from its evidence; a stand-in instance carries them.
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    return ds


def _concept(coding: Any | None, *, local_code: str, local_meaning: str, analyzer: str) -> Any:
    from highdicom.sr import CodedConcept

    if coding is not None and coding.system in DICOM_SCHEME:
        return CodedConcept(
            value=coding.code, scheme_designator=DICOM_SCHEME[coding.system], meaning=coding.display or local_meaning
        )
    return CodedConcept(
        value=local_code[:16], scheme_designator=LOCAL_SCHEME, meaning=local_meaning[:64], scheme_version=analyzer
    )


def _group(analysis: ReportAnalysis, index: int) -> Any:
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from vitalens.reports.sections import finding_value

    algorithm = hd.sr.AlgorithmIdentification(
        name=(analysis.model_name or analysis.analyzer)[:64],
        version=(analysis.model_version or "unversioned")[:64],
        manufacturer="vitalens",
    )
    probability_unit = CodedConcept(value="1", scheme_designator="UCUM", meaning="no units")
    evaluations = []
    measurements = []
    for f in analysis.findings:
        standard = next((c for c in f.codes if c.system in DICOM_SCHEME), None)
        concept = _concept(standard, local_code=f.code, local_meaning=f.name, analyzer=analysis.analyzer)
        evaluations.append(
            hd.sr.QualitativeEvaluation(name=concept, value=codes.SCT.Present if f.final_positive else codes.SCT.Absent)
        )
        measurements.append(
            hd.sr.Measurement(
                name=CodedConcept(
                    value=f"P-{f.code}"[:16],
                    scheme_designator=LOCAL_SCHEME,
                    meaning=f"{finding_value(analysis.analyzer, f.code)} of {f.name}"[:64],
                    scheme_version=analysis.analyzer,
                ),
                value=float(round(f.probability, 6)),
                unit=probability_unit,
                algorithm_id=algorithm,
            )
        )
    for m_index, m in enumerate(analysis.measurements):
        if m.value is None:
            continue
        unit_code = m.unit_ucum or "1"
        measurements.append(
            hd.sr.Measurement(
                name=_concept(m.code, local_code=f"M{m_index}", local_meaning=m.name, analyzer=analysis.analyzer),
                value=float(m.value),
                unit=CodedConcept(value=unit_code, scheme_designator="UCUM", meaning=m.unit or unit_code),
                algorithm_id=algorithm,
            )
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{analysis.analyzer} #{index}"),
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
    )


def build_structured_report(
    report: StudyReport,
    *,
    evidence: Sequence[Any] = (),
    site: str | None = None,
    series_number: int = 901,
) -> Any:
    """The TID 1500 Comprehensive SR of ``report`` (a pydicom ``Dataset`` subclass, ready to save).

    Args:
        report: the study report values.
        evidence: the received DICOM instances the analyses read (their de-identified copies), referenced as
            evidence; none when the inputs were not DICOM.
        site: the verifying organisation (the signer's site) for a signed report.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["vitalens-device", __version__]),
        name="vitalens",
        manufacturer_name="vitalens",
        model_name="vitalens",
        serial_number=__version__,
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    groups = [_group(a, i) for i, a in enumerate(report.analyses) if a.findings or a.measurements]
    content = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups or None,
        title=codes.DCM.ImagingMeasurementReport,
    )
    root = content[0]
    root.ContentSequence.append(
        hd.sr.TextContentItem(
            name=codes.DCM.Comment,
            value=(report.signoff.note + " — " if report.signoff and report.signoff.note else "") + report.notice,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    real_evidence = list(evidence)
    sources = real_evidence or [identity_dataset(report)]
    signed = report.signoff is not None
    sr = hd.sr.ComprehensiveSR(
        evidence=sources,
        content=root,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="vitalens",
        is_complete=signed,
        is_final=signed,
        is_verified=signed,
        verifying_observer_name=report.signoff.clinician.replace(" ", "^") if signed else None,  # type: ignore[union-attr]
        verifying_organization=(site or "vitalens site") if signed else None,
        record_evidence=bool(real_evidence),
        series_description="vitalens AI results (decision support)",
        manufacturer_model_name="vitalens",
        software_versions=__version__,
    )
    from pydicom.dataset import Dataset

    scheme = Dataset()
    scheme.CodingSchemeDesignator = LOCAL_SCHEME
    scheme.CodingSchemeName = "vitalens analyzer labels (version = analyzer name)"
    scheme.CodingSchemeResponsibleOrganization = "vitalens"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def build_encapsulated_pdf(
    report: StudyReport, pdf: bytes, *, source: Any | None = None, series_number: int = 900
) -> Any:
    """The signed PDF as an Encapsulated PDF Storage instance (pydicom ``FileDataset``-like ``Dataset``).

    Raises:
        ValueError: the report is not signed (only what a clinician signed goes to the PACS as the report).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    if report.signoff is None:
        raise ValueError("only a signed report is exported as Encapsulated PDF")
    ident = identity_dataset(report, source=source)
    ds = Dataset()
    for keyword in (
        "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
        "StudyID", "AccessionNumber", "ReferringPhysicianName",
    ):  # fmt: skip
        setattr(ds, keyword, ident.get(keyword))
    now = report.signoff.signed_at.astimezone(UTC) if report.signoff.signed_at else datetime.now(UTC)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "vitalens signed report (decision support)"
    ds.InstanceNumber = 1
    ds.Manufacturer = "vitalens"
    ds.ManufacturerModelName = "vitalens"
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "vitalens screening report (decision support, not a diagnosis)"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds
