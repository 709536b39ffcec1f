"""Partition-window writes inside an open transaction: DELETE what a frame replaces, then INSERT it.

Why separate from the store: these are the only statements that build SQL from table and column names,
so they live in one small module where every identifier passes ``ddl.check_identifier`` and every value
is a parameter or a registered DataFrame.
"""

import contextlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import duckdb
import pandas as pd

from bloom_pipeline.staging import ddl


@dataclass(frozen=True)
class Window:
    """An inclusive range of partition days; ``Window.day(d)`` is the common single-day window."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def day(cls, day: date | str) -> "Window":
        d = date.fromisoformat(day) if isinstance(day, str) else day
        return cls(d, d)


WindowArg = Window | Literal["all"] | None


def _unregister(con: duckdb.DuckDBPyConnection, view: str) -> None:
    # After a failed statement the transaction is aborted and even unregistering fails; the original
    # error is the one worth raising, and the connection is closed right after anyway.
    with contextlib.suppress(duckdb.Error):
        con.unregister(view)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position",
        [ddl.check_identifier(table)],
    ).fetchall()
    if not rows:
        raise ValueError(f"no table {table!r}")
    return [r[0] for r in rows]


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    columns = table_columns(con, table)
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        raise ValueError(f"{table} has no column(s) {', '.join(map(str, unknown))}")
    if frame.empty:
        return 0
    view = f"incoming_{uuid.uuid4().hex}"
    names = ", ".join(f'"{ddl.check_identifier(c)}"' for c in frame.columns)
    con.register(view, frame)
    try:
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        _unregister(con, view)
    return len(frame)


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    *,
    window: WindowArg,
    keys: tuple[str, ...],
    scope: Mapping[str, Any] | None = None,
) -> int:
    """DELETE the rows the frame replaces, then INSERT it; call inside a transaction.

    With a ``Window`` every frame row must fall inside it (a frame without ``window_date`` gets the
    day of a single-day window); rows of the window not in the frame disappear — that is what a
    rerun of the window means. ``"all"`` clears the scope; None replaces rows with the same ``keys``.
    """
    ddl.check_identifier(table)
    scope = dict(scope or {})
    where = [f'"{ddl.check_identifier(c)}" = ?' for c in scope]
    params: list[Any] = list(scope.values())
    frame = frame.copy()
    wcol = ddl.WINDOW_COLUMN
    if isinstance(window, Window):
        if wcol not in frame:
            if window.start != window.end and len(frame):
                raise ValueError(f"{table}: a multi-day window needs a {wcol} per row")
            frame[wcol] = window.start
        days = pd.to_datetime(frame[wcol]).dt.date
        outside = frame[(days.isna()) | (days < window.start) | (days > window.end)]
        if len(outside):
            raise ValueError(
                f"{table}: {len(outside)} row(s) fall outside window {window.start}..{window.end}"
            )
        frame[wcol] = days
        con.execute(
            f"DELETE FROM {table} WHERE {wcol} BETWEEN ? AND ?" + "".join(f" AND {w}" for w in where),
            [window.start, window.end, *params],
        )
    elif window == "all":
        con.execute(f"DELETE FROM {table}" + (" WHERE " + " AND ".join(where) if where else ""), params)
    elif window is None:
        if len(frame):
            key_names = [ddl.check_identifier(k) for k in keys]
            if frame.duplicated(key_names).any():
                raise ValueError(f"{table}: duplicate {'/'.join(key_names)} in the frame")
            view = f"keys_{uuid.uuid4().hex}"
            con.register(view, frame[key_names].astype(str))
            try:
                match = " AND ".join(f"{table}.{k} = {view}.{k}" for k in key_names)
                con.execute(
                    f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {view} WHERE {match})"
                    + "".join(f" AND {w}" for w in where),
                    params,
                )
            finally:
                _unregister(con, view)
    else:
        raise ValueError(f"window must be a Window, 'all' or None, not {window!r}")
    return insert_frame(con, table, frame)


QUARANTINE_KINDS = ("invalid", "excluded")


def quarantine_rows(
    con: duckdb.DuckDBPyConnection, rows: pd.DataFrame | Iterable[Mapping[str, Any]], *, run_id: str
) -> int:
    """Insert quarantine rows (source, entity, source_id, kind, reasons, raw[, window_date]).

    ``reasons`` may be a list or a single string; ``raw`` a dict or JSON text; ``kind`` defaults to
    'invalid'. A row already quarantined in this run for the same record is replaced, so a retried
    step does not double-count.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return 0
    if "errors" in frame and "reasons" not in frame:  # map_frame's rejected frame
        frame = frame.rename(columns={"errors": "reasons"})
    missing = {"source", "entity", "reasons"} - set(frame.columns)
    if missing:
        raise ValueError(f"quarantine rows need column(s) {', '.join(sorted(missing))}")
    frame["kind"] = frame["kind"].fillna("invalid") if "kind" in frame else "invalid"
    bad_kind = set(frame["kind"]) - set(QUARANTINE_KINDS)
    if bad_kind:
        raise ValueError(f"unknown quarantine kind(s): {', '.join(sorted(map(str, bad_kind)))}")
    frame["reasons"] = [[r] if isinstance(r, str) else [str(x) for x in r] for r in frame["reasons"]]
    if any(not r for r in frame["reasons"]):
        raise ValueError("every quarantined record needs at least one reason")
    if "raw" in frame:
        frame["raw"] = [
            r if r is None or isinstance(r, str) else json.dumps(r, sort_keys=True, default=str)
            for r in frame["raw"]
        ]
    frame["source_id"] = [None if pd.isna(s) else str(s) for s in frame.get("source_id", [None] * len(frame))]
    frame["run_id"] = run_id
    frame["quarantined_at"] = datetime.now(UTC)
    keyed = frame.dropna(subset=["source_id"])
    if len(keyed):
        view = f"q_{uuid.uuid4().hex}"
        con.register(view, keyed[["source", "entity", "source_id"]])
        try:
            con.execute(
                f"DELETE FROM quarantine q WHERE run_id = ? AND EXISTS (SELECT 1 FROM {view} k WHERE "
                "k.source = q.source AND k.entity = q.entity AND k.source_id = q.source_id)",
                [run_id],
            )
        finally:
            _unregister(con, view)
    return insert_frame(con, "quarantine", frame)
