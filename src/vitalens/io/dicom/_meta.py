"""What a DICOM image says about itself: kind of image, eye, patient age and identity, UIDs.

Why a module of its own: the upload gate, the DICOMweb receiver and the batch reader all need the same answers
from the same tags (which eye? how old was the patient on the day of the study? which PACS patient is it?), and
each answer has DICOM's usual fallbacks (image- before series-level laterality, ``PatientAge`` before the birth
date, content before study date).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from vitalens.io.ecg._common import parse_age_years, parse_sex

__all__ = [
    "DicomImageMeta",
    "DicomPatient",
    "ImageKind",
    "SOP_CLASS_KIND",
    "MODALITY_KIND",
    "completed_years",
    "image_kind",
    "image_meta",
    "laterality",
    "parse_dicom_date",
    "patient_age_years",
    "patient_of",
]

logger = logging.getLogger(__name__)

ImageKind = Literal["fundus", "oct", "cxr"]

#: Storage SOP classes that are one kind of image whatever their Modality tag says.
SOP_CLASS_KIND: dict[str, ImageKind] = {
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "fundus",  # Ophthalmic Photography 8 Bit Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "fundus",  # Ophthalmic Photography 16 Bit Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.4": "oct",  # Ophthalmic Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.1": "cxr",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1": "cxr",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1": "cxr",  # Digital X-Ray Image Storage - For Processing
}

#: Modality (0008,0060) → kind, for generic SOP classes (Secondary Capture, VL Photographic) that carry one.
MODALITY_KIND: dict[str, ImageKind] = {"OP": "fundus", "OPT": "oct", "OCT": "oct", "DX": "cxr", "CR": "cxr"}

#: Body parts (0018,0015) a chest radiograph may be labelled with.
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "TORAX"})

_LATERALITY = {"L": "left", "R": "right"}


@dataclass(frozen=True)
class DicomPatient:
    """The patient as the sending system names them; mapped to a site's patient by the receiver.

    ``issuer`` is ``IssuerOfPatientID`` (the assigning authority), which makes ``patient_id`` unique across PACSs.
    """

    patient_id: str | None
    issuer: str | None = None
    name: str | None = None
    birth_date: date | None = None
    sex: str | None = None


@dataclass(frozen=True)
class DicomImageMeta:
    """The non-identifying facts of one DICOM image that the analyses and the record keep.

    ``kind`` is the image kind the SOP class or modality implies (``None`` when neither says, e.g. a plain
    Secondary Capture); ``laterality`` the eye for ophthalmic images (``None`` when the file does not say or says
    both/unpaired); ``age_years`` the patient's age on the day of the image.
    """

    sop_class_uid: str
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    modality: str | None
    kind: ImageKind | None
    transfer_syntax_uid: str | None
    photometric: str | None
    rows: int
    columns: int
    n_frames: int
    samples_per_pixel: int
    bits_stored: int
    laterality: str | None = None
    laterality_code: str | None = None
    age_years: float | None = None
    sex: str | None = None
    study_date: date | None = None
    body_part: str | None = None
    view_position: str | None = None
    manufacturer: str | None = None
    frame_index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (dates as ISO strings), for ``Input.meta`` and API responses."""
        out = asdict(self)
        if self.study_date is not None:
            out["study_date"] = self.study_date.isoformat()
        return {k: v for k, v in out.items() if v not in (None, {}, [])}


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_dicom_date(value: Any) -> date | None:
    """A DICOM DA (``YYYYMMDD``; also the first 8 digits of a DT) as a date; ``None`` when absent or malformed."""
    text = str(value or "").strip()[:8]
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def completed_years(birth: date, on: date) -> int | None:
    """Age in completed years on ``on`` for someone born on ``birth`` (the clinical convention).

    A person born on 29 February turns a year older on 1 March in common years. Returns ``None`` when ``on`` is
    before ``birth`` (a data error, not an age).

    Example:
        >>> completed_years(date(1960, 3, 15), date(2024, 3, 14))
        63
    """
    if on < birth:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _image_date(ds: Any) -> date | None:
    """The day the image was made: content, acquisition, then study date (the first present and valid)."""
    for keyword in ("ContentDate", "AcquisitionDate", "StudyDate", "SeriesDate"):
        if (day := parse_dicom_date(ds.get(keyword))) is not None:
            return day
    if (day := parse_dicom_date(ds.get("AcquisitionDateTime"))) is not None:
        return day
    return None


def patient_age_years(ds: Any) -> float | None:
    """Age on the day of the image: ``PatientAge`` (AS, e.g. ``063Y``) else birth date → image date.

    Why both: modalities fill ``PatientAge`` unevenly; the birth date and the content date give the same number
    when it is missing. ``None`` when neither is usable.
    """
    age = parse_age_years(_text(ds, "PatientAge"))
    if age is not None:
        return age
    birth = parse_dicom_date(ds.get("PatientBirthDate"))
    day = _image_date(ds)
    if birth is None or day is None:
        return None
    years = completed_years(birth, day)
    return float(years) if years is not None and years <= 130 else None


def _frame_laterality(ds: Any) -> str | None:
    """``FrameLaterality`` of an enhanced/multi-frame object (shared groups first, then the first frame)."""
    for seq_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = ds.get(seq_name)
        if not groups:
            continue
        anatomy = groups[0].get("FrameAnatomySequence")
        if anatomy and (value := _text(anatomy[0], "FrameLaterality")):
            return value
    return None


def laterality(ds: Any) -> tuple[str | None, str | None]:
    """``(eye, code)``: ``left``/``right`` from ``ImageLaterality``, ``Laterality`` or ``FrameLaterality``.

    ``code`` is the raw value (``L``, ``R``, ``B`` both, ``U`` unpaired) so a caller can tell "both eyes in one
    image" from "not stated"; ``eye`` is ``None`` unless the code is ``L`` or ``R``.
    """
    code = _text(ds, "ImageLaterality") or _text(ds, "Laterality") or _frame_laterality(ds)
    code = code.upper() if code else None
    return _LATERALITY.get(code or ""), code


def image_kind(ds: Any) -> ImageKind | None:
    """The image kind from the SOP class, else from the modality; ``None`` when neither implies one."""
    sop = str(ds.get("SOPClassUID", ""))
    if sop in SOP_CLASS_KIND:
        return SOP_CLASS_KIND[sop]
    return MODALITY_KIND.get((_text(ds, "Modality") or "").upper())


def image_meta(ds: Any, *, frame_index: int | None = None) -> DicomImageMeta:
    """The :class:`DicomImageMeta` of a dataset read with or without its pixel data."""
    eye, code = laterality(ds)
    file_meta = getattr(ds, "file_meta", None)
    ts = str(file_meta.get("TransferSyntaxUID")) if file_meta is not None and "TransferSyntaxUID" in file_meta else None
    return DicomImageMeta(
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality"),
        kind=image_kind(ds),
        transfer_syntax_uid=ts,
        photometric=_text(ds, "PhotometricInterpretation"),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        n_frames=int(ds.get("NumberOfFrames", 1) or 1),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        bits_stored=int(ds.get("BitsStored", 8) or 8),
        laterality=eye,
        laterality_code=code,
        age_years=patient_age_years(ds),
        sex=parse_sex(_text(ds, "PatientSex")),
        study_date=parse_dicom_date(ds.get("StudyDate")),
        body_part=(_text(ds, "BodyPartExamined") or "").upper() or None,
        view_position=_text(ds, "ViewPosition"),
        manufacturer=_text(ds, "Manufacturer"),
        frame_index=frame_index,
    )


def patient_of(ds: Any) -> DicomPatient:
    """The sending system's identity of the patient (for mapping to a site's patient; never stored in meta)."""
    name = ds.get("PatientName")
    return DicomPatient(
        patient_id=_text(ds, "PatientID"),
        issuer=_text(ds, "IssuerOfPatientID"),
        name=str(name).strip() or None if name is not None else None,
        birth_date=parse_dicom_date(ds.get("PatientBirthDate")),
        sex=parse_sex(_text(ds, "PatientSex")),
    )
