"""Uploads through the API with the S3-compatible blob store (local moto server): stored in the bucket, and a
storage failure is a 503 that leaves no study, input or blob behind."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.service.conftest import World
from tests.utils import factories as f
from tests.utils.s3 import S3Server, local_s3_server
from vitalens.store.blobs import S3BlobStore, make_blob_store
from vitalens.store.models import Input, Study


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with local_s3_server() as server:
        yield server


@pytest.fixture
def store(s3: S3Server) -> S3BlobStore:
    bucket = s3.create_bucket(f"vt-{uuid.uuid4().hex[:12]}")
    made = make_blob_store(f"s3://{bucket}", endpoint_url=s3.endpoint_url)
    assert isinstance(made, S3BlobStore)
    return made


def _create(client: TestClient, world: World, png: bytes):
    return client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-03-01"},
        files={"fundus_left": ("x.png", png, "image/png")},
        headers=world.a.headers["clinician"],
    )


def test_api_upload_lands_in_the_bucket(client: TestClient, db: Session, world: World, store: S3BlobStore) -> None:
    client.app.state.blobs = store
    png = f.png_bytes(seed=31)
    resp = _create(client, world, png)
    assert resp.status_code == 201, resp.text
    row = db.get(Input, resp.json()["inputs"][0]["id"])
    assert row is not None and store.get(row.blob_key) == png
    dl = client.get(f"/api/v1/studies/{resp.json()['id']}/inputs/{row.id}/content", headers=world.a.headers["reviewer"])
    assert dl.status_code == 200 and dl.content == png


def test_api_upload_failing_in_storage_is_503_and_leaves_no_row(
    client: TestClient, db: Session, world: World, s3: S3Server
) -> None:
    # A bucket that does not exist: the server refuses the write after the study row was flushed.
    client.app.state.blobs = make_blob_store(f"s3://missing-{uuid.uuid4().hex[:8]}", endpoint_url=s3.endpoint_url)
    png = f.png_bytes(seed=32)
    resp = _create(client, world, png)
    assert resp.status_code == 503, resp.text
    assert "storage unavailable" in resp.json()["detail"] and "nothing was stored" in resp.json()["detail"]
    db.expire_all()
    others = select(Study).where(Study.patient_id == world.a.patient.id, Study.id != world.a.study.id)
    assert db.scalar(others) is None
    assert db.scalar(select(Input).where(Input.content_sha256 == hashlib.sha256(png).hexdigest())) is None
