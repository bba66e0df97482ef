"""Safe decoding of dictated recordings: type sniffing by magic bytes, size and duration limits, 16 kHz mono.

Why a gate before the speech model: a browser's MediaRecorder sends WebM/Opus (Chrome, Firefox) or MP4/AAC (Safari);
anything else, an empty blob, a truncated file or an hour of audio must be refused with a clear message before the
decoder or Whisper spends time on it.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from vitalens.errors import InputError, UnsupportedMediaError

__all__ = ["ACCEPTED_AUDIO_TYPES", "SAMPLE_RATE_HZ", "sniff_audio_type", "decode_audio"]

logger = logging.getLogger(__name__)

#: The rate Whisper expects.
SAMPLE_RATE_HZ = 16_000
#: media type → what identifies it
ACCEPTED_AUDIO_TYPES = ("audio/wav", "audio/webm", "audio/ogg", "audio/mp4", "audio/mpeg", "audio/flac")


def sniff_audio_type(data: bytes) -> str | None:
    """The media type from the leading bytes, or None when it is not an accepted recording format."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM / Matroska (MediaRecorder in Chrome and Firefox)
        return "audio/webm"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if len(data) >= 12 and data[4:8] == b"ftyp":  # MP4 / M4A (MediaRecorder in Safari)
        return "audio/mp4"
    if data[:4] == b"fLaC":
        return "audio/flac"
    if data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0):
        return "audio/mpeg"
    return None


def decode_audio(data: bytes, *, max_bytes: int, max_seconds: float, field: str = "audio") -> np.ndarray:
    """Decode a recording to float32 mono samples at 16 kHz in [-1, 1].

    Raises:
        InputError: empty, over ``max_bytes``, undecodable, silent-length zero or longer than ``max_seconds``.
        UnsupportedMediaError: not WAV, WebM, Ogg, MP4/M4A, MP3 or FLAC.
    """
    if not data:
        raise InputError("the recording is empty", field=field)
    if len(data) > max_bytes:
        raise InputError(f"the recording is {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB", field=field)
    media_type = sniff_audio_type(data)
    if media_type is None:
        raise UnsupportedMediaError(
            "not a recording vitalens reads (WAV, WebM/Opus, Ogg, MP4/M4A, MP3 or FLAC)", field=field
        )
    try:
        from faster_whisper.audio import decode_audio as _decode
    except ImportError as exc:  # pragma: no cover - the voice extra is optional
        raise InputError("dictation needs the voice extra: pip install 'vitalens[voice]'", field=field) from exc
    try:
        samples = _decode(io.BytesIO(data), sampling_rate=SAMPLE_RATE_HZ)
    except Exception as exc:  # PyAV raises its own error types for every kind of broken container
        raise InputError(
            f"the {media_type} recording could not be decoded ({type(exc).__name__})", field=field
        ) from exc
    samples = np.asarray(samples, dtype=np.float32)
    seconds = len(samples) / SAMPLE_RATE_HZ
    if seconds == 0:
        raise InputError("the recording holds no audio", field=field)
    if seconds > max_seconds:
        raise InputError(f"the recording lasts {seconds:.0f} s; at most {max_seconds:.0f} s", field=field)
    logger.debug("decoded %s: %.1f s", media_type, seconds)
    return samples
