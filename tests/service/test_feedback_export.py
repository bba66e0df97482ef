"""``export_feedback`` / ``vitalens feedback export``: reviewed labels read back by the ODIR and PTB-XL adapters
equal the clinicians' corrections; unreviewed, partial and rejected studies are left out (or filled from the model
on request); the export is atomic.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.service._analysis_fakes import jpeg_bytes
from tests.utils import factories as f
from vitalens.data.odir import ODIR_LABELS, OdirDataset
from vitalens.data.ptbxl import PTBXL_LABELS, PTBXL_LEADS, PTBXLDataset
from vitalens.data.ptbxl_adapter import stable_number
from vitalens.errors import InputError
from vitalens.service.ops.export import export_feedback
from vitalens.service.ops.feedback import give_feedback
from vitalens.store import Analysis, Finding, Input, LocalBlobStore

pytestmark = pytest.mark.integration


def _input(db, blobs, study, slot: str, data: bytes, *, filename: str, media_type: str, meta=None) -> None:
    db.add(
        Input(
            study_id=study.id,
            slot=slot,
            modality="ecg" if slot == "ecg" else "fundus",
            eye=slot.split("_")[1] if slot.startswith("fundus") else None,
            filename=filename,
            content_sha256=hashlib.sha256(data).hexdigest(),
            media_type=media_type,
            size_bytes=len(data),
            blob_key=blobs.put(data),
            meta=meta or {},
        )
    )
    db.commit()


def _analysis(db, study, analyzer: str, outputs: dict[str, bool]) -> dict[str, str]:
    """A COMPLETE analysis with one finding per code (``positive`` as given); returns code → finding id."""
    analysis = Analysis(study_id=study.id, status="COMPLETE", analyzers=[analyzer], finished_at=datetime.now(UTC))
    db.add(analysis)
    db.flush()
    ids = {}
    for code, positive in outputs.items():
        row = Finding(
            analysis_id=analysis.id,
            analyzer=analyzer,
            code=code,
            label=code,
            probability=0.9 if positive else 0.1,
            threshold=0.5,
            positive=positive,
        )
        db.add(row)
        db.flush()
        ids[code] = row.id
    db.commit()
    return ids


def _fundus_study(db, blobs, site, *, sex: str = "female", png_right: bool = False):
    patient = f.create_patient(db, site=site, year_of_birth=1960, sex=sex)
    study = f.create_study(db, patient=patient)
    study.age_years = 63.5
    db.commit()
    _input(db, blobs, study, "fundus_left", jpeg_bytes(120), filename="l.jpg", media_type="image/jpeg")
    right = f.png_bytes(64, 64) if png_right else jpeg_bytes(140)
    _input(db, blobs, study, "fundus_right", right, filename="r.png", media_type="image/png")
    return study


def _ecg_csv(fs: int = 500, seconds: float = 10.0) -> bytes:
    """A 12-lead CSV with a time column: a 1 mV, 1 Hz sine in lead II (other leads scaled copies)."""
    t = np.arange(int(fs * seconds)) / fs
    base = np.sin(2 * np.pi * 1.0 * t)
    header = "time," + ",".join(PTBXL_LEADS)
    lines = [header]
    for i, ti in enumerate(t):
        values = [f"{base[i] * (k + 1) / 12:.5f}" for k in range(12)]
        values[1] = f"{base[i]:.5f}"
        lines.append(f"{ti:.4f}," + ",".join(values))
    return ("\n".join(lines) + "\n").encode()


_ODIR_MODEL = {"N": False, "D": True, "G": False, "C": False, "A": False, "H": True, "M": False, "O": False}


def _review_all(db, user, ids: dict[str, str], corrections: dict[str, bool]) -> dict[str, int]:
    """Confirm every finding except ``corrections`` (code → corrected value); returns the expected labels."""
    expected = {}
    for code, fid in ids.items():
        if code in corrections:
            give_feedback(session=db, user=user, finding_id=fid, action="correct", corrected_positive=corrections[code])
            expected[code] = int(corrections[code])
        else:
            give_feedback(session=db, user=user, finding_id=fid, action="confirm")
            expected[code] = int(_ODIR_MODEL.get(code, False))
    return expected


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_odir_export_reads_back_with_corrections(db, world, blobs, tmp_path) -> None:
    site, clinician = world.a.site, world.a.users["clinician"]
    reviewed = _fundus_study(db, blobs, site, png_right=True)
    ids = _analysis(db, reviewed, "fundus.odir", _ODIR_MODEL)
    expected = _review_all(db, clinician, ids, {"D": False, "N": True, "H": False})
    # a newer correction wins over the older confirm of the same finding
    give_feedback(session=db, user=clinician, finding_id=ids["G"], action="correct", corrected_positive=True)
    expected["G"] = 1

    partial = _fundus_study(db, blobs, site)
    pids = _analysis(db, partial, "fundus.odir", _ODIR_MODEL)
    give_feedback(session=db, user=clinician, finding_id=pids["D"], action="correct", corrected_positive=False)

    rejected = _fundus_study(db, blobs, site)
    rids = _analysis(db, rejected, "fundus.odir", _ODIR_MODEL)
    _review_all(db, clinician, rids, {})
    give_feedback(session=db, user=clinician, finding_id=rids["O"], action="reject")

    unknown_sex = _fundus_study(db, blobs, site, sex="unknown")
    _review_all(db, clinician, _analysis(db, unknown_sex, "fundus.odir", _ODIR_MODEL), {})

    unreviewed = _fundus_study(db, blobs, site)
    _analysis(db, unreviewed, "fundus.odir", _ODIR_MODEL)

    out = tmp_path / "export"
    summary = export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id)
    assert summary.by_dataset == {"odir": 1} and summary.by_analyzer == {"fundus.odir": 1}
    assert summary.labels_from_feedback == 8 and summary.labels_from_model == 0
    assert summary.skipped == {
        "a finding was rejected (fundus.odir)": 1,
        "fundus: not all 8 ODIR labels reviewed (fundus.odir)": 1,
        "fundus: patient sex not female/male (fundus.odir)": 1,
    }

    ds = OdirDataset(out / "odir")
    assert len(ds) == 1
    record = ds[0]
    assert record.patient_id == reviewed.id  # the random study id, never the pseudonym
    assert record.labels == tuple(expected[c] for c in ODIR_LABELS)
    assert record.labels == (1, 0, 1, 0, 0, 0, 0, 0)
    assert record.age_years == 63.5 and record.sex == "female"
    assert record.left.name == f"{reviewed.id}_left.jpg" and record.right.read_bytes()[:3] == b"\xff\xd8\xff"
    assert record.left.read_bytes() == jpeg_bytes(120)  # JPEG copied byte for byte
    sheet = (out / "odir" / "labels.csv").read_text().splitlines()[0]
    assert sheet == (
        "ID,Patient Age,Patient Sex,Left-Fundus,Right-Fundus,Left-Diagnostic Keywords,Right-Diagnostic Keywords,"
        "N,D,G,C,A,H,M,O"
    )
    manifest = json.loads((out / "EXPORT.json").read_text())
    assert manifest["counts"]["by_dataset"] == {"odir": 1} and "not a diagnosis" in manifest["notice"].lower()
    provenance = manifest["records"][0]
    assert provenance["study_id"] == reviewed.id and len(provenance["feedback_ids"]) == 8  # newest per label
    assert reviewed.patient.pseudonym not in (out / "odir" / "labels.csv").read_text()

    # with --include-unreviewed the partial and unreviewed studies are filled from the model
    out2 = tmp_path / "export2"
    summary = export_feedback(session=db, blob_store=blobs, out=out2, site_id=site.name, include_unreviewed=True)
    assert summary.by_dataset == {"odir": 3} and summary.labels_from_model == 7 + 8
    by_id = {r.patient_id: r.labels for r in OdirDataset(out2 / "odir")}
    assert by_id[partial.id] == (0, 0, 0, 0, 0, 1, 0, 0)  # D corrected to 0, the rest from the model
    assert by_id[unreviewed.id] == tuple(int(_ODIR_MODEL[c]) for c in ODIR_LABELS)


def test_ptbxl_export_reads_back_with_corrections(db, world, blobs, tmp_path) -> None:
    site, clinician = world.b.site, world.b.users["reviewer"]
    patient = f.create_patient(db, site=site, year_of_birth=1950, sex="male")
    study = f.create_study(db, patient=patient)
    study.age_years = 71.0
    db.commit()
    _input(db, blobs, study, "ecg", _ecg_csv(500), filename="ecg.csv", media_type="text/csv", meta={"fs_hz": 500.0})
    ids = _analysis(db, study, "ecg.ptbxl", {"NORM": True, "MI": False, "STTC": False, "CD": False, "HYP": False})
    give_feedback(session=db, user=clinician, finding_id=ids["NORM"], action="correct", corrected_positive=False)
    give_feedback(session=db, user=clinician, finding_id=ids["MI"], action="correct", corrected_positive=True)
    give_feedback(session=db, user=clinician, finding_id=ids["STTC"], action="confirm")
    # relabelling CD as HYP: HYP present, CD absent
    give_feedback(
        session=db,
        user=clinician,
        finding_id=ids["CD"],
        action="correct",
        corrected_label="HYP",
        corrected_positive=True,
    )

    out = tmp_path / "export"
    summary = export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id)
    assert summary.by_dataset == {"ptbxl": 1}
    ds = PTBXLDataset(out / "ptbxl", sampling_rate=100)
    assert len(ds) == 1
    assert dict(zip(PTBXL_LABELS, ds.targets[0].tolist(), strict=True)) == {
        "NORM": 0.0,
        "MI": 1.0,
        "STTC": 0.0,
        "CD": 0.0,
        "HYP": 1.0,
    }
    assert ds.patient_ids[0] == stable_number(patient.id) and ds.frame["study_id"].tolist() == [study.id]
    assert ds.sex == ["male"] and ds.age_years[0] == 71.0
    x = ds.read_record(0)
    assert x.shape == (12, 1000)  # 10 s at 100 Hz
    t = np.arange(1000) / 100
    # lead II is the 1 mV, 1 Hz sine, resampled (edges excluded: the anti-aliasing filter's start-up)
    assert np.max(np.abs(x[1, 50:-50] - np.sin(2 * np.pi * t[50:-50]))) < 0.02
    assert PTBXLDataset(out / "ptbxl", sampling_rate=500).read_record(0).shape == (12, 5000)
    other = tmp_path / "none"
    assert export_feedback(session=db, blob_store=blobs, out=other, site_id=world.a.site.id).records == 0


def test_since_filters_by_review_time(db, world, blobs, tmp_path) -> None:
    site, clinician = world.a.site, world.a.users["clinician"]
    study = _fundus_study(db, blobs, site)
    _review_all(db, clinician, _analysis(db, study, "fundus.odir", _ODIR_MODEL), {})
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    summary = export_feedback(session=db, blob_store=blobs, out=tmp_path / "later", site_id=site.id, since=tomorrow)
    assert summary.records == 0 and not (tmp_path / "later" / "odir").exists()
    today = datetime.now(UTC).date()
    assert export_feedback(session=db, blob_store=blobs, out=tmp_path / "t", site_id=site.id, since=today).records


def test_a_deleted_patients_study_is_never_exported(db, world, blobs, tmp_path) -> None:
    """Before: ``vitalens feedback export`` still exported the studies of a patient an admin had deleted."""
    from vitalens.service.ops.patients import delete_patient

    site, clinician = world.a.site, world.a.users["clinician"]
    study = _fundus_study(db, blobs, site)
    _review_all(db, clinician, _analysis(db, study, "fundus.odir", _ODIR_MODEL), {})
    before = export_feedback(session=db, blob_store=blobs, out=tmp_path / "before", site_id=site.id)
    assert before.by_dataset == {"odir": 1}
    delete_patient(session=db, user=world.a.users["admin"], patient_id=study.patient_id)
    after = export_feedback(session=db, blob_store=blobs, out=tmp_path / "after", site_id=site.id)
    assert after.records == 0
    assert study.id not in (tmp_path / "after" / "EXPORT.json").read_text()


def test_export_is_atomic_and_refuses_non_empty_out(db, world, blobs, tmp_path, monkeypatch) -> None:
    site, clinician = world.a.site, world.a.users["clinician"]
    study = _fundus_study(db, blobs, site)
    _review_all(db, clinician, _analysis(db, study, "fundus.odir", _ODIR_MODEL), {})
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        export_feedback(session=db, blob_store=blobs, out=busy, site_id=site.id)
    with pytest.raises(InputError, match="unknown site"):
        export_feedback(session=db, blob_store=blobs, out=tmp_path / "s", site_id="no-such-site")

    def broken(key: str) -> bytes:
        raise OSError("disk gone")

    monkeypatch.setattr(blobs, "get", broken)
    with pytest.raises(OSError, match="disk gone"):
        export_feedback(session=db, blob_store=blobs, out=tmp_path / "failed", site_id=site.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs", "busy"]  # no half-written folder, no temp


def test_cli_export(db, db_engine, world, blobs, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from vitalens.cli import app
    from vitalens.config import get_settings

    if db_engine.dialect.name != "sqlite":
        pytest.skip("the CLI reads VITALENS_DATABASE_URL; the private PostgreSQL schema is not addressable by URL")
    study = _fundus_study(db, blobs, world.a.site)
    _review_all(db, world.a.users["clinician"], _analysis(db, study, "fundus.odir", _ODIR_MODEL), {"N": True})
    monkeypatch.setenv("VITALENS_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("VITALENS_BLOB_DIR", str(tmp_path / "blobs"))
    get_settings.cache_clear()
    try:
        out = tmp_path / "cli"
        args = ["feedback", "export", "--out", str(out), "--site", world.a.site.name]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "exported 1 records" in result.output and "fundus.odir: 1 records" in result.output
        assert [r.patient_id for r in OdirDataset(out / "odir")] == [study.id]
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 2 and "not empty" in again.output
        bad = CliRunner().invoke(app, ["feedback", "export", "--out", str(tmp_path / "x"), "--since", "May 1"])
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    finally:
        get_settings.cache_clear()
