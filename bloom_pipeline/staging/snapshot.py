"""Publish the analyst snapshot: a read-only copy of the staging database, swapped in atomically.

Why a copy: DuckDB lets one process write a file, and a reader holding the staging file would block
the sync (STACK.md trap 4). So at the end of each run the whole staging database is copied (under the
store's write lock, so it is one consistent state) into a temporary file next to the target, which is
then ``os.replace``-d onto ``<data_dir>/<org>.duckdb``. On POSIX the rename is atomic: an analyst who
holds the old file open keeps reading the old, complete run (their open file descriptor still points at
it) and sees the new run once they reconnect; nobody ever sees half a run, and the sync never waits
for an analyst.

The copy is written with ``STORAGE_VERSION 'v1.0.0'`` so DuckDB 1.x clients (CLI, DBeaver, older
Python) can open it, not only DuckDB 2.0. The file is made read-only (0444) as a hint to open it with
``read_only=True`` / ``duckdb -readonly``.

What a publish costs is what changed (``_publish_changes``): the previous snapshot file is copied to the
temporary file (a file copy, no database work), attached read-write, and brought to the staging database's
state table by table. A table whose fingerprint (row count and the sum of a hash of every row) equals the
staging table's is left as it is; one that differs has the rows only it holds deleted and the rows only the
staging table holds inserted (both found by the row hash); a table that is new, has another definition, or
holds two identical rows is copied whole; a table the staging database no longer has is dropped; sequences are
advanced to the staging database's values. The result is checked against the staging fingerprints before the
swap. A previous snapshot that is missing, unreadable, in another storage version, or whose catalog holds
anything but tables and sequences that cannot be brought up to date (views, macros, a sequence ahead of
the staging one) is not patched: the whole database is copied as before (``_copy_everything``).

Note for same-process readers: DuckDB's Python module shares one database instance per path within a
process, so ``duckdb.connect(path)`` inside a process that still holds the old snapshot keeps returning
the old instance; ``ATTACH 'path' (READ_ONLY)`` from a fresh connection always reads the current file.
"""

import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from bloom_pipeline.staging.store import StagingStore

SNAPSHOT_STORAGE_VERSION = "v1.0.0"
SNAPSHOT_ALIAS = "analyst_snapshot"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    published_at: datetime
    tables: dict[str, int]  # table name -> row count
    size_bytes: int


def publish_snapshot(store: StagingStore) -> SnapshotInfo:
    """Bring a copy of the org's analyst snapshot to the staging database's state and swap it in atomically."""
    target = store.snapshot_path
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with store.connect() as con:
            con.execute("CHECKPOINT")
            (db_name,) = con.execute("SELECT current_database()").fetchone() or ("",)
            tables = _publish_changes(con, db_name, target, tmp)
            if tables is None:
                _discard(tmp)
                tables = _copy_everything(con, db_name, tmp)
        _fsync(tmp)
        os.chmod(tmp, 0o444)
        # A write-ahead log left beside the target by a client that opened it read-write belongs to the
        # old file; replayed against the new one it would corrupt it.
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{target}.wal")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        _discard(tmp)
        raise
    return SnapshotInfo(target, datetime.now(UTC), tables, target.stat().st_size)


def _discard(tmp: Path) -> None:
    for leftover in (tmp, Path(f"{tmp}.wal")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


def _copy_everything(con: duckdb.DuckDBPyConnection, db_name: str, tmp: Path) -> dict[str, int]:
    """The whole staging database into a new file at ``tmp`` (``COPY FROM DATABASE``): tables, sequences, all."""
    con.execute(f"ATTACH ? AS {SNAPSHOT_ALIAS} (STORAGE_VERSION '{SNAPSHOT_STORAGE_VERSION}')", [str(tmp)])
    try:
        con.execute(f'COPY FROM DATABASE "{_quote(db_name)}" TO {SNAPSHOT_ALIAS}')
        tables = _row_counts(con, SNAPSHOT_ALIAS)
        con.execute(f"CHECKPOINT {SNAPSHOT_ALIAS}")
    finally:
        con.execute(f"DETACH {SNAPSHOT_ALIAS}")
    return tables


class _NotPatchable(Exception):
    """The previous snapshot cannot be brought up to date table by table; the whole database is copied."""


def _publish_changes(con: duckdb.DuckDBPyConnection, db_name: str, target: Path, tmp: Path) -> dict[str, int] | None:
    """The previous snapshot copied to ``tmp`` and patched to the staging database's state; the table row
    counts, or None when there is no previous snapshot or it cannot be patched (the caller copies everything).
    """
    if not target.exists():
        return None
    try:
        shutil.copyfile(target, tmp)
        os.chmod(tmp, 0o644)
        con.execute(f"ATTACH ? AS {SNAPSHOT_ALIAS}", [str(tmp)])
    except (OSError, duckdb.Error) as exc:
        log.info("previous snapshot %s not reused (%s); copying the whole staging database", target, exc)
        return None
    try:
        try:
            _check_storage_version(con)
            _patch_tables(con, db_name)
            _patch_sequences(con, db_name)
            _check_other_objects(con, db_name)
            tables = _row_counts(con, SNAPSHOT_ALIAS)
            if _fingerprints(con, SNAPSHOT_ALIAS) != _fingerprints(con, db_name):
                raise _NotPatchable("the patched snapshot does not match the staging database")
        except (_NotPatchable, duckdb.Error) as exc:
            log.info("previous snapshot %s not patched (%s); copying the whole staging database", target, exc)
            return None
        con.execute(f"CHECKPOINT {SNAPSHOT_ALIAS}")
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction is rolled back first
            con.execute("ROLLBACK")
        con.execute(f"DETACH {SNAPSHOT_ALIAS}")
    return tables


def _check_storage_version(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = ?", [SNAPSHOT_ALIAS]).fetchone()
    version = str((row[0] or {}).get("storage_version", "")) if row else ""
    if not version.startswith(SNAPSHOT_STORAGE_VERSION):
        raise _NotPatchable(f"storage version {version or 'unknown'}, not {SNAPSHOT_STORAGE_VERSION}")


def _catalog(con: duckdb.DuckDBPyConnection, db: str, view: str, name_column: str) -> dict[str, str]:
    """name -> CREATE statement of the objects of one kind in a database's ``main`` schema."""
    return dict(con.execute(
        f"SELECT {name_column}, sql FROM {view}() WHERE database_name = ? AND schema_name = 'main' "
        "AND NOT internal", [db]).fetchall())


def _table(db: str, name: str) -> str:
    return f'"{_quote(db)}".main."{_quote(name)}"'


def _fingerprints(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, tuple[int, int]]:
    """table -> (row count, sum of the row hashes): equal fingerprints mean equal contents, up to the
    2⁻⁶⁴ chance of two different multisets of rows summing to the same hash."""
    return {
        name: tuple(con.execute(  # type: ignore[misc]
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {_table(db, name)} t").fetchone())
        for name in sorted(_catalog(con, db, "duckdb_tables", "table_name"))
    }


def _patch_tables(con: duckdb.DuckDBPyConnection, db_name: str) -> None:
    """Each snapshot table to the staging table's rows; new tables created, vanished ones dropped."""
    source = _catalog(con, db_name, "duckdb_tables", "table_name")
    snapshot = _catalog(con, SNAPSHOT_ALIAS, "duckdb_tables", "table_name")
    for name in sorted(set(snapshot) - set(source)):
        con.execute(f"DROP TABLE {_table(SNAPSHOT_ALIAS, name)}")
    for name, create in sorted(source.items()):
        staged, published = _table(db_name, name), _table(SNAPSHOT_ALIAS, name)
        if snapshot.get(name) != create:
            if name in snapshot:
                con.execute(f"DROP TABLE {published}")
            con.execute(f"USE {SNAPSHOT_ALIAS}")
            try:
                con.execute(create)  # the staging table's own definition: constraints and defaults as they are
            finally:
                con.execute(f'USE "{_quote(db_name)}"')
            con.execute(f"INSERT INTO {published} SELECT * FROM {staged}")
            continue
        fingerprint = "SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0), count(DISTINCT hash(t)) FROM {} t"
        new_count, new_sum, new_distinct = con.execute(fingerprint.format(staged)).fetchone()  # type: ignore[misc]
        old_count, old_sum, old_distinct = con.execute(fingerprint.format(published)).fetchone()  # type: ignore[misc]
        if (new_count, new_sum) == (old_count, old_sum):
            continue
        if new_distinct != new_count or old_distinct != old_count:  # identical rows: a hash names no one row
            con.execute(f"DELETE FROM {published}")
            con.execute(f"INSERT INTO {published} SELECT * FROM {staged}")
            continue
        con.execute(f"DELETE FROM {published} AS s WHERE hash(s) NOT IN (SELECT hash(t) FROM {staged} t)")
        con.execute(f"INSERT INTO {published} SELECT * FROM {staged} t "
                    f"WHERE hash(t) NOT IN (SELECT hash(s) FROM {published} s)")


def _patch_sequences(con: duckdb.DuckDBPyConnection, db_name: str) -> None:
    """Each snapshot sequence advanced to the staging one's value (``nextval`` as often as it is behind)."""
    query = ("SELECT sequence_name, start_value, min_value, max_value, increment_by, cycle, last_value "
             "FROM duckdb_sequences() WHERE database_name = ? AND schema_name = 'main'")
    source = {r[0]: r[1:] for r in con.execute(query, [db_name]).fetchall()}
    snapshot = {r[0]: r[1:] for r in con.execute(query, [SNAPSHOT_ALIAS]).fetchall()}
    if set(source) != set(snapshot):
        raise _NotPatchable("the staging database has other sequences")
    for name, (start, low, high, increment, cycle, last) in source.items():
        old_start, *old_shape, old_last = snapshot[name]
        if [low, high, increment, cycle] != old_shape or increment != 1:
            raise _NotPatchable(f"sequence {name} was redefined")
        steps = (start if last is None else last + 1) - (old_start if old_last is None else old_last + 1)
        if steps < 0:
            raise _NotPatchable(f"sequence {name} of the snapshot is ahead of the staging one")
        if steps:
            con.execute(f"SELECT max(nextval('{_quote(SNAPSHOT_ALIAS)}.main.{_quote(name)}')) FROM range(?)",
                        [steps])


def _check_other_objects(con: duckdb.DuckDBPyConnection, db_name: str) -> None:
    """Views, macros, indexes, types: the patch does not carry them, so they must already be the same."""
    if _catalog(con, db_name, "duckdb_views", "view_name") != _catalog(con, SNAPSHOT_ALIAS, "duckdb_views",
                                                                       "view_name"):
        raise _NotPatchable("the views differ")
    indexes = "SELECT index_name, sql FROM duckdb_indexes() WHERE database_name = ? ORDER BY 1"
    if con.execute(indexes, [db_name]).fetchall() != con.execute(indexes, [SNAPSHOT_ALIAS]).fetchall():
        raise _NotPatchable("the indexes differ")
    for db in (db_name, SNAPSHOT_ALIAS):
        (user_functions,) = con.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE database_name = ? AND NOT internal", [db]).fetchone() \
            or (0,)
        (user_types,) = con.execute(
            "SELECT count(*) FROM duckdb_types() WHERE database_name = ? AND NOT internal", [db]).fetchone() \
            or (0,)
        if user_functions or user_types:
            raise _NotPatchable("macros or types")


def _row_counts(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, int]:
    return {
        name: int(con.execute(f"SELECT count(*) FROM {_table(db, name)}").fetchone()[0])  # type: ignore[index]
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name", [db]
        ).fetchall()
    }


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
