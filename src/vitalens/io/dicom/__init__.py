"""DICOM images in: pixel data to the image analyzers' arrays, and the eye, age and patient the tags name.

Ophthalmic Photography (fundus), Ophthalmic Tomography (OCT B-scans) and DX/CR radiographs, uncompressed or in
any compressed transfer syntax an installed pydicom plugin decodes. ECG waveforms are read by ``vitalens.io.ecg``.
"""

from __future__ import annotations

import logging

from vitalens.io.dicom._deid import DEID_METHOD, deidentify, deidentify_bytes
from vitalens.io.dicom._meta import (
    MODALITY_KIND,
    SOP_CLASS_KIND,
    DicomImageMeta,
    DicomPatient,
    ImageKind,
    completed_years,
    image_kind,
    image_meta,
    laterality,
    parse_dicom_date,
    patient_age_years,
    patient_of,
)
from vitalens.io.dicom._read import DicomImage, is_dicom, read_dicom_dataset, read_dicom_image, to_uint8_display

__all__ = [
    "DEID_METHOD",
    "MODALITY_KIND",
    "SOP_CLASS_KIND",
    "DicomImage",
    "DicomImageMeta",
    "DicomPatient",
    "ImageKind",
    "completed_years",
    "deidentify",
    "deidentify_bytes",
    "image_kind",
    "image_meta",
    "is_dicom",
    "laterality",
    "parse_dicom_date",
    "patient_age_years",
    "patient_of",
    "read_dicom_dataset",
    "read_dicom_image",
    "to_uint8_display",
]

logger = logging.getLogger(__name__)
