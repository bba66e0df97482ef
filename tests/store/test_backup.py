"""``vitalens backup`` / ``restore``: a round trip that loses no row and no blob (SQLite, PostgreSQL, and SQLite →
PostgreSQL), damaged archives refused, a non-empty target refused with nothing written."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session

from tests.utils import factories as f
from tests.utils.databases import BACKENDS, migrated_engine
from vitalens.store import LocalBlobStore, make_session_factory
from vitalens.store.backup import BackupError, backup, read_manifest, restore
from vitalens.store.models import (
    Analysis,
    AnalysisStage,
    Annotation,
    AuditEvent,
    Conversation,
    ConversationMessage,
    Explanation,
    ExternalIdentity,
    Feedback,
    Finding,
    Input,
    Measurement,
    RefreshToken,
    Report,
    RevokedToken,
    new_id,
)


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A private migrated database per test: a backup covers the whole database, so no other test's rows."""
    with migrated_engine(request.param, tmp_path / f"src-{request.param}") as engine:
        yield engine


@pytest.fixture
def db(source: Engine) -> Iterator[Session]:
    with make_session_factory(source)() as session:
        yield session


def _populate(db: Session, blobs: LocalBlobStore) -> dict[str, str]:
    """One clinical history touching every table, with blobs for the input, the heat map, a mask and the PDF."""
    site = f.create_site(db)
    user = f.create_user(db, site=site, role="clinician")
    patient = f.create_patient(db, site=site, year_of_birth=1961, sex="female")
    study = f.create_study(db, patient=patient, study_date=date(2024, 2, 29), description="annual — ü ✓")
    now = datetime(2024, 2, 29, 10, 15, 30, 123456, tzinfo=UTC)
    png = f.png_bytes(seed=41)
    heat, overlay, mask, pdf = b"heat" + png[:50], b"overlay" + png[:60], b"mask-bits", b"%PDF-1.7 signed"
    inp = Input(
        study_id=study.id,
        slot="fundus_left",
        modality="fundus",
        eye="left",
        filename="l.png",
        content_sha256="0" * 64,
        media_type="image/png",
        size_bytes=len(png),
        blob_key=blobs.put(png),
        width=96,
        height=80,
        meta={"dicom": {"laterality": "left", "age_years": 62.0}, "list": [1, 2.5, None]},
        created_by_id=user.id,
    )
    db.add(inp)
    db.flush()
    analysis = Analysis(
        study_id=study.id, status="COMPLETE", analyzers=["fundus.odir"], versions={"fundus.odir": {"version": "1"}}
    )
    analysis.requested_by_id, analysis.started_at, analysis.finished_at = user.id, now, now + timedelta(seconds=2)
    db.add(analysis)
    db.flush()
    stage = AnalysisStage(analysis_id=analysis.id, position=1, name="fundus.odir", status="COMPLETE", duration_ms=12.5)
    stage.result = {"findings": [{"code": "H", "p": 0.71}]}
    db.add(stage)
    db.flush()
    finding = Finding(
        analysis_id=analysis.id, stage_id=stage.id, analyzer="fundus.odir", code="H", label="Hypertension",
        probability=0.7123456789, threshold=0.5, positive=True, calibrated=True, band="High",
    )  # fmt: skip
    db.add(finding)
    db.flush()
    db.add_all(
        [
            Explanation(
                analysis_id=analysis.id, stage_id=stage.id, analyzer="fundus.odir", target="H",
                input_name="fundus_left", input_id=inp.id, method="grad-cam",
                heatmap_blob_key=blobs.put(heat), overlay_blob_key=blobs.put(overlay), note="Grad-CAM",
            ),
            Measurement(
                analysis_id=analysis.id, analyzer="ecg.intervals", name="QTc", value=452.0, unit="ms",
                reference_low=350.0, reference_high=450.0, flag="high",
            ),
            Annotation(
                root_id=new_id(), study_id=study.id, input_id=inp.id, analysis_id=analysis.id,
                finding_id=finding.id, author_id=user.id, label="haemorrhage", shape="mask",
                geometry={"points": [[1, 2], [3, 4]]}, mask_blob_key=blobs.put(mask),
            ),
            Feedback(
                finding_id=finding.id, analysis_id=analysis.id, author_id=user.id, action="correct",
                corrected_label="N", corrected_positive=False, comment="normal on review",
            ),
            Report(
                study_id=study.id, analysis_id=analysis.id, status="signed", blob_key=blobs.put(pdf),
                content_sha256="1" * 64, size_bytes=len(pdf), signed_by_id=user.id,
            ),
            RefreshToken(
                user_id=user.id, family_id=new_id(), token_hash=new_id() * 2, expires_at=now + timedelta(days=7)
            ),
            RevokedToken(jti="jti-" + f.random_suffix(), user_id=user.id, expires_at=now),
            Conversation(id=(conversation_id := new_id()), study_id=study.id, user_id=user.id, title="fundus?"),
            ConversationMessage(conversation_id=conversation_id, position=0, role="user", text="What was found?"),
            ConversationMessage(
                conversation_id=conversation_id, position=1, role="assistant", text="…", tier="template",
                citations=[{"id": "finding:1"}], warnings=["decision support"],
            ),
            ExternalIdentity(user_id=user.id, issuer="https://idp.example.org", subject="sub-" + f.random_suffix()),
            AuditEvent(actor_id=user.id, action="study.create", record_type="study", record_id=study.id,
                       patient_id=patient.id, detail={"slots": ["fundus_left"]}),
            AuditEvent(actor_id=user.id, action="input.upload", record_type="input", record_id=inp.id, at=now),
        ]
    )  # fmt: skip
    db.commit()
    return {"study": study.id, "input": inp.id}


def _dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (reflected), ordered by primary key; datetimes normalised to aware UTC."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings().all()
            out[table.name] = [
                {
                    k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v)
                    for k, v in row.items()
                }
                for row in rows
            ]
    return out


def test_round_trip_loses_nothing(db: Session, source: Engine, tmp_path: Path) -> None:
    source_blobs = LocalBlobStore(tmp_path / "blobs-src")
    _populate(db, source_blobs)
    archive = tmp_path / "backup.tar"
    summary = backup(engine=source, blobs=source_blobs, out=archive)
    assert archive.stat().st_mode & 0o777 == 0o600, "a backup holds patient data: owner-only"
    before = _dump(source)
    assert all(before[t] for t in before), f"the fixture leaves tables empty: {[t for t in before if not before[t]]}"
    assert summary.tables == {t: len(rows) for t, rows in before.items()}
    assert summary.blobs == len(list(source_blobs.iter_keys())) == 5
    manifest = read_manifest(archive)
    assert manifest["revision"] == summary.revision and manifest["revision"] is not None

    backend = source.dialect.name
    with migrated_engine(backend, tmp_path / "target") as target:
        target_blobs = LocalBlobStore(tmp_path / "blobs-dst")
        restored = restore(archive=archive, engine=target, blobs=target_blobs, url=_url(target))
        assert restored.tables == summary.tables and restored.blobs == summary.blobs
        assert _dump(target) == before, "every row of every table comes back identical"
        for key in source_blobs.iter_keys():
            assert target_blobs.get(key) == source_blobs.get(key)
        # The restored database keeps working: new audit ids continue after the restored ones (PostgreSQL serial).
        with make_session_factory(target)() as session:
            session.add(AuditEvent(action="backup.check", record_type="system"))
            session.commit()
            ids = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
            assert len(set(ids)) == len(ids) == len(before["audit_events"]) + 1


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_sqlite_backup_restores_into_postgresql(tmp_path: Path) -> None:
    """The scale-out path: a one-machine SQLite install moved to PostgreSQL through a backup."""
    with migrated_engine("sqlite", tmp_path / "src") as source:
        blobs = LocalBlobStore(tmp_path / "b1")
        with make_session_factory(source)() as session:
            ids = _populate(session, blobs)
        backup(engine=source, blobs=blobs, out=tmp_path / "b.tar")
        before = _dump(source)
    with migrated_engine("postgresql", tmp_path / "dst") as target:
        restore(archive=tmp_path / "b.tar", engine=target, blobs=LocalBlobStore(tmp_path / "b2"), url=_url(target))
        after = _dump(target)
        assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
        with make_session_factory(target)() as session:
            inp = session.get(Input, ids["input"])
            assert inp is not None and inp.meta["dicom"]["age_years"] == 62.0 and inp.meta["list"] == [1, 2.5, None]
            finding = session.scalar(select(Finding).where(Finding.code == "H"))
            assert finding is not None and finding.probability == 0.7123456789
            stamp = session.scalar(select(AuditEvent.at).where(AuditEvent.action == "input.upload"))
            assert stamp == datetime(2024, 2, 29, 10, 15, 30, 123456, tzinfo=UTC)


def test_non_empty_target_is_refused_and_nothing_written(db: Session, source: Engine, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "src")
    _populate(db, blobs)
    archive = tmp_path / "b.tar"
    backup(engine=source, blobs=blobs, out=archive)
    with pytest.raises(BackupError, match="already exists"):
        backup(engine=source, blobs=blobs, out=archive)
    target_blobs = LocalBlobStore(tmp_path / "dst")
    with pytest.raises(BackupError, match="restore needs an empty database; these tables hold rows"):
        restore(archive=archive, engine=source, blobs=target_blobs, url=_url(source))
    assert list(target_blobs.iter_keys()) == [], "blobs written before the refusal are removed again"


def test_damaged_archive_is_refused(db: Session, source: Engine, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "src")
    _populate(db, blobs)
    archive = tmp_path / "b.tar"
    backup(engine=source, blobs=blobs, out=archive)
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("blobs/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            import io

            dst.addfile(member, io.BytesIO(data))
    with migrated_engine(source.dialect.name, tmp_path / "t") as target:
        with pytest.raises(BackupError, match="does not match its content address"):
            restore(archive=damaged, engine=target, blobs=LocalBlobStore(tmp_path / "d"), url=_url(target))
    (tmp_path / "not.tar").write_bytes(b"hello")
    with pytest.raises(BackupError, match="is not a vitalens backup"):
        read_manifest(tmp_path / "not.tar")


def test_missing_referenced_blob_fails_the_backup(db: Session, source: Engine, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "src")
    _populate(db, blobs)
    victim = next(iter(blobs.iter_keys()))
    blobs.delete(victim)
    with pytest.raises(BackupError, match="blob\\(s\\) referenced by the database are missing"):
        backup(engine=source, blobs=blobs, out=tmp_path / "b.tar")
    assert not (tmp_path / "b.tar").exists() and not list(tmp_path.glob(".b.tar.*"))


def test_cli_backup_and_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from vitalens.cli import app
    from vitalens.config import get_settings

    with migrated_engine("sqlite", tmp_path / "a") as source:
        with make_session_factory(source)() as session:
            _populate(session, LocalBlobStore(tmp_path / "a-blobs"))
        before = _dump(source)
        src_url = _url(source)
    try:
        monkeypatch.setenv("VITALENS_DATABASE_URL", src_url)
        monkeypatch.setenv("VITALENS_BLOB_DIR", str(tmp_path / "a-blobs"))
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["backup", "--out", str(tmp_path / "cli.tar")])
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(app, ["backup", "--out", str(tmp_path / "cli.tar")])
        assert again.exit_code == 2 and "already exists" in again.output
        monkeypatch.setenv("VITALENS_DATABASE_URL", f"sqlite:///{tmp_path / 'b' / 'restored.db'}")
        monkeypatch.setenv("VITALENS_BLOB_DIR", str(tmp_path / "b-blobs"))
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["restore", str(tmp_path / "cli.tar")])
        assert result.exit_code == 0, result.output
        assert '"blobs": 5' in result.output
    finally:
        get_settings.cache_clear()
    from vitalens.store import make_engine

    restored = make_engine(f"sqlite:///{tmp_path / 'b' / 'restored.db'}")
    try:
        assert _dump(restored) == before
    finally:
        restored.dispose()
