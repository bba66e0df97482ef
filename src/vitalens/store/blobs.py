"""Content-addressed blob storage (local folder by default, S3-compatible optionally) and atomic commits.

Why content-addressed: a key is ``sha256/<aa>/<bb>/<digest>`` computed from the bytes, so no user-given name ever
reaches the file system (no path traversal, no unicode surprises), identical uploads are stored once, and a key
proves the integrity of what it names. Why :func:`atomic`: a study's blobs and rows must be committed together;
if the database commit fails, the blobs written for it are removed again, so a failure leaves neither.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from vitalens.errors import StorageError

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "StagedBlobs",
    "atomic",
    "blob_key_for",
    "make_blob_store",
    "BlobNotFoundError",
    "StorageError",
]

logger = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


class BlobNotFoundError(KeyError):
    """No blob is stored under that key."""


def blob_key_for(data: bytes) -> str:
    """The content address of ``data``: ``sha256/<first 2 hex>/<next 2 hex>/<64 hex>``."""
    digest = hashlib.sha256(data).hexdigest()
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def _check_key(key: str) -> str:
    """Refuse anything that is not a well-formed content address (so keys can never name arbitrary paths)."""
    match = _KEY_RE.match(key)
    if not match or match.group(3)[:2] != match.group(1) or match.group(3)[2:4] != match.group(2):
        raise ValueError(f"invalid blob key {key!r}; expected 'sha256/aa/bb/<64 hex digest>'")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """What every blob backend offers. Keys are content addresses made by the store, never by callers."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its key."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises :class:`BlobNotFoundError`."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def iter_keys(self) -> Iterator[str]:
        """Every key in the store (backups)."""
        ...


class LocalBlobStore:
    """Blobs as files under ``root`` (``root/sha256/aa/bb/<digest>``), written atomically (temp file + rename)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file of ``key`` (validated; always inside ``root``)."""
        return self.root.joinpath(*_check_key(key).split("/"))

    def put(self, data: bytes) -> str:
        key = blob_key_for(data)
        path = self.path_for(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.debug("stored blob %s (%d bytes)", key, len(data))
        return key

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        """Every content address stored under ``root`` (temp files of interrupted writes are skipped)."""
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for path in sorted(base.glob("*/*/*")):
            key = "/".join(path.relative_to(self.root).parts)
            if path.is_file() and _KEY_RE.match(key):
                yield key


def _is_not_found(exc: Exception) -> bool:
    """True for botocore's 404 / NoSuchKey answers (and only those)."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"404", "NoSuchKey", "NotFound"} or status == 404


class S3BlobStore:
    """Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW) via ``boto3``.

    Why these choices: every object is written with its SHA-256 checksum, so the server refuses a body damaged in
    transit; a read is checked against the content address; transport and server failures surface as
    :class:`~vitalens.errors.StorageError` (HTTP 503, and :func:`atomic` undoes the rows), never as "not found",
    so a flaky network can never make the store believe a blob is absent and skip writing it.

    Args:
        bucket: bucket name.
        prefix: key prefix inside the bucket (e.g. ``vitalens/``).
        client: a ready ``boto3`` S3 client; built from ``endpoint_url`` and the environment (``AWS_*``) otherwise.
        endpoint_url: for S3-compatible servers (``http://minio:9000``).
    """

    def __init__(
        self, bucket: str, *, prefix: str = "", client: Any | None = None, endpoint_url: str | None = None
    ) -> None:
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:  # pragma: no cover - depends on the deployment
                raise RuntimeError("the S3 blob store needs boto3: pip install 'vitalens[s3]'") from exc
            config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
            client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _name(self, key: str) -> str:
        return f"{self.prefix}{_check_key(key)}"

    def _fail(self, what: str, key: str, exc: Exception) -> StorageError:
        logger.error("S3 %s of %s in bucket %s failed: %s", what, key, self.bucket, exc)
        return StorageError(f"object storage {what} failed ({type(exc).__name__}); nothing was stored")

    def put(self, data: bytes) -> str:
        import base64

        key = blob_key_for(data)
        if self.exists(key):
            return key
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._name(key), Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum
            )
        except Exception as exc:
            raise self._fail("write", key, exc) from exc
        logger.debug("stored blob %s (%d bytes) in s3://%s/%s", key, len(data), self.bucket, self.prefix)
        return key

    def get(self, key: str) -> bytes:
        name = self._name(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=name)
            data = bytes(obj["Body"].read())
        except Exception as exc:
            if _is_not_found(exc):
                raise BlobNotFoundError(key) from None
            raise self._fail("read", key, exc) from exc
        if blob_key_for(data) != key:
            raise StorageError(f"blob {key} read back from object storage does not match its content address")
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if _is_not_found(exc):
                return False
            raise self._fail("lookup", key, exc) from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if not _is_not_found(exc):
                raise self._fail("delete", key, exc) from exc

    def iter_keys(self) -> Iterator[str]:
        """Every content address under the prefix (for backups and consistency checks)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}sha256/"):
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(self.prefix) :]
                    if _KEY_RE.match(name):
                        yield name
        except Exception as exc:
            raise self._fail("listing", "*", exc) from exc


def make_blob_store(target: str | Path, *, endpoint_url: str | None = None) -> BlobStore:
    """A blob store for ``target``: ``s3://bucket/prefix`` → :class:`S3BlobStore`, anything else a folder.

    Args:
        target: ``Settings.blob_location`` (``VITALENS_BLOB_URL`` or the blob folder).
        endpoint_url: the S3-compatible server (``VITALENS_S3_ENDPOINT_URL``); AWS when omitted.
    """
    text = str(target)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"blob location {text!r} names no bucket; expected s3://bucket[/prefix]")
        endpoint = endpoint_url or os.environ.get("VITALENS_S3_ENDPOINT_URL") or None
        return S3BlobStore(bucket, prefix=f"{prefix.strip('/')}/" if prefix.strip("/") else "", endpoint_url=endpoint)
    return LocalBlobStore(Path(text))


class StagedBlobs:
    """Blobs written during one :func:`atomic` block; the ones that did not exist before are undone on failure."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.created: list[str] = []

    def put(self, data: bytes) -> str:
        """Store ``data`` and remember the key if this call created it."""
        key = blob_key_for(data)
        existed = self.store.exists(key)
        self.store.put(data)
        if not existed:
            self.created.append(key)
        return key

    def rollback(self) -> None:
        """Delete the blobs this block created (best effort; logged)."""
        for key in reversed(self.created):
            try:
                self.store.delete(key)
            except Exception:  # pragma: no cover - logged, nothing else to do
                logger.exception("could not remove blob %s after a failed commit", key)
        self.created.clear()


@contextmanager
def atomic(session: Session, store: BlobStore) -> Iterator[StagedBlobs]:
    """Write blobs and rows as one unit: commit the session at the end, or undo both.

    Example:
        >>> with atomic(session, blobs) as staged:  # doctest: +SKIP
        ...     key = staged.put(data)
        ...     session.add(Input(..., blob_key=key))

    Raises:
        Whatever the block or the commit raised, after rolling the session back and deleting new blobs.
    """
    staged = StagedBlobs(store)
    try:
        yield staged
        session.commit()
    except BaseException:
        session.rollback()
        staged.rollback()
        raise
