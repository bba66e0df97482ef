"""De-identification of received DICOM objects before they are stored (PS3.15 basic profile, with options).

Why: a vitalens patient is pseudonymous (a site-chosen pseudonym, year of birth, sex; never a name), but a DICOM
file from a PACS carries the name, birth date, address, MRN and physicians. Storing the file as received would put
all of that in the blob store. We apply the DICOM basic application-level confidentiality profile (Kitware's
``dicom-anonymizer``) with the *Retain UIDs* option (the results we send back as DICOM must reference the original
instances), the *Retain Longitudinal Temporal Information* option (study and content dates give the patient's age
on the day and order the studies) and *Retain Patient Characteristics* (age and sex are analyzer inputs), and
replace the patient's ID and name with the site's pseudonym. Pixel data is not touched: text burned into the pixels
(``BurnedInAnnotation``) is not removed, and is recorded in the metadata so a reviewer can tell.
"""

from __future__ import annotations

import io
import logging
from typing import Any

__all__ = ["DEID_METHOD", "deidentify", "deidentify_bytes"]

logger = logging.getLogger(__name__)

#: (0012,0063), an LO of at most 64 characters.
DEID_METHOD = "PS3.15 basic profile; retain UIDs, dates, patient traits"

#: Attributes kept as they are, on top of what the basic profile keeps.
_RETAIN: tuple[tuple[int, int], ...] = (
    # Retain UIDs option
    (0x0002, 0x0003),  # MediaStorageSOPInstanceUID
    (0x0008, 0x0018),  # SOPInstanceUID
    (0x0020, 0x000D),  # StudyInstanceUID
    (0x0020, 0x000E),  # SeriesInstanceUID
    (0x0020, 0x0052),  # FrameOfReferenceUID
    (0x0008, 0x1155),  # ReferencedSOPInstanceUID
    # Retain longitudinal temporal information option
    (0x0008, 0x0020),  # StudyDate
    (0x0008, 0x0021),  # SeriesDate
    (0x0008, 0x0022),  # AcquisitionDate
    (0x0008, 0x0023),  # ContentDate
    (0x0008, 0x002A),  # AcquisitionDateTime
    (0x0008, 0x0030),  # StudyTime
    (0x0008, 0x0031),  # SeriesTime
    (0x0008, 0x0032),  # AcquisitionTime
    (0x0008, 0x0033),  # ContentTime
    # Retain patient characteristics option
    (0x0010, 0x1010),  # PatientAge
    (0x0010, 0x0040),  # PatientSex
    (0x0010, 0x1020),  # PatientSize
    (0x0010, 0x1030),  # PatientWeight
    # Retain device identity option (the manufacturer and model explain image appearance)
    (0x0008, 0x0070),  # Manufacturer
    (0x0008, 0x1090),  # ManufacturerModelName
)


def deidentify(ds: Any, *, pseudonym: str) -> Any:
    """De-identify ``ds`` in place and return it; the patient becomes ``pseudonym`` (ID and name).

    The patient's age must be read before (it is derived from the birth date when ``PatientAge`` is missing);
    :func:`deidentify_bytes` fills ``PatientAge`` from the birth date for that reason.
    """
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, keep, replace_with_value

    rules: dict[tuple[int, int], Any] = {tag: keep for tag in _RETAIN}
    rules[(0x0010, 0x0020)] = replace_with_value([pseudonym])  # PatientID
    rules[(0x0010, 0x0010)] = replace_with_value([pseudonym])  # PatientName
    anonymize_dataset(ds, extra_anonymization_rules=rules, delete_private_tags=True)
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym
    ds.PatientBirthDate = ""  # empty (type 2), not the profile's dummy 00010101, which reads as a false age
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    return ds


def deidentify_bytes(data: bytes, *, pseudonym: str) -> bytes:
    """DICOM Part 10 bytes → de-identified Part 10 bytes (pixel data byte-identical).

    ``PatientAge`` is written from the birth date and image date first when it is missing, so the age survives
    the removal of the birth date.
    """
    from vitalens.io.dicom._meta import patient_age_years
    from vitalens.io.dicom._read import read_dicom_dataset

    ds = read_dicom_dataset(data)
    if not str(ds.get("PatientAge", "") or "").strip():
        age = patient_age_years(ds)
        if age is not None:
            ds.PatientAge = f"{int(age):03d}Y"
    deidentify(ds, pseudonym=pseudonym)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
