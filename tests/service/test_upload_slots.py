"""Upload validation read from the slot registry: the slot decodes (its own decoder, with its declared hints), then
the value must meet the slot's limits and those of at least one analyzer that reads the slot — no slot names in
``service/``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from vitalens.analyzers import ANALYZERS, Analyzer, register_analyzer
from vitalens.config import Settings
from vitalens.domain import AnalysisResult, StudyInputs
from vitalens.errors import InputError
from vitalens.service.ops.inputs import Upload, check_readable, decode_input, upload_slots, validate_upload
from vitalens.slots import SLOTS, Decoded, DecodeOptions, ImageLimits, SlotKind, SlotSpec, TextLimits, get_slot
from vitalens.store.models import Input, Study

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def csv_without_time(n: int = 1000) -> bytes:
    """A 12-lead CSV with no time column: its sampling rate must come from the ``ecg.fs_hz`` hint."""
    rows = [",".join(LEADS)]
    rows += [",".join(f"{0.5 * np.sin(k / 20 + i):.3f}" for i in range(12)) for k in range(n)]
    return "\n".join(rows).encode()


def _create(client: TestClient, headers: dict, patient_id: str, files: dict, **data: str) -> Any:
    form = {"patient_id": patient_id, "study_date": "2024-03-01", **data}
    return client.post("/api/v1/studies", data=form, files=files, headers=headers)


def test_a_csv_ecg_without_time_column_needs_the_fs_hint(client: TestClient, db: Session, world: World) -> None:
    h = world.a.headers["clinician"]
    files = {"ecg": ("rest.csv", csv_without_time(), "text/csv")}
    missing = _create(client, h, world.a.patient.id, files)
    assert missing.status_code == 422, missing.text
    assert missing.json()["field"] == "ecg" and "fs_hz" in missing.json()["detail"]
    bad = _create(client, h, world.a.patient.id, files, **{"ecg.fs_hz": "20"})
    assert bad.status_code == 422 and bad.json()["field"] == "ecg.fs_hz"
    assert "in 50–10000 Hz" in bad.json()["detail"]
    assert db.scalar(select(Study).where(Study.patient_id == world.a.patient.id, Study.id != world.a.study.id)) is None

    ok = _create(client, h, world.a.patient.id, files, **{"ecg.fs_hz": "250"})
    assert ok.status_code == 201, ok.text
    meta = ok.json()["inputs"][0]["meta"]
    assert meta["fs_hz"] == 250.0 and meta["n_samples"] == 1000 and meta["hints"] == {"fs_hz": 250.0}
    # a later decode (the job, the export) reads the stored file with the hints it was uploaded with
    row = db.get(Input, ok.json()["inputs"][0]["id"])
    assert row is not None
    record = decode_input(row, client.app.state.blobs.get(row.blob_key))
    assert record.fs_hz == 250.0 and record.signal.shape == (12, 1000)


def test_unknown_and_misplaced_hints_are_named(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    files = {"ecg": ("rest.csv", csv_without_time(), "text/csv")}
    unknown = _create(client, h, world.a.patient.id, files, **{"ecg.gain": "2"})
    assert unknown.status_code == 422 and "ecg.gain" in unknown.json()["detail"]
    fmt = _create(client, h, world.a.patient.id, files, **{"ecg.format": "evil", "ecg.fs_hz": "250"})
    assert fmt.status_code == 422 and fmt.json()["field"] == "ecg.format"
    assert "must be one of wfdb, dicom" in fmt.json()["detail"]


def test_every_upload_slot_is_taken_and_others_are_not(settings: Settings) -> None:
    slots = upload_slots()
    assert {"fundus_left", "fundus_right", "oct", "cxr", "ecg"} <= set(slots)
    assert "age" not in slots and "sex" not in slots  # study and patient fields, not uploads
    with pytest.raises(InputError, match="unknown input slot 'age'"):
        validate_upload(Upload(slot="age", data=b"61"), settings=settings)


# -- a slot and analyzers of the test only: limits come from the contracts that read the slot -------------------
def _probe_decoder(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    """A plug-in slot's own decoder: ``W x H`` text → a gray image of that size."""
    text = data.decode() if isinstance(data, bytes) else data
    w, h = (int(v) for v in text.lower().split("x"))
    return Decoded(np.zeros((h, w), np.uint8), "text/x-probe", {"probe": True})


class _Probe(Analyzer):
    def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:  # pragma: no cover
        raise NotImplementedError


@pytest.fixture
def probe_slot() -> Iterator[str]:
    spec = SlotSpec(
        "probe_scan",
        SlotKind.IMAGE,
        "Probe scan",
        ImageLimits(colour="gray", min_side=10, max_aspect=4.0),
        decoder=_probe_decoder,
    )
    with SLOTS.temporarily(spec.name, spec):
        names = ("test.probe_strict", "test.probe_wide")
        register_analyzer(
            names[0],
            modality="probe",
            inputs=(spec.name,),
            limits={spec.name: ImageLimits(colour="gray", min_side=100)},
        )(type("Strict", (_Probe,), {}))
        register_analyzer(
            names[1],
            modality="probe",
            inputs=(spec.name,),
            limits={spec.name: ImageLimits(colour="gray", max_aspect=1.5)},
        )(type("Wide", (_Probe,), {}))
        try:
            yield spec.name
        finally:
            for name in names:
                ANALYZERS.unregister(name)


def test_a_value_is_stored_when_one_reader_accepts_it(probe_slot: str, settings: Settings) -> None:
    assert check_readable(probe_slot, np.zeros((120, 120), np.uint8)) == ["test.probe_strict", "test.probe_wide"]
    assert check_readable(probe_slot, np.zeros((50, 60), np.uint8)) == ["test.probe_wide"]  # short side 50 < 100
    assert check_readable(probe_slot, np.zeros((100, 250), np.uint8)) == ["test.probe_strict"]  # aspect 2.5 > 1.5
    with pytest.raises(InputError, match="shorter side must be at least 100 px"):
        check_readable(probe_slot, np.zeros((50, 100), np.uint8))  # aspect 2: the wide one refuses too
    with pytest.raises(InputError, match="at least 10 px"):
        check_readable(probe_slot, np.zeros((5, 5), np.uint8))  # the slot's own limit comes first
    validated = validate_upload(Upload(slot=probe_slot, data=b"60x50", filename="p.txt"), settings=settings)
    assert (validated.width, validated.height) == (60, 50) and validated.media_type == "text/x-probe"
    assert validated.meta == {"probe": True} and validated.modality == "image"


def test_a_text_slot_cannot_take_hints_it_does_not_declare() -> None:
    spec = SlotSpec("probe_text", SlotKind.TEXT, "Probe", TextLimits(max_chars=5))
    with pytest.raises(InputError, match="probe_text takes no hint 'fs_hz' \\(hints: none\\)"):
        spec.decode(b"abc", hints={"fs_hz": "250"})
    assert spec.decode(b"abc").value == "abc"


def test_the_ecg_format_hint_lists_the_readers_formats() -> None:
    from vitalens.io.ecg._read import ECG_FORMATS

    assert set(get_slot("ecg").hint("format").limits.choices) == set(ECG_FORMATS)  # type: ignore[union-attr]
