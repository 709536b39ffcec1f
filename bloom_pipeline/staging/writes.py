"""Partition-window writes inside an open transaction: DELETE what a frame replaces, then INSERT it.

Why separate from the store: these are the only statements that build SQL from table and column names,
so they live in one small module where every identifier passes ``ddl.check_identifier`` and every value
is a parameter or a registered DataFrame.

It also holds the two rules that key a raw record whatever it holds, because the raw write and the staging
step must agree on them (``record_key``, ``window_day``): an id-less record is kept under a synthetic key
derived from its content, and a record whose window date cannot be read stays in the window it was
extracted for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

import duckdb

if TYPE_CHECKING:  # each function that builds a frame imports pandas: the CLI's index never loads it
    import pandas as pd

from bloom_pipeline import jsontext
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
    def day(cls, day: date | str) -> Window:
        d = date.fromisoformat(day) if isinstance(day, str) else day
        return cls(d, d)


WindowArg = Window | Literal["all"] | None

MISSING_ID_PREFIX = "missing-id:"


def id_text(value: Any) -> str | None:
    """A source id as text ('1012', never '1012.0'), or None when the value cannot be an id.

    The same reading as the mapping's ``to_string`` for ids: whole numbers and text (trimmed) are ids;
    a boolean, a fraction, NaN / infinity, a blank text, an object or a list is not.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        return value.strip() or None
    return None


def record_json(record: Any) -> str:
    """The record as stored in ``raw_*.record`` and ``quarantine.raw``: JSON with sorted keys."""
    return json.dumps(record, sort_keys=True, default=str)


def record_digest(text: str) -> str:
    """sha256 of a record's stored JSON (``record_json``): its content hash in ``raw_*.record_hash`` and
    ``stage_inputs.record_hash``. Key order is not content (the JSON has sorted keys); a trailing space is."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hashes(records: Iterable[Any]) -> list[str]:
    """``record_digest`` of each record as stored (``record_json``)."""
    return [record_digest(record_json(record)) for record in records]


def texts_and_hashes(records: Iterable[Any]) -> tuple[list[str], list[str]]:
    """Each record's ``record_json`` text and its ``record_digest``: what a raw write stores and compares, made once
    (``StagingStore.write_raw(texts=..., digests=...)``)."""
    texts = [record_json(record) for record in records]
    return texts, [record_digest(text) for text in texts]


def scan_digest(records: list[Any]) -> str:
    """sha256 of a whole list as received, for ``write_raw``'s unchanged-scan check: its JSON in the order received
    (one serialisation of the list instead of a sorted one per record, and no per-record comparison after it). The
    same answers give the same digest; a list with another digest is compared record by record, as without it.
    The text is orjson's (``jsontext.digest_text``: 4.2 s of ``json.dumps`` for a 100,000-donor org's fund
    allocations, ~0.4 s so); a digest kept by an older version differs once, and that list is compared whole."""
    return hashlib.sha256(jsontext.digest_text(records)).hexdigest()


def missing_id_key(record: Any) -> str:
    """The synthetic ``source_id`` of a record without a usable id: ``missing-id:<sha256 of its JSON, 16 hex>``.

    Derived from the content, not from the record's position, so the raw write, the staging step and a later
    Dagster step reading the raw table back all name the same record the same way, and an unchanged id-less
    record is recognised at the next run.
    """
    return MISSING_ID_PREFIX + hashlib.sha256(record_json(record).encode("utf-8")).hexdigest()[:16]


def record_key(record: Any, id_key: str = "id") -> str:
    """The ``source_id`` a raw record is stored under: its id as text, else ``missing_id_key``."""
    key = id_text(record.get(id_key)) if isinstance(record, Mapping) else None
    return key if key is not None else missing_id_key(record)


def parse_day(value: Any) -> date | None:
    """A window day from a date or ISO text ('2025-03-02', or the first ten characters of a timestamp);
    None for anything that is not a calendar day ('31/02/2025', '2026-13-45', garbage)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def window_day(record: Any, day_of: Callable[[Any], Any] | None, window: WindowArg) -> date | None:
    """The partition day of one record: ``day_of(record)`` read as a day, never an exception.

    Within a ``Window`` every row must carry a day inside it; a record the API returned for the window whose
    own day is unreadable or lies outside is given the nearest day of the window (it belongs to that window's
    extract, and a rerun of the window replaces it). Outside a window an unreadable day is NULL.
    """
    try:
        day = parse_day(day_of(record)) if day_of is not None else None
    except Exception:  # noqa: BLE001 - a hostile record must not stop the write; the mapping says what is wrong
        day = None
    if isinstance(window, Window):
        if day is None or day < window.start:
            return window.start
        if day > window.end:
            return window.end
    return day


def _unregister(con: duckdb.DuckDBPyConnection, view: str) -> None:
    # After a failed statement the transaction is aborted and even unregistering fails; the original
    # error is the one worth raising, and the connection is closed right after anyway.
    with contextlib.suppress(duckdb.Error):
        con.unregister(view)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    # pragma_table_info, not information_schema: the view costs ~25 ms a query, this well under 1 ms
    try:
        rows = con.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid",
                           [ddl.check_identifier(table)]).fetchall()
    except duckdb.CatalogException:
        rows = []
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
    duplicate_keys: bool = False,
) -> int:
    """DELETE the rows the frame replaces, then INSERT it; call inside a transaction.

    With a ``Window`` every frame row must fall inside it (a frame without ``window_date`` gets the
    day of a single-day window); rows of the window not in the frame disappear — that is what a
    rerun of the window means. ``"all"`` clears the scope; None replaces rows with the same ``keys``.
    Two frame rows with the same ``keys`` are refused unless ``duplicate_keys`` (raw tables keep every
    copy an API returned; the staging step quarantines them).
    """
    import pandas as pd

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
            if not duplicate_keys and frame.duplicated(key_names).any():
                raise ValueError(f"{table}: duplicate {'/'.join(key_names)} in the frame")
            view = f"keys_{uuid.uuid4().hex}"
            con.register(view, frame[key_names].astype(str).drop_duplicates())
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


QUARANTINE_KINDS = ddl.QUARANTINE_KINDS


def quarantine_rows(
    con: duckdb.DuckDBPyConnection, rows: pd.DataFrame | Iterable[Mapping[str, Any]], *, run_id: str
) -> int:
    """Insert quarantine rows (source, entity, source_id, kind, reasons, raw[, window_date, field, value]).

    ``reasons`` may be a list or a single string; ``raw`` a dict or JSON text; ``kind`` defaults to
    'invalid' ('field' rows name the ``field`` and its ``value``). Rows already in this run for the same
    record and the same level (record: 'invalid' / 'excluded'; field: 'field') are replaced, so a retried
    step does not double-count; every row of one batch is kept, so both copies of a duplicate id stay.
    """
    import pandas as pd

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
    for column in ("field", "value"):
        if column in frame:
            frame[column] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                             for v in frame[column]]
    if ((frame["kind"] == "field") & frame.get("field", pd.Series(None, index=frame.index)).isna()).any():
        raise ValueError("a 'field' quarantine row needs the field it dropped")
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
        keys = keyed[["source", "entity", "source_id"]].assign(is_field=keyed["kind"].eq("field"))
        con.register(view, keys.drop_duplicates())
        try:
            con.execute(
                f"DELETE FROM quarantine q WHERE run_id = ? AND EXISTS (SELECT 1 FROM {view} k WHERE "
                "k.source = q.source AND k.entity = q.entity AND k.source_id = q.source_id "
                "AND k.is_field = (q.kind = 'field'))",
                [run_id],
            )
        finally:
            _unregister(con, view)
    return insert_frame(con, "quarantine", frame)


@contextlib.contextmanager
def id_view(con: duckdb.DuckDBPyConnection, ids: Iterable[str], name: str | None = None) -> Iterator[str]:
    """A set of source ids registered as a one-column view (``source_id``) for the block, to semi-join against;
    ``name`` defaults to a fresh one (two blocks on one connection never meet)."""
    import pandas as pd

    view = name or f"ids_{uuid.uuid4().hex}"
    con.register(view, pd.DataFrame({"source_id": pd.Series(sorted(ids), dtype=object)}))
    try:
        yield view
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses even this; it rolls back anyway
            con.unregister(view)
