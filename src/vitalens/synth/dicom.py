"""Synthetic DICOM objects as a PACS sends them: fundus photographs, OCT volumes, chest radiographs.

Why here: the DICOM reader, the DICOMweb receiver, batch screening and their tests need DICOM files in the real
IODs' shape (SOP class, modality, laterality, patient module, compressed transfer syntaxes) without committing
binary data. Pixels come from the caller (e.g. :func:`vitalens.synth.odir.render_fundus`); this module only wraps
them as DICOM, uncompressed or compressed with pydicom's encoders (RLE, JPEG-LS, JPEG 2000) or, for JPEG baseline,
Pillow's encoder encapsulated as DICOM requires.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np

__all__ = [
    "SynthDicomPatient",
    "TransferSyntax",
    "dicom_bytes",
    "fundus_dataset",
    "oct_dataset",
    "radiograph_dataset",
]

logger = logging.getLogger(__name__)

TransferSyntax = Literal["explicit", "implicit", "rle", "jpegls", "jpeg2000", "jpeg-baseline"]

OP_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
OPT = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"


@dataclass(frozen=True)
class SynthDicomPatient:
    """The patient and study fields a synthetic object carries."""

    patient_id: str = "SYN-0001"
    name: str = "SYNTHETIC^PATIENT"
    birth_date: date | None = date(1960, 3, 15)
    sex: str = "F"
    age: str | None = None  # DICOM AS, e.g. "063Y"; omitted to make readers use the birth date
    issuer: str | None = "VITALENS-SYNTH"
    study_date: date = date(2024, 3, 14)
    study_uid: str | None = None
    accession: str = "ACC0001"


def _base(sop_class: str, modality: str, patient: SynthDicomPatient, *, series_uid: str | None = None) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = patient.study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.PatientID = patient.patient_id
    if patient.issuer:
        ds.IssuerOfPatientID = patient.issuer
    ds.PatientName = patient.name
    ds.PatientSex = patient.sex
    if patient.birth_date is not None:
        ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    if patient.age is not None:
        ds.PatientAge = patient.age
    day = patient.study_date.strftime("%Y%m%d")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
    ds.StudyTime = ds.ContentTime = "101500"
    ds.AccessionNumber = patient.accession
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "vitalens synthetic"
    ds.ReferringPhysicianName = ""
    return ds


def _set_pixels(ds: Any, arr: np.ndarray, *, photometric: str, bits: int, frames: int | None = None) -> None:
    shape = arr.shape
    if ds.SamplesPerPixel == 3:
        ds.Rows, ds.Columns = int(shape[-3]), int(shape[-2])
        ds.PlanarConfiguration = 0
    else:
        ds.Rows, ds.Columns = int(shape[-2]), int(shape[-1])
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(arr.astype(np.uint8 if bits <= 8 else np.uint16)).tobytes()


def _jpeg_baseline(ds: Any, arr: np.ndarray, quality: int) -> None:
    """Encode 8-bit frames with Pillow as JPEG baseline and encapsulate them (pydicom has no baseline encoder)."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    frames = arr if (arr.ndim == 4 or (arr.ndim == 3 and ds.SamplesPerPixel == 1)) else arr[None]
    encoded = []
    for frame in frames:
        buf = io.BytesIO()
        # 4:2:2 chroma subsampling, which is what YBR_FULL_422 declares.
        Image.fromarray(frame).save(buf, format="JPEG", quality=quality, subsampling=1)
        encoded.append(buf.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if ds.SamplesPerPixel == 3:
        ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit


def _encode(ds: Any, arr: np.ndarray, syntax: TransferSyntax, quality: int) -> None:
    from pydicom.uid import ImplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

    if syntax == "explicit":
        return
    if syntax == "implicit":
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        return
    if syntax == "jpeg-baseline":
        _jpeg_baseline(ds, arr, quality)
        return
    uid = {"rle": RLELossless, "jpegls": JPEGLSLossless, "jpeg2000": JPEG2000Lossless}[syntax]
    ds.compress(uid, generate_instance_uid=False)


def fundus_dataset(
    image: np.ndarray,
    *,
    eye: Literal["left", "right"] | None,
    patient: SynthDicomPatient | None = None,
    syntax: TransferSyntax = "explicit",
    series_level_laterality: bool = False,
    quality: int = 95,
    series_uid: str | None = None,
) -> Any:
    """An Ophthalmic Photography 8 Bit Image of an ``(H, W, 3)`` uint8 fundus photograph.

    Args:
        eye: written as ``ImageLaterality`` (or the series-level ``Laterality`` when ``series_level_laterality``).
    """
    patient = patient or SynthDicomPatient()
    ds = _base(OP_8BIT, "OP", patient, series_uid=series_uid)
    ds.SamplesPerPixel = 3
    _set_pixels(ds, np.asarray(image, dtype=np.uint8), photometric="RGB", bits=8)
    if eye is not None:
        code = "L" if eye == "left" else "R"
        if series_level_laterality:
            ds.Laterality = code
        else:
            ds.ImageLaterality = code
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    _encode(ds, np.asarray(image, dtype=np.uint8), syntax, quality)
    return ds


def oct_dataset(
    volume: np.ndarray,
    *,
    eye: Literal["left", "right"] | None,
    patient: SynthDicomPatient | None = None,
    syntax: TransferSyntax = "explicit",
    series_uid: str | None = None,
) -> Any:
    """An Ophthalmic Tomography Image of ``(n_bscans, H, W)`` uint8 B-scans (laterality as ``FrameLaterality``)."""
    from pydicom.dataset import Dataset

    patient = patient or SynthDicomPatient()
    vol = np.asarray(volume, dtype=np.uint8)
    if vol.ndim == 2:
        vol = vol[None]
    ds = _base(OPT, "OPT", patient, series_uid=series_uid)
    ds.SamplesPerPixel = 1
    _set_pixels(ds, vol, photometric="MONOCHROME2", bits=8, frames=int(vol.shape[0]))
    if eye is not None:
        anatomy = Dataset()
        anatomy.FrameLaterality = "L" if eye == "left" else "R"
        shared = Dataset()
        shared.FrameAnatomySequence = [anatomy]
        ds.SharedFunctionalGroupsSequence = [shared]
    _encode(ds, vol, syntax, 95)
    return ds


def radiograph_dataset(
    image: np.ndarray,
    *,
    bits: int = 12,
    sop: Literal["dx", "cr"] = "dx",
    monochrome1: bool = False,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    body_part: str | None = "CHEST",
    view: str | None = "PA",
    patient: SynthDicomPatient | None = None,
    syntax: TransferSyntax = "explicit",
    series_uid: str | None = None,
) -> Any:
    """A DX (for presentation) or CR image of an ``(H, W)`` unsigned array with ``bits`` bits stored.

    Args:
        window: ``(centre, width)`` written as the VOI window.
        rescale: ``(slope, intercept)`` written as the modality LUT.
    """
    patient = patient or SynthDicomPatient()
    ds = _base(DX_PRESENTATION if sop == "dx" else CR, "DX" if sop == "dx" else "CR", patient, series_uid=series_uid)
    ds.SamplesPerPixel = 1
    arr = np.asarray(image)
    _set_pixels(ds, arr, photometric="MONOCHROME1" if monochrome1 else "MONOCHROME2", bits=bits)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = float(window[0]), float(window[1])
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = float(rescale[0]), float(rescale[1])
        ds.RescaleType = "US"
    if body_part:
        ds.BodyPartExamined = body_part
    if view:
        ds.ViewPosition = view
    if sop == "dx":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
    _encode(ds, arr, syntax, 95)
    return ds


def dicom_bytes(ds: Any) -> bytes:
    """A dataset as DICOM Part 10 bytes (preamble, ``DICM``, file meta)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
