"""The S3-compatible blob store against a local S3 server (moto, server mode): the same contract as the folder store,
checksummed writes, storage failures that are never mistaken for "absent", and failed uploads that leave no row."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.utils import factories as f
from tests.utils.s3 import S3Server, free_port, local_s3_server
from vitalens.config import Settings
from vitalens.errors import StorageError
from vitalens.store.blobs import BlobNotFoundError, S3BlobStore, atomic, blob_key_for, make_blob_store
from vitalens.store.models import Input, Study


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with local_s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.create_bucket(f"vt-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(s3: S3Server, bucket: str) -> S3BlobStore:
    made = make_blob_store(f"s3://{bucket}/clinic-a", endpoint_url=s3.endpoint_url)
    assert isinstance(made, S3BlobStore)
    return made


def test_put_get_exists_delete_and_listing(store: S3BlobStore, s3: S3Server, bucket: str) -> None:
    data = b"fundus bytes " + uuid.uuid4().bytes
    key = store.put(data)
    assert key == blob_key_for(data) and store.exists(key) and store.get(key) == data
    assert store.put(data) == key  # idempotent
    names = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert names == [f"clinic-a/{key}"], "keys live under the configured prefix"
    other = store.put(b"second")
    assert sorted(store.iter_keys()) == sorted([key, other])
    store.delete(key)
    assert not store.exists(key) and list(store.iter_keys()) == [other]
    with pytest.raises(BlobNotFoundError):
        store.get(key)
    store.delete(key)  # deleting an absent key is not an error


def test_written_with_sha256_checksum_and_verified_on_read(store: S3BlobStore, s3: S3Server, bucket: str) -> None:
    data = b"checksummed " + uuid.uuid4().bytes
    key = store.put(data)
    head = s3.client().head_object(Bucket=bucket, Key=f"clinic-a/{key}", ChecksumMode="ENABLED")
    import base64

    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    # Replace the object behind the store's back: the read no longer matches the content address.
    s3.client().put_object(Bucket=bucket, Key=f"clinic-a/{key}", Body=b"tampered")
    with pytest.raises(StorageError, match="does not match its content address"):
        store.get(key)


def test_unreachable_server_is_a_storage_error_not_absent() -> None:
    dead = make_blob_store("s3://nowhere", endpoint_url=f"http://127.0.0.1:{free_port()}")
    key = blob_key_for(b"x")
    with pytest.raises(StorageError, match="lookup failed"):
        dead.exists(key)
    with pytest.raises(StorageError, match="nothing was stored"):
        dead.put(b"x")


def test_bucket_name_is_required() -> None:
    with pytest.raises(ValueError, match="names no bucket"):
        make_blob_store("s3:///prefix")


def test_failed_commit_removes_the_object(db: Session, store: S3BlobStore) -> None:
    site = f.create_site(db)
    patient = f.create_patient(db, site=site)
    payload = b"unique s3 payload " + uuid.uuid4().bytes
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
                    created_by_id="0" * 32,  # unknown user → the commit fails
                )
            )
    assert not store.exists(blob_key_for(payload))
    assert db.scalar(select(Study).where(Study.patient_id == patient.id)) is None


def test_settings_select_the_s3_store(s3: S3Server, bucket: str) -> None:
    settings = Settings(environment="test", blob_url=f"s3://{bucket}/p", s3_endpoint_url=s3.endpoint_url)
    made = make_blob_store(settings.blob_location, endpoint_url=settings.s3_endpoint_url)
    assert isinstance(made, S3BlobStore) and made.bucket == bucket and made.prefix == "p/"
    assert Settings(environment="test").blob_location.endswith("blobs")
