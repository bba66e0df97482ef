"""DICOM images → the ``uint8`` arrays the image analyzers take (fundus RGB, OCT B-scan and chest X-ray gray).

Why these steps, in this order: a DICOM image's stored values are not display values. Radiographs are 10–16-bit,
may be stored inverted (``MONOCHROME1``), carry a rescale (modality LUT) and a window or VOI LUT that says how
they are meant to be seen; ophthalmic photographs are often JPEG with a YBR colour space; OCT volumes are many
B-scans in one object. We follow DICOM's own display pipeline with pydicom (modality LUT → VOI → presentation
polarity) and only then map to 8 bits, so the analyzers see what a reader at a workstation sees. Compressed
transfer syntaxes (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) decode through pydicom's plugins
(pylibjpeg, openjpeg, pyjpegls, Pillow). Sizes are checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.io.dicom._meta import (
    CHEST_BODY_PARTS,
    DicomImageMeta,
    DicomPatient,
    ImageKind,
    image_meta,
    patient_of,
)

__all__ = ["DicomImage", "is_dicom", "read_dicom_dataset", "read_dicom_image", "to_uint8_display"]

logger = logging.getLogger(__name__)

ColourPolicy = Literal["rgb", "gray", "any"]

_KIND_WORDS = {"fundus": "fundus photograph", "oct": "OCT B-scan", "cxr": "chest radiograph"}


@dataclass(frozen=True)
class DicomImage:
    """One decoded image with what its tags said.

    Attributes:
        array: ``(H, W, 3)`` uint8 for the ``rgb``/``any`` policies, ``(H, W)`` uint8 for ``gray``.
        meta: kind, eye, age, UIDs and pixel facts (no patient identity).
        patient: the sender's patient identity, for mapping to a site's patient.
    """

    array: np.ndarray
    meta: DicomImageMeta
    patient: DicomPatient


def is_dicom(data: bytes) -> bool:
    """True for a DICOM Part 10 file (128-byte preamble then ``DICM``)."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def read_dicom_dataset(data: bytes, *, field: str = "image", stop_before_pixels: bool = False) -> Any:
    """Parse DICOM Part 10 bytes with pydicom; anything unreadable is an :class:`InputError` naming ``field``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not is_dicom(data):
        raise UnsupportedMediaError("not a DICOM Part 10 file (no 'DICM' marker after the preamble)", field=field)
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable DICOM file: {exc}", field=field) from exc


def _check_kind(meta: DicomImageMeta, kind: ImageKind | None, field: str) -> None:
    """Refuse a DICOM object of another kind than the slot wants (an OCT in a fundus slot, a hand X-ray...)."""
    if kind is None:
        return
    if meta.kind is not None and meta.kind != kind:
        raise UnsupportedMediaError(
            f"the DICOM object is a {_KIND_WORDS[meta.kind]} (Modality {meta.modality or '?'}); "
            f"this input needs a {_KIND_WORDS[kind]}",
            field=field,
        )
    if kind == "cxr" and meta.body_part and meta.body_part not in CHEST_BODY_PARTS:
        raise InputError(
            f"the radiograph's BodyPartExamined is {meta.body_part}; this input needs a chest radiograph", field=field
        )


def _check_eye(meta: DicomImageMeta, eye: str | None, field: str) -> None:
    """Refuse a photograph whose tags name the other eye than the slot it was sent for."""
    if eye is None or meta.laterality is None or meta.laterality == eye:
        return
    raise InputError(
        f"the DICOM file's laterality is {meta.laterality_code} ({meta.laterality} eye) but it was sent as the "
        f"{eye} eye",
        field=field,
    )


def _voi_range(ds: Any, frame: int) -> tuple[float, float] | None:
    """The output range of the dataset's VOI transform (window or VOI LUT), found by probing it with extremes.

    Why probe: DICOM defines the window's output range from the bit depth, the rescale and the modality LUT; asking
    pydicom's own implementation for the images of -2³¹ and 2³¹ gives exactly that range without re-deriving it.
    """
    from pydicom.pixels import apply_voi_lut

    if "WindowCenter" not in ds and "VOILUTSequence" not in ds:
        return None
    probe = np.array([-(2.0**31), 2.0**31], dtype=np.float64)
    try:
        lo, hi = (float(v) for v in apply_voi_lut(probe, ds, index=0, prefer_lut=True))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        logger.info("ignoring an unusable VOI transform (%s); scaling by the data range", exc)
        return None
    return (lo, hi) if hi > lo else None


def to_uint8_display(arr: np.ndarray, ds: Any, *, frame: int = 0) -> np.ndarray:
    """Stored pixel values of one frame → display values in ``uint8`` (modality LUT, VOI, polarity, 8 bits).

    Grayscale: the modality LUT (rescale slope/intercept or LUT) and the VOI (window centre/width or VOI LUT) are
    applied as DICOM defines them; the VOI's own output range maps to 0–255; without a VOI the frame's value range
    does, except that 8-bit values with no rescale are display values already and are kept. ``MONOCHROME1`` is
    inverted so that, as in ``MONOCHROME2``, higher means brighter. Colour: YBR is already converted to RGB by
    pydicom; more than 8 bits stored are scaled down; palette colour goes through its LUT.
    """
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        bits = 16 if arr.dtype.itemsize > 1 else 8
        return np.clip(arr.astype(np.float64) / (2**bits - 1) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        bits = int(ds.get("BitsStored", 8) or 8)
        rgb = arr[..., :3].astype(np.float64)
        if bits > 8:
            rgb = np.rint(rgb / (2**bits - 1) * 255.0)
        return np.clip(rgb, 0, 255).astype(np.uint8)
    voi = _voi_range(ds, frame)
    has_modality_lut = "ModalityLUTSequence" in ds or float(ds.get("RescaleSlope", 1) or 1) != 1.0
    has_modality_lut = has_modality_lut or float(ds.get("RescaleIntercept", 0) or 0) != 0.0
    if voi is None and not has_modality_lut and int(ds.get("BitsStored", 8) or 8) <= 8:
        # 8-bit display values already (an OCT B-scan, a secondary capture): keep them exactly.
        out = arr.astype(np.uint8)
        return (255 - out) if photometric == "MONOCHROME1" else out
    values = apply_modality_lut(arr, ds).astype(np.float64)
    if voi is not None:
        values = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
        lo, hi = voi
    else:
        lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _apply_colour_policy(image: np.ndarray, colour: ColourPolicy, meta: DicomImageMeta, field: str) -> np.ndarray:
    is_gray = image.ndim == 2
    if colour == "rgb":
        if is_gray:
            raise InputError(
                f"grayscale DICOM image ({meta.photometric}); a colour (RGB) fundus photograph is required",
                field=field,
            )
        return image
    if colour == "gray":
        if is_gray:
            return image
        from PIL import Image

        return np.asarray(Image.fromarray(image).convert("L"), dtype=np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if is_gray else image


def read_dicom_image(
    data: bytes,
    *,
    field: str = "image",
    colour: ColourPolicy = "any",
    kind: ImageKind | None = None,
    eye: str | None = None,
    frame: int | None = None,
    max_pixels: int = 40_000_000,
    min_side: int = 64,
) -> DicomImage:
    """Decode one frame of a DICOM image for an analyzer, with its tags checked against the slot.

    Args:
        data: DICOM Part 10 bytes.
        field: the input slot, named in every error.
        colour: ``rgb`` requires colour (fundus), ``gray`` returns one channel (OCT, X-ray), ``any`` gives RGB.
        kind: the image kind the slot wants; a DICOM object of another kind is refused (415).
        eye: the eye the slot is for; a file whose laterality names the other eye is refused (422).
        frame: which frame of a multi-frame object (an OCT volume's B-scans); default the middle one, which in a
            macular cube is the B-scan through the fovea.
        max_pixels: refuse objects whose frames hold more pixels in all than this, before decoding them.
        min_side: refuse images whose shorter side is below this.

    Raises:
        UnsupportedMediaError: not DICOM, no pixel data (an SR, a waveform), another kind of image, or a
            transfer syntax no installed decoder handles.
        InputError: oversize, too small, corrupt pixel data, wrong eye, a frame index out of range.

    Example:
        >>> img = read_dicom_image(Path("fundus.dcm").read_bytes(), colour="rgb", kind="fundus")  # doctest: +SKIP
        >>> img.meta.laterality, img.meta.age_years  # doctest: +SKIP
        ('left', 63.0)
    """
    ds = read_dicom_dataset(data, field=field)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise UnsupportedMediaError(
            f"the DICOM object (SOP class {ds.get('SOPClassUID', '?')}) holds no image pixel data", field=field
        )
    probe = image_meta(ds)
    _check_kind(probe, kind, field)
    _check_eye(probe, eye, field)
    rows, cols, n_frames = probe.rows, probe.columns, probe.n_frames
    if rows * cols * n_frames > max_pixels:
        raise InputError(
            f"DICOM image is {cols}×{rows} px × {n_frames} frame(s) = {rows * cols * n_frames:,} pixels, above "
            f"the {max_pixels:,}-pixel limit",
            field=field,
        )
    if min(rows, cols) < min_side:
        raise InputError(f"image is {cols}×{rows} px; the shorter side must be at least {min_side} px", field=field)
    index = n_frames // 2 if frame is None else frame
    if not 0 <= index < n_frames:
        raise InputError(f"frame {index} requested; the object has {n_frames} frame(s)", field=field)
    arr = _decode_frame(ds, index if n_frames > 1 else None, field=field)
    image = _apply_colour_policy(to_uint8_display(arr, ds, frame=index), colour, probe, field)
    meta = image_meta(ds, frame_index=index if n_frames > 1 else None)
    if n_frames > 1:
        logger.info("%s: using frame %d of %d", field, index, n_frames)
    return DicomImage(array=np.ascontiguousarray(image), meta=meta, patient=patient_of(ds))


def _decode_frame(ds: Any, index: int | None, *, field: str) -> np.ndarray:
    """The stored values of one frame (or the only one), decoding only that frame of a compressed volume."""
    from pydicom.pixels import pixel_array

    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        arr = pixel_array(ds, index=index)
    except NotImplementedError as exc:
        name = getattr(ts, "name", ts)
        raise UnsupportedMediaError(
            f"no installed decoder handles the DICOM transfer syntax {name} ({ts}): {exc}", field=field
        ) from exc
    except RuntimeError as exc:
        # pydicom says "missing dependencies" when no plugin for the syntax is installed, and lists each plugin's
        # own error when all of them failed on the data (a corrupt stream).
        text = " ".join(str(exc).split())
        if "missing dependencies" in text or "no pixel data decoders" in text.lower():
            raise UnsupportedMediaError(
                f"no installed decoder handles the DICOM transfer syntax {getattr(ts, 'name', ts)} ({ts}); "
                "install pylibjpeg, pylibjpeg-openjpeg and pyjpegls",
                field=field,
            ) from exc
        raise InputError(
            f"corrupt or truncated DICOM pixel data ({getattr(ts, 'name', ts)}): {text}", field=field
        ) from exc
    except (ValueError, KeyError, AttributeError, TypeError, OSError, EOFError) as exc:
        raise InputError(f"corrupt or truncated DICOM pixel data: {exc}", field=field) from exc
    return np.asarray(arr)
