"""The note panel says "edited since the analysis" from the contracts (analyzers reading a text slot), not a name."""

from __future__ import annotations

from types import SimpleNamespace

from vitalens.web.assistant_views import _note_readers, _note_stale


def _view(notes: str, analyzers: list[str], stages: list[SimpleNamespace], status: str = "COMPLETE") -> SimpleNamespace:
    analysis = SimpleNamespace(status=status, analyzers=analyzers, stages=stages)
    return SimpleNamespace(study=SimpleNamespace(notes=notes), analysis=analysis)


def test_readers_come_from_the_contracts_and_staleness_from_the_read_length() -> None:
    readers = _note_readers()
    assert "notes.symptoms" in readers and "ecg.ptbxl" not in readers
    read = SimpleNamespace(analyzer="notes.symptoms", result={"extras": {"note_chars": 5}})
    assert _note_stale(_view("chest", ["notes.symptoms"], [read])) is False  # the note as analysed
    assert _note_stale(_view("chest pain", ["notes.symptoms"], [read])) is True  # edited since
    assert _note_stale(_view("chest", ["notes.symptoms"], [])) is True  # asked for, never read
    assert _note_stale(_view("chest", ["ecg.ptbxl"], [])) is False  # no reader was asked
    assert _note_stale(_view("chest pain", ["notes.symptoms"], [read], status="RUNNING")) is False
