"""``vitalens backup`` / ``vitalens restore``: the database and every blob in one portable, verifiable archive.

Why a logical archive and not ``pg_dump`` or a copy of the SQLite file: one format for both backends (a one-machine
SQLite install can be restored into PostgreSQL when it scales out, and back), one archive for rows *and* blobs
(a database without its images, ECGs and signed PDFs is not a backup), and a manifest with the schema revision, the
row count of every table and the SHA-256 of every member, so a restore proves it lost nothing.

Consistency: rows are read in one snapshot (PostgreSQL ``REPEATABLE READ READ ONLY``; SQLite through its online
backup API into a private copy). Blobs are content-addressed and never rewritten, so copying them after the
snapshot cannot mix versions; a blob a row references that the store lacks fails the backup.

Archive layout (a tar file, written to a temporary name and renamed, mode 0600 since it holds patient data)::

    manifest.json            format, created_at, alembic revision, tables (rows, sha256), blobs (count, bytes)
    db/<table>.jsonl.gz      one JSON object per row; datetimes/dates ISO 8601, bytes base64
    blobs/sha256/aa/bb/<hex> the blob's bytes (its name is its content address)
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import logging
import os
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, func, insert, select, text
from sqlalchemy import types as sqltypes

from vitalens.errors import VitalensError
from vitalens.store.blobs import BlobStore, StagedBlobs, _check_key, blob_key_for

__all__ = ["BACKUP_FORMAT", "BackupError", "BackupSummary", "backup", "restore", "read_manifest"]

logger = logging.getLogger(__name__)

BACKUP_FORMAT = "vitalens-backup/1"
_SKIP_TABLES = frozenset({"alembic_version"})


class BackupError(VitalensError):
    """A backup or restore that cannot be done safely (the message says why); nothing was changed."""


@dataclass
class BackupSummary:
    """What an archive holds (and what a restore wrote)."""

    path: str
    revision: str | None
    tables: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ values


def _is(col_type: Any, kind: type) -> bool:
    impl = getattr(col_type, "impl", None)
    return isinstance(col_type, kind) or (impl is not None and isinstance(impl, kind))


def _encode(value: Any) -> Any:
    """A row value as JSON: datetimes in UTC ISO 8601, dates ISO, bytes base64, Decimals as strings."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(value: Any, col_type: Any) -> Any:
    """The JSON value back to what the target column takes (the target's own reflected type decides)."""
    if value is None:
        return None
    if _is(col_type, sqltypes.JSON):
        return value
    if _is(col_type, sqltypes.DateTime) and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if _is(col_type, sqltypes.Date) and isinstance(value, str):
        return date.fromisoformat(value[:10])
    if _is(col_type, sqltypes.LargeBinary) and isinstance(value, str):
        return base64.b64decode(value)
    if _is(col_type, sqltypes.Numeric) and not _is(col_type, sqltypes.Float) and isinstance(value, str):
        return Decimal(value)
    return value


# ------------------------------------------------------------------------------------------------ snapshot


def _reflect(conn: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=conn)
    return metadata


def _tables(metadata: MetaData) -> list[Table]:
    """Tables parents-first (foreign keys), without Alembic's bookkeeping table."""
    return [t for t in metadata.sorted_tables if t.name not in _SKIP_TABLES]


def _revision(conn: Connection, metadata: MetaData) -> str | None:
    if "alembic_version" not in metadata.tables:
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise BackupError(f"the database has {len(rows)} Alembic heads ({', '.join(rows)}); resolve them first")
    return str(rows[0]) if rows else None


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one consistent state of the whole database for as long as it is open."""
    from sqlalchemy import create_engine

    if engine.dialect.name == "sqlite":
        source = engine.url.database
        with tempfile.TemporaryDirectory(prefix="vitalens-backup-") as tmp:
            copy = Path(tmp) / "snapshot.db"
            if source and source != ":memory:":
                src = sqlite3.connect(source)
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst)  # SQLite's online backup: a consistent copy while writers go on
                finally:
                    dst.close()
                    src.close()
            snap = create_engine(f"sqlite:///{copy}")
            try:
                with snap.connect() as conn:
                    yield conn
            finally:
                snap.dispose()
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            yield conn


def _blob_columns(table: Table) -> list[str]:
    """Columns that hold content addresses (``blob_key``, ``heatmap_blob_key``, ...)."""
    return [c.name for c in table.columns if c.name == "blob_key" or c.name.endswith("_blob_key")]


# ------------------------------------------------------------------------------------------------ backup


def _add_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def backup(*, engine: Engine, blobs: BlobStore, out: Path, all_blobs: bool = True) -> BackupSummary:
    """Write the whole database and the blobs to the archive ``out`` (refused if it exists).

    Args:
        engine: the database to back up (SQLite or PostgreSQL).
        blobs: its blob store (folder or S3).
        out: the archive to create.
        all_blobs: include every blob in the store (default), not only the ones rows reference; orphans cost
            space but a backup should not decide what is garbage.

    Raises:
        BackupError: ``out`` exists, the database has several Alembic heads, or a referenced blob is missing.
    """
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} already exists; a backup never overwrites a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    summary = BackupSummary(path=str(out), revision=None)
    manifest: dict[str, Any] = {"format": BACKUP_FORMAT, "created_at": now.isoformat(), "tables": {}}
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tarfile.open(tmp, "w") as tar, _snapshot(engine) as conn:
            metadata = _reflect(conn)
            summary.revision = _revision(conn, metadata)
            manifest["revision"] = summary.revision
            manifest["dialect"] = engine.dialect.name
            referenced: set[str] = set()
            for table in _tables(metadata):
                buf = io.BytesIO()
                count = 0
                key_cols = _blob_columns(table)
                order = list(table.primary_key.columns) or list(table.columns)
                with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
                    for row in conn.execute(select(table).order_by(*order)).mappings():
                        record = {k: _encode(v) for k, v in row.items()}
                        gz.write(json.dumps(record, ensure_ascii=False, sort_keys=True).encode() + b"\n")
                        referenced.update(str(row[c]) for c in key_cols if row[c])
                        count += 1
                data = buf.getvalue()
                _add_member(tar, f"db/{table.name}.jsonl.gz", data, now.timestamp())
                manifest["tables"][table.name] = {"rows": count, "sha256": hashlib.sha256(data).hexdigest()}
                summary.tables[table.name] = count
            keys = set(blobs.iter_keys()) if all_blobs else set()
            missing = (
                sorted(k for k in referenced if not blobs.exists(k)) if not all_blobs else sorted(referenced - keys)
            )
            if missing:
                raise BackupError(
                    f"{len(missing)} blob(s) referenced by the database are missing from the store, e.g. {missing[0]}"
                )
            for key in sorted(keys | referenced):
                data = blobs.get(_check_key(key))
                _add_member(tar, f"blobs/{key}", data, now.timestamp())
                summary.blobs += 1
                summary.blob_bytes += len(data)
            manifest["blobs"] = {"count": summary.blobs, "bytes": summary.blob_bytes}
            _add_member(tar, "manifest.json", json.dumps(manifest, indent=2).encode(), now.timestamp())
        tmp.chmod(0o600)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info(
        "backup %s: %d tables, %d blobs (%d bytes)", out, len(summary.tables), summary.blobs, summary.blob_bytes
    )
    return summary


# ------------------------------------------------------------------------------------------------ restore


def read_manifest(archive: Path) -> dict[str, Any]:
    """The archive's manifest (format checked)."""
    try:
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest: dict[str, Any] = json.loads(member.read())
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError) as exc:
        raise BackupError(f"{archive} is not a vitalens backup: {exc}") from exc
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{archive} has format {manifest.get('format')!r}; this vitalens reads {BACKUP_FORMAT}")
    return manifest


def _check_empty(conn: Connection, tables: list[Table]) -> None:
    filled = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar_one()]
    if filled:
        raise BackupError(f"restore needs an empty database; these tables hold rows: {', '.join(filled)}")


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: move each serial column's sequence past the restored ids (inserted ids bypass it)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for col in table.primary_key.columns:
            if not _is(col.type, sqltypes.Integer):
                continue
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col.name})
            name = seq.scalar()
            if name:
                conn.execute(
                    text(f'SELECT setval(:s, COALESCE((SELECT MAX("{col.name}") FROM "{table.name}"), 0) + 1, false)'),
                    {"s": name},
                )


def restore(*, archive: Path, engine: Engine, blobs: BlobStore, url: str | None = None) -> BackupSummary:
    """Restore ``archive`` into an empty database and the blob store, verifying every member.

    The database is first migrated to the archive's revision, the rows are inserted parents-first in one
    transaction, then the schema is migrated to this vitalens's head (so an older backup restores into a newer
    version). Blobs are written first and removed again if the rows fail.

    Args:
        url: the database URL for the migrations (default: the engine's URL).

    Raises:
        BackupError: not a backup, a member whose SHA-256 does not match, a non-empty database, or row counts
            that differ from the manifest after the restore.
    """
    from vitalens.store.migrate import upgrade

    archive = Path(archive)
    manifest = read_manifest(archive)
    revision = manifest.get("revision")
    target_url = url or engine.url.render_as_string(hide_password=False)
    summary = BackupSummary(path=str(archive), revision=revision)
    with tarfile.open(archive, "r") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            handle = tar.extractfile(members[name])
            if handle is None:  # explicit, not ``assert``: the check must survive ``python -O``
                raise BackupError(f"archive member {name} is not a regular file")
            return handle.read()

        tables_doc: dict[str, Any] = manifest.get("tables", {})
        payloads: dict[str, bytes] = {}
        for name, doc in tables_doc.items():
            member = f"db/{name}.jsonl.gz"
            if member not in members:
                raise BackupError(f"the archive lacks {member}, which its manifest lists")
            payloads[name] = read(member)
            if hashlib.sha256(payloads[name]).hexdigest() != doc.get("sha256"):
                raise BackupError(f"{member} does not match the SHA-256 in the manifest (damaged archive)")

        with engine.begin() as conn:
            if revision:
                upgrade(target_url, revision, connection=conn)
        staged = StagedBlobs(blobs)
        try:
            for name in sorted(n for n in members if n.startswith("blobs/")):
                key = _check_key(name[len("blobs/") :])
                data = read(name)
                if blob_key_for(data) != key:
                    raise BackupError(f"blob {key} in the archive does not match its content address (damaged)")
                staged.put(data)
                summary.blobs += 1
                summary.blob_bytes += len(data)
            with engine.begin() as conn:
                metadata = _reflect(conn)
                tables = _tables(metadata)
                _check_empty(conn, tables)
                unknown = set(tables_doc) - {t.name for t in tables}
                if unknown:
                    raise BackupError(f"the archive has tables this schema lacks: {', '.join(sorted(unknown))}")
                for table in tables:
                    if table.name not in payloads:
                        continue
                    rows = []
                    for line in gzip.decompress(payloads[table.name]).splitlines():
                        record = json.loads(line)
                        rows.append(
                            {c.name: _decode(record[c.name], c.type) for c in table.columns if c.name in record}
                        )
                    for start in range(0, len(rows), 500):
                        conn.execute(insert(table), rows[start : start + 500])
                    summary.tables[table.name] = len(rows)
                _reset_sequences(conn, tables)
                for table in tables:
                    expected = int(tables_doc.get(table.name, {}).get("rows", 0))
                    actual = conn.execute(select(func.count()).select_from(table)).scalar_one()
                    if actual != expected:
                        raise BackupError(f"table {table.name}: {actual} rows after restore, manifest says {expected}")
        except BaseException:
            staged.rollback()
            raise
    with engine.begin() as conn:
        upgrade(target_url, "head", connection=conn)
    logger.info("restored %s: %d tables, %d blobs", archive, len(summary.tables), summary.blobs)
    return summary
