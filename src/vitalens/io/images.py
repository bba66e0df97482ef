"""Safe image decoding for uploads: type sniffing, size limits, decompression-bomb guard, colour policy.

Why a single gate: the CLI, the stateless predict API and the clinical upload all accept photographs from
outside; each must refuse the same bad files (not an image, truncated, a 40-gigapixel bomb, 16-bit or grayscale
where colour is required, a thumbnail too small to grade) with the same clear message, before any model runs.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from vitalens.errors import InputError, UnsupportedMediaError

__all__ = ["ACCEPTED_IMAGE_TYPES", "decode_image", "read_image", "sniff_image_type", "encode_png"]

logger = logging.getLogger(__name__)

#: media type → leading magic bytes
ACCEPTED_IMAGE_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "image/bmp": (b"BM",),
    "image/webp": (b"RIFF",),
}

ColourPolicy = Literal["rgb", "gray", "any"]


def sniff_image_type(data: bytes) -> str | None:
    """The media type from the file's magic bytes, or None when it is not an accepted image type."""
    for media_type, magics in ACCEPTED_IMAGE_TYPES.items():
        if any(data.startswith(m) for m in magics):
            if media_type == "image/webp" and data[8:12] != b"WEBP":
                continue
            return media_type
    return None


def _png_bit_depth(data: bytes) -> int | None:
    """Bit depth per channel from a PNG's IHDR (Pillow silently narrows 16-bit RGB to 8-bit)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 29 and data[12:16] == b"IHDR":
        return int(struct.unpack(">B", data[24:25])[0])
    return None


def decode_image(
    data: bytes,
    *,
    field: str = "image",
    max_pixels: int = 40_000_000,
    min_side: int = 64,
    max_bytes: int | None = None,
    colour: ColourPolicy = "rgb",
    kind: str | None = None,
    eye: str | None = None,
) -> np.ndarray:
    """Decode uploaded bytes into a ``uint8`` array after every safety check.

    A DICOM Part 10 file (Ophthalmic Photography, OCT, DX/CR...) is decoded by
    :func:`vitalens.io.dicom.read_dicom_image` through DICOM's display pipeline, with its tags checked against
    ``kind`` and ``eye``; use that function directly to keep the tags (laterality, age, UIDs).

    Args:
        data: the raw file content.
        field: the input slot, named in every error (``fundus_left``...).
        max_pixels: refuse images with more pixels than this (decompression bombs), checked from the header
            before any pixel is decoded.
        min_side: refuse images whose shorter side is below this many pixels.
        max_bytes: refuse files larger than this.
        colour: ``"rgb"`` requires a colour photograph (fundus); ``"gray"`` returns one channel (OCT, X-ray);
            ``"any"`` converts whatever comes to RGB.
        kind: for DICOM files, the image kind the slot needs (``fundus``, ``oct``, ``cxr``); another is refused.
        eye: for DICOM files, the eye the slot is for; a file whose laterality names the other eye is refused.

    Returns:
        ``(H, W, 3)`` uint8 for ``rgb``/``any``, ``(H, W)`` uint8 for ``gray``.

    Raises:
        UnsupportedMediaError: empty, or not a JPEG/PNG/TIFF/BMP/WebP file.
        InputError: oversize file, bomb, corrupt/truncated, 16-bit, grayscale where colour is needed, too small.
    """
    from PIL import Image, ImageOps

    if not data:
        raise UnsupportedMediaError("the file is empty", field=field)
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"file is {len(data) / 1e6:.1f} MB, above the {max_bytes / 1e6:.1f} MB limit", field=field)
    from vitalens.io.dicom import is_dicom, read_dicom_image

    if is_dicom(data):
        return read_dicom_image(
            data,
            field=field,
            colour=colour,
            kind=kind,  # type: ignore[arg-type]
            eye=eye,
            max_pixels=max_pixels,
            min_side=min_side,
        ).array
    media_type = sniff_image_type(data)
    if media_type is None:
        raise UnsupportedMediaError(
            "not an image this input accepts (expected JPEG, PNG, TIFF, BMP, WebP or DICOM)", field=field
        )
    depth = _png_bit_depth(data)
    if depth is not None and depth > 8:
        raise InputError(f"{depth}-bit image; an 8-bit-per-channel image is required", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(
                    f"image is {width}×{height} = {width * height:,} pixels, above the {max_pixels:,}-pixel limit "
                    "(possible decompression bomb)",
                    field=field,
                )
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"image exceeds the pixel limit (possible decompression bomb): {exc}", field=field) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"corrupt or truncated {media_type} file: {exc}", field=field) from exc

    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"} or mode.endswith(";16"):
        raise InputError(f"16-bit or floating-point image (mode {mode}); an 8-bit image is required", field=field)
    if min(width, height) < min_side:
        raise InputError(f"image is {width}×{height} px; the shorter side must be at least {min_side} px", field=field)
    image = ImageOps.exif_transpose(image)
    is_gray = mode in {"L", "LA", "1"} or (mode == "P" and _palette_is_gray(image))
    if colour == "rgb" and is_gray:
        raise InputError(
            f"8-bit grayscale image (mode {mode}); a colour (RGB) fundus photograph is required", field=field
        )
    if colour == "gray":
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode in {"RGBA", "LA", "PA"} or (mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (0, 0, 0))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.split()[-1])
        image = background
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _palette_is_gray(image: object) -> bool:
    try:
        rgb = np.asarray(image.convert("RGB"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def read_image(path: Path, *, field: str = "image", **kwargs: object) -> np.ndarray:
    """``decode_image`` on a file; a missing file raises ``InputError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}", field=field)
    return decode_image(path.read_bytes(), field=field, **kwargs)  # type: ignore[arg-type]


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array (H×W or H×W×3)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
