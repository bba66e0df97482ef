"""The clinician's note of a study: edit it, and dictate a draft of it.

Why the note lives on the study (``studies.notes``) and dictation returns a draft only: the note is the ``notes`` slot
that ``notes.symptoms`` reads and the report prints; a transcript is what Whisper heard, so it goes back to the browser
for the clinician to correct and save, and neither the recording nor the raw transcript is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from vitalens.config import Settings
from vitalens.errors import InputError
from vitalens.service.ops import TooLarge, require
from vitalens.service.ops.audit import record_event
from vitalens.service.ops.scope import visible
from vitalens.service.ops.signing import ensure_editable
from vitalens.store.models import Study, User

__all__ = ["NOTES_SLOT", "note_limit", "update_notes", "dictate"]

logger = logging.getLogger(__name__)

NOTES_SLOT = "notes"
_DEFAULT_MAX_CHARS = 20_000


def note_limit() -> int:
    """Most characters a note may hold: the ``notes`` slot's limit (what ``notes.symptoms`` accepts)."""
    from vitalens.slots import TextLimits, get_slot, is_slot

    if is_slot(NOTES_SLOT):
        limits = get_slot(NOTES_SLOT).limits
        if isinstance(limits, TextLimits) and limits.max_chars is not None:
            return int(limits.max_chars)
    return _DEFAULT_MAX_CHARS


def update_notes(*, session: Session, user: User, study_id: str, notes: str) -> Study:
    """Replace the study's note (audited ``study.notes_update`` with the old and new lengths, never the text).

    Raises:
        NotFound: the study is not visible to this user.
        Forbidden: the role may not edit notes.
        InputError: longer than :func:`note_limit`, or not text.
        Conflict: the study is signed off (open an amendment first).
    """
    require(user, "notes.update")
    study = visible(session, user, Study, study_id)
    ensure_editable(session, study)  # the note is printed in the report: a signed study changes by amendment
    if not isinstance(notes, str):
        raise InputError(f"must be text, got {type(notes).__name__}", field="notes")
    text = notes.replace("\r\n", "\n").strip()
    limit = note_limit()
    if len(text) > limit:
        raise InputError(f"the note has {len(text):,} characters; at most {limit:,}", field="notes")
    if "\x00" in text:
        raise InputError("the note contains a NUL character", field="notes")
    before = len(study.notes or "")
    study.notes = text
    record_event(
        session=session,
        actor=user,
        action="study.notes_update",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"chars_before": before, "chars_after": len(text)},
    )
    session.commit()
    return study


def dictate(*, session: Session, user: User, settings: Settings, study_id: str, data: bytes) -> Any:
    """Transcribe a recording for the study's note (audited ``study.dictation``); returns a
    :class:`vitalens.notes.transcribe.Transcript` draft.

    The study is scoped before the recording is looked at, so a refused recording tells nothing about other sites.

    Raises:
        NotFound / Forbidden: as :func:`update_notes`.
        TooLarge: above ``settings.max_audio_mb`` (HTTP 413).
        UnsupportedMediaError / InputError: not an accepted recording, undecodable, too long, or no speech.
        TranscriptionUnavailable: the voice extra is not installed.
    """
    from vitalens.notes.transcribe import transcribe

    require(user, "notes.update")
    study = visible(session, user, Study, study_id)
    max_bytes = int(settings.max_audio_mb * 1024 * 1024)
    if len(data) > max_bytes:
        raise TooLarge(f"audio: the recording is {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB")
    transcript = transcribe(data, max_bytes=max_bytes, max_seconds=settings.max_audio_seconds)
    record_event(
        session=session,
        actor=user,
        action="study.dictation",
        record_type="study",
        record_id=study.id,
        patient_id=study.patient_id,
        detail={"duration_s": round(transcript.duration_s, 1), "chars": len(transcript.text)},
    )
    session.commit()
    return transcript
