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

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "StagedBlobs",
    "atomic",
    "blob_key_for",
    "make_blob_store",
    "BlobNotFoundError",
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


class S3BlobStore:
    """Blobs in an S3-compatible bucket (AWS, MinIO, Ceph) via ``boto3`` (install it to use this backend).

    Args:
        bucket: bucket name.
        prefix: key prefix inside the bucket (e.g. ``vitalens/``).
        client: a ready ``boto3`` S3 client; built from ``endpoint_url`` and the environment when omitted.
        endpoint_url: for S3-compatible servers.
    """

    def __init__(
        self, bucket: str, *, prefix: str = "", client: Any | None = None, endpoint_url: str | None = None
    ) -> None:
        if client is None:
            try:
                import boto3
            except ImportError as exc:  # pragma: no cover - depends on the deployment
                raise RuntimeError("the S3 blob store needs boto3: pip install boto3") from exc
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}{_check_key(key)}"

    def put(self, data: bytes) -> str:
        key = blob_key_for(data)
        if not self.exists(key):
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        return key

    def get(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if type(exc).__name__ in {"NoSuchKey", "ClientError"}:
                raise BlobNotFoundError(key) from None
            raise
        return bytes(obj["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))


def make_blob_store(target: str | Path) -> BlobStore:
    """A blob store for ``target``: ``s3://bucket/prefix`` → :class:`S3BlobStore`, anything else a folder."""
    text = str(target)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        endpoint = os.environ.get("VITALENS_S3_ENDPOINT_URL") or None
        return S3BlobStore(bucket, prefix=f"{prefix.rstrip('/')}/" if prefix else "", endpoint_url=endpoint)
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
