"""Publish the analyst snapshot: a read-only copy of the staging database, swapped in atomically.

Why a copy: DuckDB lets one process write a file, and a reader holding the staging file would block
the sync (STACK.md trap 4). So at the end of each run the whole staging database is copied (under the
store's write lock, so it is one consistent state) into a temporary file next to the target, which is
then ``os.replace``-d onto ``<data_dir>/<org>.duckdb``. On POSIX the rename is atomic: an analyst who
holds the old file open keeps reading the old, complete run (their open file descriptor still points at
it) and sees the new run once they reconnect; nobody ever sees half a run, and the sync never waits
for an analyst.

The copy is in storage format ``v1.0.0`` so DuckDB 1.x clients (CLI, DBeaver, older Python) can open it,
not only DuckDB 2.0. A staging file created by this version is already in that format (``store.STORAGE_VERSION``):
after a CHECKPOINT (no write-ahead log left) its bytes are the database, so they are copied as they are — a
quiet night's publish costs a file copy (tens of ms for 60 MB), not a rewrite of every table (over a second at
2,000 donors). A staging file in a newer format (made by an older version of this tool) is rewritten table by
table into the old format with ``COPY FROM DATABASE`` as before. The file is made read-only (0444) as a hint to
open it with ``read_only=True`` / ``duckdb -readonly``.

Note for same-process readers: DuckDB's Python module shares one database instance per path within a
process, so ``duckdb.connect(path)`` inside a process that still holds the old snapshot keeps returning
the old instance; ``ATTACH 'path' (READ_ONLY)`` from a fresh connection always reads the current file.
"""

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bloom_pipeline.staging.store import STORAGE_VERSION, StagingStore

SNAPSHOT_STORAGE_VERSION = STORAGE_VERSION


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    published_at: datetime
    tables: dict[str, int]  # table name -> row count
    size_bytes: int


def publish_snapshot(store: StagingStore) -> SnapshotInfo:
    """Copy the org's staging database to its analyst snapshot and swap it in atomically."""
    target = store.snapshot_path
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with store.connect() as con:
            con.execute("CHECKPOINT")
            db_name, tags = con.execute(
                "SELECT database_name, tags FROM duckdb_databases() WHERE database_name = current_database()"
            ).fetchone() or ("", {})
            copied = _copy_bytes(store.path, tmp, dict(tags or {}))
            con.execute(
                "ATTACH ? AS analyst_snapshot "
                + ("(READ_ONLY)" if copied else "(STORAGE_VERSION '" + SNAPSHOT_STORAGE_VERSION + "')"),
                [str(tmp)],
            )
            try:
                if not copied:
                    con.execute(f'COPY FROM DATABASE "{_quote(db_name)}" TO analyst_snapshot')
                tables = {
                    name: int(
                        con.execute(
                            f'SELECT count(*) FROM analyst_snapshot.main."{_quote(name)}"'
                        ).fetchone()[0]
                    )  # type: ignore[index]
                    for (name,) in con.execute(
                        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'analyst_snapshot' "
                        "ORDER BY table_name"
                    ).fetchall()
                }
                if not copied:
                    con.execute("CHECKPOINT analyst_snapshot")
            finally:
                con.execute("DETACH analyst_snapshot")
        _fsync(tmp)
        os.chmod(tmp, 0o444)
        # A write-ahead log left beside the target by a client that opened it read-write belongs to the
        # old file; replayed against the new one it would corrupt it.
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{target}.wal")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
        raise
    return SnapshotInfo(target, datetime.now(UTC), tables, target.stat().st_size)


def _copy_bytes(staging: Path, tmp: Path, tags: dict[str, str]) -> bool:
    """Copy the checkpointed staging file to `tmp` when its bytes are a snapshot as they are: in the snapshot's
    storage format, and no write-ahead log beside it (what a CHECKPOINT leaves; anything else, the rewrite).
    The caller holds the store's write lock, so nothing writes the file meanwhile."""
    if tags.get("storage_version") != f"{SNAPSHOT_STORAGE_VERSION}+":
        return False
    wal = Path(f"{staging}.wal")
    if wal.exists() and wal.stat().st_size:
        return False
    shutil.copyfile(staging, tmp)
    return True


def _quote(identifier: str) -> str:
    return identifier.replace('"', '""')


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be fsync-ed
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
