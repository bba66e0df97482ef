"""Every bad image gets a clear error naming the problem (the upload gate of all image analyzers)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.io.images import decode_image, sniff_image_type


def _encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def _rgb(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)


def test_good_rgb_png_and_jpeg_decode() -> None:
    image = _rgb()
    out = decode_image(_encode(image), field="fundus_left")
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    assert np.array_equal(out, image)
    jpeg = decode_image(_encode(image, "JPEG"), field="fundus_left")
    assert jpeg.shape == (96, 128, 3)


def test_rgba_is_composited_to_rgb() -> None:
    rgba = np.dstack([_rgb(), np.full((96, 128), 255, np.uint8)])
    assert decode_image(_encode(rgba)).shape == (96, 128, 3)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4 not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>"])
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaError, match="fundus_left"):
        decode_image(data, field="fundus_left")


def test_truncated_jpeg_is_corrupt() -> None:
    data = _encode(_rgb(), "JPEG")
    with pytest.raises(InputError, match="corrupt or truncated image/jpeg"):
        decode_image(data[: len(data) // 3], field="fundus_right")


def test_pixel_limit_guards_against_bombs() -> None:
    with pytest.raises(InputError, match="above the 5,000-pixel limit"):
        decode_image(_encode(_rgb()), max_pixels=5_000)


def test_forged_header_bomb_is_refused_before_decoding() -> None:
    """A PNG whose header claims 100000×100000 px is refused from the header alone."""
    data = bytearray(_encode(_rgb()))
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    with pytest.raises(InputError, match="decompression bomb"):
        decode_image(bytes(data), max_pixels=40_000_000)


def test_grayscale_refused_where_colour_is_required() -> None:
    gray = np.full((100, 100), 128, np.uint8)
    with pytest.raises(InputError, match="8-bit grayscale image"):
        decode_image(_encode(gray), field="fundus_left")
    assert decode_image(_encode(gray), colour="gray").shape == (100, 100)


def test_sixteen_bit_refused() -> None:
    gray16 = (np.arange(100 * 100, dtype=np.uint16).reshape(100, 100) * 6).astype(np.uint16)
    with pytest.raises(InputError, match="16-bit"):
        decode_image(_encode(gray16), field="fundus_left")
    with pytest.raises(InputError, match="16-bit"):
        decode_image(_encode(gray16, "TIFF"), field="fundus_left")


def test_too_small_refused() -> None:
    with pytest.raises(InputError, match="at least 64 px"):
        decode_image(_encode(_rgb(40, 200)), field="fundus_left")


def test_oversize_file_refused() -> None:
    with pytest.raises(InputError, match="above the 0.0 MB limit"):
        decode_image(_encode(_rgb()), max_bytes=10)


def test_sniff() -> None:
    assert sniff_image_type(_encode(_rgb(), "JPEG")) == "image/jpeg"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WAVE") is None
