"""Blob store: content-addressed keys, atomic writes, no user paths; a failed commit leaves neither blob nor row."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.utils import factories as f
from vitalens.store.blobs import BlobNotFoundError, LocalBlobStore, atomic, blob_key_for, make_blob_store
from vitalens.store.models import Input, Study


def test_key_is_sha256_content_address(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = b"fundus bytes"
    digest = hashlib.sha256(data).hexdigest()
    key = store.put(data)
    assert key == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}" == blob_key_for(data)
    assert store.get(key) == data and store.exists(key)
    assert (tmp_path / "sha256" / digest[:2] / digest[2:4] / digest).read_bytes() == data
    assert store.put(data) == key  # idempotent
    assert not list(tmp_path.rglob(".tmp-*"))  # no temp files left


@pytest.mark.parametrize(
    "bad_key",
    ["../../etc/passwd", "sha256/aa/bb/" + "c" * 64, "sha256/../../" + "a" * 64, "/abs/path", "sha256/aa/aa/x"],
)
def test_keys_that_are_not_content_addresses_are_refused(tmp_path: Path, bad_key: str) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.get(bad_key)


def test_missing_blob(tmp_path: Path) -> None:
    with pytest.raises(BlobNotFoundError):
        LocalBlobStore(tmp_path).get(blob_key_for(b"never stored"))


def test_make_blob_store_local(tmp_path: Path) -> None:
    assert isinstance(make_blob_store(tmp_path / "b"), LocalBlobStore)


def test_failed_commit_leaves_no_blob_and_no_row(db: Session, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    site = f.create_site(db)
    patient = f.create_patient(db, site=site)
    payload = b"unique payload " + f.random_suffix().encode()
    with pytest.raises(Exception, match="FOREIGN KEY|foreign key"):  # noqa: B017 - backend-specific IntegrityError
        with atomic(db, store) as staged:
            study = Study(patient_id=patient.id, site_id=site.id, study_date=date(2024, 1, 1))
            db.add(study)
            db.flush()
            key = staged.put(payload)
            assert store.exists(key)
            db.add(
                Input(
                    study_id=study.id,
                    slot="ecg",
                    modality="ecg",
                    content_sha256="d" * 64,
                    media_type="text/csv",
                    size_bytes=len(payload),
                    blob_key=key,
                    created_by_id="0" * 32,
                )
            )  # unknown user → the commit fails
    assert not store.exists(blob_key_for(payload))
    assert db.scalar(select(Study).where(Study.patient_id == patient.id)) is None


def test_failed_block_keeps_blobs_that_existed_before(db: Session, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    shared = b"already stored by another study"
    key = store.put(shared)
    with pytest.raises(RuntimeError):
        with atomic(db, store) as staged:
            staged.put(shared)
            raise RuntimeError("boom")
    assert store.exists(key)


def test_successful_block_commits_both(db: Session, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    site = f.create_site(db)
    patient = f.create_patient(db, site=site)
    payload = f.png_bytes(seed=7)
    with atomic(db, store) as staged:
        study = Study(patient_id=patient.id, site_id=site.id, study_date=date(2024, 1, 1))
        db.add(study)
        db.flush()
        key = staged.put(payload)
        db.add(
            Input(
                study_id=study.id,
                slot="cxr",
                modality="cxr",
                content_sha256=key[-64:],
                media_type="image/png",
                size_bytes=len(payload),
                blob_key=key,
            )
        )
    db.expire_all()
    row = db.scalar(select(Input).where(Input.study_id == study.id))
    assert row is not None and store.get(row.blob_key) == payload
