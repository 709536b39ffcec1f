"""The ledgers that answer "what happened to record X, and why": sync_state, sync_log, sync_runs,
cursors and conflicts (the review queue is in ``review.py`` and re-exported here).

Every function takes an open connection so the caller decides the transaction: the loader records a
record's sync_state and its sync_log row in the same transaction as soon as the write succeeded, which
is what lets a killed run resume without redoing or duplicating work. A write whose outcome is unknown
is first marked ``pending`` so the next run knows to look the record up before retrying.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.staging import ddl
from bloom_pipeline.staging.review import (  # noqa: F401  (re-exported: one import site for ledgers)
    ReviewItem,
    add_review,
    decisions_for,
    list_reviews,
    mark_applied,
    resolve_review,
    resolved_decisions,
)
from bloom_pipeline.staging.store import transaction  # noqa: F401  (re-exported)
from bloom_pipeline.staging.writes import insert_frame


def _now() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """The time a ledger row is stamped with (``logged_at``), for a caller that writes rows in SQL."""
    return _now()


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


# -- sync_state --------------------------------------------------------------------------------------


@dataclass
class SyncState:
    """The last-synced picture of one linked pair (a source record and its Bloomerang record)."""

    entity: str
    source: str
    source_id: str
    bloomerang_id: int | None = None
    source_snapshot: dict[str, Any] | None = None
    source_hash: str | None = None
    bloomerang_snapshot: dict[str, Any] | None = None
    bloomerang_hash: str | None = None
    source_modified_at: datetime | None = None
    bloomerang_modified_at: datetime | None = None
    synced_at: datetime | None = None
    last_run_id: str | None = None
    pending: str | None = None
    pending_run_id: str | None = None
    pending_since: datetime | None = None


_STATE_COLUMNS = [f for f in SyncState.__dataclass_fields__]


def upsert_state(con: duckdb.DuckDBPyConnection, state: SyncState, *, clear_pending: bool = True) -> None:
    """Insert or replace one pair's state after a successful write (clears ``pending`` by default)."""
    row = asdict(state)
    row["source_id"] = str(row["source_id"])
    row["synced_at"] = row["synced_at"] or _now()
    if clear_pending:
        row.update(pending=None, pending_run_id=None, pending_since=None)
    for key in ("source_snapshot", "bloomerang_snapshot"):
        row[key] = _json(row[key])
    cols = ", ".join(_STATE_COLUMNS)
    marks = ", ".join("?" for _ in _STATE_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _STATE_COLUMNS[3:])
    con.execute(
        f"INSERT INTO sync_state ({cols}) VALUES ({marks}) "
        f"ON CONFLICT (entity, source, source_id) DO UPDATE SET {updates}",
        [row[c] for c in _STATE_COLUMNS],
    )


def _state_from_row(row: Mapping[str, Any]) -> SyncState:
    values = {k: (None if _isna(row[k]) else row[k]) for k in _STATE_COLUMNS}
    for key in ("source_snapshot", "bloomerang_snapshot"):
        if isinstance(values[key], str):
            values[key] = jsontext.loads(values[key])
    if values["bloomerang_id"] is not None:
        values["bloomerang_id"] = int(values["bloomerang_id"])
    return SyncState(**values)


def _isna(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, dict, str)) and bool(pd.isna(value)))


def get_state(con: duckdb.DuckDBPyConnection, entity: str, source: str, source_id: str) -> SyncState | None:
    cur = con.execute(
        f"SELECT {', '.join(_STATE_COLUMNS)} FROM sync_state "
        "WHERE entity = ? AND source = ? AND source_id = ?",
        [entity, source, str(source_id)],
    )
    row = cur.fetchone()
    return None if row is None else _state_from_row(dict(zip(_STATE_COLUMNS, row, strict=True)))


def states_frame(con: duckdb.DuckDBPyConnection, entity: str, source: str | None = None) -> pd.DataFrame:
    """All pairs of an entity (optionally one source) as a DataFrame — for planning in bulk."""
    return _pairs(con, _STATE_COLUMNS, entity, source)


def links_frame(con: duckdb.DuckDBPyConnection, entity: str, source: str | None = None) -> pd.DataFrame:
    """The linked pairs of an entity (optionally one source): ``source``, ``source_id``, ``bloomerang_id`` of every
    pair with a Bloomerang id — what most steps read of ``sync_state``, without its snapshot columns."""
    return _pairs(con, ("source", "source_id", "bloomerang_id"), entity, source, "bloomerang_id IS NOT NULL")


def _pairs(con: duckdb.DuckDBPyConnection, columns: Iterable[str], entity: str, source: str | None,
           where: str | None = None) -> pd.DataFrame:
    sql = f"SELECT {', '.join(columns)} FROM sync_state WHERE entity = ?" + (f" AND {where}" if where else "")
    params: list[Any] = [entity]
    if source is not None:
        sql += " AND source = ?"
        params.append(source)
    return con.execute(sql + " ORDER BY source, source_id", params).df()


def run_states_frame(con: duckdb.DuckDBPyConnection, entity: str, run_id: str) -> pd.DataFrame:
    """``states_frame`` of only the pairs whose source record the run staged (``stg_<entity>`` rows of
    ``run_id``): what a plan keyed by the staged records reads, instead of every pair the org ever synced."""
    table = ddl.staged_table(entity)
    columns = ", ".join(f"s.{c}" for c in _STATE_COLUMNS)
    return con.execute(
        f"SELECT {columns} FROM sync_state s WHERE s.entity = ? AND EXISTS (SELECT 1 FROM {table} t "
        "WHERE t.run_id = ? AND t.source = s.source AND t.source_id = s.source_id) ORDER BY s.source, s.source_id",
        [entity, run_id]).df()


def states_of(con: duckdb.DuckDBPyConnection, entity: str, keys: pd.DataFrame) -> pd.DataFrame:
    """``states_frame`` of only the pairs of ``keys`` (a frame with ``source`` and ``source_id``)."""
    columns = ", ".join(f"s.{c}" for c in _STATE_COLUMNS)
    view = "state_keys_wanted"
    con.register(view, pd.DataFrame({"source": keys["source"].astype(str).astype(object),
                                     "source_id": keys["source_id"].astype(str).astype(object)}))
    try:
        return con.execute(
            f"SELECT {columns} FROM sync_state s WHERE s.entity = ? AND EXISTS (SELECT 1 FROM {view} k "
            "WHERE k.source = s.source AND k.source_id = s.source_id) ORDER BY s.source, s.source_id", [entity]).df()
    finally:
        con.unregister(view)


def mark_pending(
    con: duckdb.DuckDBPyConnection, entity: str, source: str, source_id: str, operation: str, *, run_id: str
) -> None:
    """Record that a write ('create' / 'update' / ...) is about to be sent, before sending it.

    If the process dies or the answer is lost, the next run finds the marker (``pending_states``) and
    checks Bloomerang by correlation id before retrying, so nothing is created twice.
    """
    con.execute(
        "INSERT INTO sync_state (entity, source, source_id, pending, pending_run_id, pending_since) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (entity, source, source_id) DO UPDATE SET "
        "pending = excluded.pending, pending_run_id = excluded.pending_run_id, "
        "pending_since = excluded.pending_since",
        [entity, source, str(source_id), operation, run_id, _now()],
    )


def clear_pending(con: duckdb.DuckDBPyConnection, entity: str, source: str, source_id: str) -> None:
    con.execute(
        "UPDATE sync_state SET pending = NULL, pending_run_id = NULL, pending_since = NULL "
        "WHERE entity = ? AND source = ? AND source_id = ?",
        [entity, source, str(source_id)],
    )


def pending_states(con: duckdb.DuckDBPyConnection, entity: str | None = None) -> list[SyncState]:
    """Pairs with a write whose outcome is unknown."""
    sql = f"SELECT {', '.join(_STATE_COLUMNS)} FROM sync_state WHERE pending IS NOT NULL"
    params: list[Any] = []
    if entity is not None:
        sql += " AND entity = ?"
        params.append(entity)
    rows = con.execute(sql + " ORDER BY entity, source, source_id", params).fetchall()
    return [_state_from_row(dict(zip(_STATE_COLUMNS, r, strict=True))) for r in rows]


# -- sync_log ------------------------------------------------------------------------------------------


@dataclass
class LogEntry:
    """One record's outcome in one run."""

    entity: str
    source: str
    source_id: str | None
    action: str
    bloomerang_id: int | None = None
    direction: str = "push"
    field_diff: dict[str, Any] | None = None
    error: str | None = None


_LOG_COLUMNS = (
    "run_id",
    "entity",
    "source",
    "source_id",
    "bloomerang_id",
    "direction",
    "action",
    "field_diff",
    "error",
    "logged_at",
)


def append_log(con: duckdb.DuckDBPyConnection, run_id: str, entries: Iterable[LogEntry]) -> int:
    """Append sync_log rows for a run; returns how many."""
    rows = []
    now = _now()
    for e in entries:
        if e.action not in ddl.LOG_ACTIONS:
            raise ValueError(f"unknown sync_log action {e.action!r}")
        rows.append(
            [
                run_id,
                e.entity,
                e.source,
                None if e.source_id is None else str(e.source_id),
                e.bloomerang_id,
                e.direction,
                e.action,
                _json(e.field_diff),
                e.error,
                now,
            ]
        )
    if len(rows) == 1:  # the per-record path of the loader
        con.execute(
            f"INSERT INTO sync_log ({', '.join(_LOG_COLUMNS)}) VALUES ({', '.join('?' * 10)})", rows[0]
        )
    elif rows:  # bulk: one INSERT from a frame (executemany costs ~1 ms per row)
        frame = pd.DataFrame(rows, columns=list(_LOG_COLUMNS))
        frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
        insert_frame(con, "sync_log", frame)
    return len(rows)


# -- sync_runs -----------------------------------------------------------------------------------------


def start_run(
    con: duckdb.DuckDBPyConnection, run_id: str, *, org: str, direction: str, dry_run: bool = False
) -> None:
    if direction not in ddl.DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(ddl.DIRECTIONS)}")
    con.execute(
        "INSERT INTO sync_runs (run_id, org, direction, dry_run, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, 'running') ON CONFLICT (run_id) DO NOTHING",
        [run_id, org, direction, dry_run, _now()],
    )


def abandon_runs(con: duckdb.DuckDBPyConnection, org: str, *, by_run_id: str) -> list[str]:
    """Close every run of ``org`` still marked ``running`` as failed, with a message saying it was
    abandoned (its process ended without finishing it); returns their ids."""
    rows = con.execute(
        "UPDATE sync_runs SET status = 'failed', ended_at = ?, message = ? "
        "WHERE org = ? AND status = 'running' AND run_id <> ? RETURNING run_id",
        [_now(), f"abandoned: the run's process ended before it finished (found by run {by_run_id}; "
                 "its journaled writes were recovered by that run)", org, by_run_id],
    ).fetchall()
    return [r[0] for r in rows]


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    status: str,
    counts: Mapping[str, Any] | None = None,
    message: str | None = None,
) -> None:
    """Close a run with its final status, its counts (JSON, e.g. ``accounting.counts_json``) and why."""
    if status not in ddl.RUN_STATUSES or status == "running":
        raise ValueError(f"final status must be succeeded, failed or halted, not {status!r}")
    cur = con.execute(
        "UPDATE sync_runs SET status = ?, ended_at = ?, counts = ?, message = ? WHERE run_id = ? "
        "RETURNING run_id",
        [status, _now(), _json(dict(counts) if counts is not None else None), message, run_id],
    )
    if cur.fetchone() is None:
        raise KeyError(f"no sync run {run_id!r} was started")


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    frame = con.execute("SELECT * FROM sync_runs WHERE run_id = ?", [run_id]).df()
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    row["counts"] = jsontext.loads(row["counts"]) if isinstance(row["counts"], str) else None
    return row


def recent_runs(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pd.DataFrame:
    return con.execute("SELECT * FROM sync_runs ORDER BY started_at DESC, run_id DESC LIMIT ?", [limit]).df()


# -- cursors -------------------------------------------------------------------------------------------


def get_cursor(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = con.execute("SELECT value FROM cursors WHERE name = ?", [name]).fetchone()
    return None if row is None else row[0]


def set_cursor(con: duckdb.DuckDBPyConnection, name: str, value: str | None, *, run_id: str) -> None:
    """Advance a cursor. Call only at the end of a successful, non-dry run (the caller decides)."""
    con.execute(
        "INSERT INTO cursors (name, value, updated_at, run_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
        "run_id = excluded.run_id",
        [name, value, _now(), run_id],
    )


# -- conflicts -----------------------------------------------------------------------------------------


@dataclass
class Conflict:
    """One field changed on both sides since the last sync, and how it was decided."""

    entity: str
    source: str
    source_id: str
    field: str
    source_value: Any
    bloomerang_value: Any
    rule: str
    winner: str
    bloomerang_id: int | None = None
    source_modified_at: datetime | None = None
    bloomerang_modified_at: datetime | None = None


def append_conflicts(con: duckdb.DuckDBPyConnection, run_id: str, conflicts: Iterable[Conflict]) -> int:
    rows = [
        [
            run_id,
            c.entity,
            c.source,
            str(c.source_id),
            c.bloomerang_id,
            c.field,
            json.dumps(c.source_value, default=str),
            json.dumps(c.bloomerang_value, default=str),
            c.source_modified_at,
            c.bloomerang_modified_at,
            c.rule,
            c.winner,
            _now(),
        ]
        for c in conflicts
    ]
    if rows:
        con.executemany(
            "INSERT INTO conflicts (run_id, entity, source, source_id, bloomerang_id, field, source_value, "
            "bloomerang_value, source_modified_at, bloomerang_modified_at, rule, winner, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)

