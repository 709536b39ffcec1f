"""The DuckDB staging database of one org: short-lived connections and partition-window writes.

Why short-lived: DuckDB allows one read-write process per file, and a connection held open blocks every
other process (STACK.md trap 4). The store opens a connection per batch of operations and closes it,
retrying for a while when another process holds the file. Within a process, a per-file lock keeps
one writer at a time. Analysts never open this file; they read the snapshot (``snapshot.py``).

Writes of extracted / staged rows replace a partition window in one transaction (DELETE + INSERT), so a
rerun of a day is idempotent and a reader never sees half of it. Values are always SQL parameters;
table names are checked by ``ddl`` before they are interpolated.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # loaded where a frame is built: `bloom-pipeline --help` and `status` never import pandas
    import pandas as pd

from bloom_pipeline import settings
from bloom_pipeline.errors import MOVE_ASIDE, DataError, UnusableFileError
from bloom_pipeline.staging import ddl
from bloom_pipeline.staging.writes import (
    Window,
    WindowArg,
    id_view,
    insert_frame,
    quarantine_rows,
    record_digest,
    record_json,
    record_key,
    replace_rows,
    table_columns,
    window_day,
)

DEFAULT_DATA_DIR = "./data"
# A staging file is created in the storage format DuckDB 1.0 and later read (a file that exists keeps its own):
# the analyst snapshot must be in that format (``snapshot.py``), and a staging file already in it is published
# by copying its bytes instead of rewriting every table.
STORAGE_VERSION = "v1.0.0"
# One DuckDB thread: the staging queries are small next to the Python around them, and DuckDB's worker threads
# cost more than they gained on 2 cores (a quiet night at 20,000 donors: 14.2 s CPU with the default, 12.1 s with
# one thread; the first rerun after a resume 39.6 s → 35.4 s wall). One org's run is one writer process, so the
# other cores are for other orgs' runs (deploy/: one run per org at a time, several orgs at once).
_CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                   "storage_compatibility_version": STORAGE_VERSION, "threads": 1}
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def data_dir_from_env(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else ``$BLOOM_DATA_DIR``, else ``./data`` (read at call time)."""
    return settings.data_dir(data_dir)


def _file_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def usable_folder(path: Path) -> Path:
    """Create the data folder (or a folder in it) if needed; a path that cannot be one is a configuration
    error naming it, raised before any API call."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnusableFileError(path, f"cannot be used as a data folder: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnusableFileError(path, "cannot be used as a data folder: not writable")
    return path


class StoreBusyError(DataError):
    """Another process held the staging file for longer than the store was willing to wait."""


class StagingStore:
    """One org's staging database file (``<data_dir>/<org>_staging.duckdb``)."""

    def __init__(self, path: str | os.PathLike[str], *, org: str, lock_timeout: float = 30.0) -> None:
        self.org = ddl.check_identifier(org)
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._schema_ready = False
        self._hashed_tables: set[str] = set()  # raw tables known to exist with their record_hash column

    @classmethod
    def for_org(
        cls, org: str, data_dir: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> StagingStore:
        root = data_dir_from_env(data_dir)
        return cls(root / f"{ddl.check_identifier(org)}_staging.duckdb", org=org, **kwargs)

    @property
    def snapshot_path(self) -> Path:
        """Where the analyst snapshot of this org is published (``<data_dir>/<org>.duckdb``)."""
        return self.path.parent / f"{self.org}.duckdb"

    def __repr__(self) -> str:
        return f"StagingStore(org={self.org!r}, path={str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------------

    def open_connection(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A bare connection (retrying while another process holds the file); prefer ``connect()``."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                # never fetch an extension: a file that is not DuckDB's (a SQLite file, say) is refused, not
                # opened through an extension downloaded at run time
                return duckdb.connect(str(self.path), read_only=read_only, config=_CONNECT_CONFIG)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise UnusableFileError(self.path, f"not a usable DuckDB database ({_first_line(exc)}); "
                                            + MOVE_ASIDE) from None
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{self.path} is held by another process (a running sync?); gave up after "
                        f"{self.lock_timeout:.0f}s"
                    ) from exc
                time.sleep(delay)
            except (duckdb.SerializationException, duckdb.InternalException, duckdb.InvalidInputException) as exc:
                raise UnusableFileError(self.path, f"not a usable DuckDB database ({_first_line(exc)}); "
                                        + MOVE_ASIDE) from None
                delay = min(delay * 2, 1.0)

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for a batch of operations, closed on exit; no transaction is opened.

        Use it for loops that commit per record (``with ledgers.transaction(con): ...``): opening a
        file costs ~20 ms, a transaction ~1 ms. ``read_only=True`` is for other processes (the CLI).
        """
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no staging database for org {self.org!r} at {self.path}")
            con = self.open_connection(read_only=True)
            try:
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()
            return
        lock = _file_lock(self.path)
        if not lock.acquire(timeout=self.lock_timeout):
            raise StoreBusyError(
                f"{self.path} is busy in this process; gave up after {self.lock_timeout:.0f}s"
            )
        try:
            usable_folder(self.path.parent)
            con = self.open_connection(read_only=False)
            try:
                con.execute("SET TimeZone = 'UTC'")
                if not self._schema_ready:
                    for statement in ddl.all_ddl():
                        con.execute(statement)
                    ddl.upgrade(con)
                    self._schema_ready = True
                yield con
            finally:
                con.close()
        finally:
            lock.release()

    @contextlib.contextmanager
    def kept_open(self) -> Iterator[None]:
        """Keep the database open in this process for the block (a run): every ``connect()`` inside still gets a
        connection of its own (own transaction, closed on exit), but DuckDB hands it the open database instead of
        reading the file again — a run opens the file some fifty times, ~25 ms each when nothing holds it open.
        The file is held exactly as long as a run's writes hold it anyway."""
        usable_folder(self.path.parent)
        anchor = self.open_connection(read_only=False)  # idle: never runs a statement, holds no transaction
        try:
            yield
        finally:
            anchor.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: committed on normal exit, rolled back on error."""
        with self.connect() as con, transaction(con):
            yield con

    def read_frame(self, sql: str, params: Iterable[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one parameterised query and return the result as a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    # -- partition-window writes -----------------------------------------------------------------------

    def write_raw(
        self,
        source: str,
        entity: str,
        records: Iterable[Any],
        *,
        run_id: str,
        window: WindowArg = None,
        id_key: str = "id",
        window_date_of: Callable[[Mapping[str, Any]], date | str | None] | None = None,
        extracted_at: datetime | None = None,
        digests: Sequence[str] | None = None,
        scan_digest: str | None = None,
        texts: Sequence[str] | None = None,
    ) -> int:
        """Store records exactly as the API returned them (JSON) in ``raw_<source>_<entity>``; returns how many.

        ``window`` is the partition window this extract covers (rows in it are replaced); ``"all"``
        replaces the whole table; None upserts by source id (incremental, cursor-driven extracts).

        Whatever a record holds, it is stored: one without a usable id under ``missing-id:<content hash>``
        (``writes.record_key``), every copy of a duplicated id, and a record whose window day cannot be read
        with a NULL day (inside a ``Window``: the window's nearest day, ``writes.window_day``). Judging them
        is the staging step's work, which quarantines each with its reason; row accounting counts them all.

        Only what changed is written (``"all"`` and None): a record whose content hash (``digests``, one per
        record — ``writes.record_hashes``, computed here when not given) is that of the one stored copy of its
        key is not inserted again, only stamped as this run's (``run_id``, ``extracted_at``), so every record
        still reads as extracted by the run and a quiet night costs a hash per record, not a rewrite. A key
        the batch or the table holds more than once is rewritten whole, as is every row of a backfill window.

        ``texts`` (with ``digests``): the records' ``record_json`` texts the digests were made of, so a changed
        record's text is stored as made, not serialised again.

        ``scan_digest`` (``"all"`` only): a digest of the whole list as received (``writes.scan_digest``). When it
        is the one the last such write of the table recorded (``scan_digests``), and the table is still as that write
        left it, every row is only stamped — no record is hashed or compared: a list the API sends unchanged every
        night (WeGive's fund allocations: no filter, 3.5 rows per donor) costs a digest, not a hash per record.
        """
        table = ddl.raw_table(source, entity)
        records = list(records)
        scanned = scan_digest is not None and window == "all"
        if scanned and digests is None \
                and self._stamp_unchanged_scan(table, scan_digest, run_id, extracted_at or datetime.now(UTC)):
            return len(records)
        if digests is None:  # hashed here: the text hashed is the text a changed record is stored as
            texts = [record_json(record) for record in records]
            digests = [record_digest(text) for text in texts]
        hashes = list(digests)
        if texts is not None and len(texts) != len(records):
            raise ValueError(f"{table}: {len(texts)} texts for {len(records)} records")
        if len(hashes) != len(records):
            raise ValueError(f"{table}: {len(hashes)} digests for {len(records)} records")
        keys = [record_key(record, id_key) for record in records]
        now = extracted_at or datetime.now(UTC)
        with self.write() as con:
            if table not in self._hashed_tables:  # once per table and store: the DDL and the column check
                con.execute(ddl.raw_table_ddl(table))
                ensure_record_hash(con, table)
                self._hashed_tables.add(table)
            carried = set() if isinstance(window, Window) else _unchanged_keys(con, table, keys, hashes)
            fresh = [i for i, key in enumerate(keys) if key not in carried]
            frame = _raw_frame([records[i] for i in fresh], [keys[i] for i in fresh], [hashes[i] for i in fresh],
                               window=window, window_date_of=window_date_of, run_id=run_id, extracted_at=now,
                               texts=None if texts is None else [texts[i] for i in fresh])
            if not carried:
                replace_rows(con, table, frame, window=window, keys=("source_id",), duplicate_keys=True)
                if scanned:
                    _remember_scan(con, table, scan_digest, run_id)
                return len(records)
            with id_view(con, carried) as view:
                con.execute(f"UPDATE {table} SET run_id = ?, extracted_at = ? WHERE source_id IN "
                            f"(SELECT source_id FROM {view})", [run_id, now])
                if window == "all":  # every other row goes: changed (inserted again below) or no longer listed
                    con.execute(f"DELETE FROM {table} WHERE source_id NOT IN (SELECT source_id FROM {view})")
            if len(frame) and window == "all":
                insert_frame(con, table, frame)
            elif len(frame):
                replace_rows(con, table, frame, window=None, keys=("source_id",), duplicate_keys=True)
            if scanned:
                _remember_scan(con, table, scan_digest, run_id)
        return len(records)

    def _stamp_unchanged_scan(self, table: str, scan_digest: str, run_id: str, now: datetime) -> bool:
        """Stamp every row of ``table`` as this run's when the list is the one its last scan wrote and the table
        is as that write left it (``scan_digests``); False (nothing done) otherwise."""
        with self.connect() as con:  # this process's file lock is held throughout: nothing writes between
            found = con.execute("SELECT scan_digest, table_digest FROM scan_digests WHERE table_name = ?",
                                [table]).fetchone()
            if found is None or found[0] != scan_digest:
                return False
            try:  # a row here was written after a write that gave the table its record_hash column
                held = _table_digest(con, table)
            except duckdb.CatalogException:  # the table was dropped since
                return False
            if found[1] != held:
                return False
            with transaction(con):
                con.execute(f"UPDATE {table} SET run_id = ?, extracted_at = ?", [run_id, now])
                con.execute("UPDATE scan_digests SET run_id = ? WHERE table_name = ?", [run_id, table])
        return True

    def write_staged(
        self,
        entity: str,
        frame: pd.DataFrame,
        *,
        source: str,
        run_id: str,
        window: WindowArg = None,
        extracted_at: datetime | None = None,
    ) -> int:
        """Store mapped canonical rows of one source in ``stg_<entity>`` (``window`` as in ``write_raw``)."""
        table = ddl.staged_table(entity)
        if source not in ddl.STAGED_SOURCES:
            raise ValueError(f"unknown staged source {source!r}")
        frame = frame.copy()
        if "source" in frame and len(frame) and set(frame["source"].dropna().unique()) - {source}:
            raise ValueError(f"{table}: frame holds rows of sources other than {source!r}")
        frame["source"] = source
        frame["run_id"] = run_id
        if "extracted_at" not in frame or extracted_at is not None:
            frame["extracted_at"] = extracted_at or datetime.now(UTC)
        with self.write() as con:
            return replace_rows(
                con, table, frame, window=window, keys=("source", "source_id"), scope={"source": source}
            )

    def write_quarantine(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]], *, run_id: str) -> int:
        """Record rejected / excluded records with their reasons and raw record (idempotent per run)."""
        with self.write() as con:
            return quarantine_rows(con, rows, run_id=run_id)


def ensure_record_hash(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Give a raw table an older version created its ``record_hash`` column, filled from the stored JSON (DuckDB's
    ``sha256`` of the text is ``writes.record_digest`` of it: the text is ``record_json``'s, kept as written)."""
    if ddl.RAW_HASH_COLUMN not in table_columns(con, table):
        con.execute(f"ALTER TABLE {table} ADD COLUMN {ddl.RAW_HASH_COLUMN} VARCHAR")
        con.execute(f"UPDATE {table} SET {ddl.RAW_HASH_COLUMN} = sha256(record)")


def _table_digest(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """What a raw table holds, in one value: its row count and an order-free fold of each row's key and hash."""
    count, folded = con.execute(
        f"SELECT count(*), bit_xor(hash(source_id || chr(31) || coalesce({ddl.RAW_HASH_COLUMN}, ''))) FROM {table}"
    ).fetchone()
    return f"{count}:{folded}"


def _remember_scan(con: duckdb.DuckDBPyConnection, table: str, scan_digest: str, run_id: str) -> None:
    con.execute("INSERT INTO scan_digests (table_name, scan_digest, table_digest, run_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (table_name) DO UPDATE SET scan_digest = excluded.scan_digest, "
                "table_digest = excluded.table_digest, run_id = excluded.run_id",
                [table, scan_digest, _table_digest(con, table), run_id])


def _unchanged_keys(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], hashes: list[str]) -> set[str]:
    """The keys the batch holds once whose one stored row has the same content hash (compared in DuckDB)."""
    import pandas as pd

    counts = Counter(keys)
    once = [(key, digest) for key, digest in zip(keys, hashes, strict=True) if counts[key] == 1]
    if not once:
        return set()
    view = f"incoming_hashes_{uuid.uuid4().hex}"
    con.register(view, pd.DataFrame(once, columns=["source_id", "record_hash"]).astype(object))
    try:
        rows = con.execute(
            f"SELECT t.source_id FROM {table} t JOIN {view} i ON i.source_id = t.source_id "
            f"GROUP BY t.source_id HAVING count(*) = 1 "
            f"AND any_value(t.{ddl.RAW_HASH_COLUMN}) = any_value(i.record_hash)"
        ).fetchall()
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(view)
    return {row[0] for row in rows}


def _raw_frame(records: list[Any], keys: list[str], hashes: list[str], *, window: WindowArg,
               window_date_of: Callable[[Mapping[str, Any]], date | str | None] | None, run_id: str,
               extracted_at: datetime, texts: list[str] | None = None) -> pd.DataFrame:
    """The rows of the records a raw write inserts (their JSON serialised here, and only theirs, unless the
    caller already holds their ``texts``)."""
    import pandas as pd

    frame = pd.DataFrame({
        "source_id": pd.Series(keys, dtype=object),
        "record": pd.Series(texts if texts is not None else [record_json(record) for record in records],
                            dtype=object),
        ddl.WINDOW_COLUMN: pd.Series([window_day(record, window_date_of, window) for record in records],
                                     dtype=object),
        ddl.RAW_HASH_COLUMN: pd.Series(hashes, dtype=object),
    })
    frame["run_id"] = run_id
    frame["extracted_at"] = extracted_at
    return frame


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT around a block; ROLLBACK and re-raise on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


__all__ = ["StagingStore", "StoreBusyError", "Window", "WindowArg", "transaction", "data_dir_from_env"]
