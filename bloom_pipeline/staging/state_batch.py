"""Batched ``sync_state`` reads and writes: one statement for a whole batch of records.

The apply loop journals each record the moment it is written (``sync/journal.py``) and moves the batch
here; a keyed upsert per record would cost several milliseconds each in DuckDB.
"""

from collections.abc import Iterable

import duckdb
import pandas as pd

from bloom_pipeline.staging.ledgers import _STATE_COLUMNS, SyncState, _json, _now, _state_from_row


def upsert_states(con: duckdb.DuckDBPyConnection, states: Iterable[SyncState]) -> int:
    """Insert or replace many pairs in one statement (clears ``pending``): the batched ``upsert_state``."""
    rows = []
    for state in states:
        # the fields as they are (``asdict`` would deep-copy both snapshots only for ``_json`` to read them)
        row = {name: getattr(state, name) for name in _STATE_COLUMNS}
        row["source_id"] = str(row["source_id"])
        row["synced_at"] = row["synced_at"] or _now()
        row.update(pending=None, pending_run_id=None, pending_since=None)
        for key in ("source_snapshot", "bloomerang_snapshot"):
            row[key] = _json(row[key])
        rows.append(row)
    if not rows:
        return 0
    frame = pd.DataFrame(rows, columns=_STATE_COLUMNS).drop_duplicates(["entity", "source", "source_id"], keep="last")
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    for column in ("source_modified_at", "bloomerang_modified_at", "synced_at", "pending_since"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _STATE_COLUMNS[3:])
    con.register("_states_batch", frame)
    try:
        con.execute(f"INSERT INTO sync_state ({', '.join(_STATE_COLUMNS)}) "
                    f"SELECT {', '.join(_STATE_COLUMNS)} FROM _states_batch "
                    f"ON CONFLICT (entity, source, source_id) DO UPDATE SET {updates}")
    finally:
        con.unregister("_states_batch")
    return len(frame)


def states_for(
    con: duckdb.DuckDBPyConnection, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], SyncState]:
    """The stored states of many (entity, source, source_id) keys in one query."""
    wanted = pd.DataFrame(list(keys), columns=["entity", "source", "source_id"]).drop_duplicates()
    if wanted.empty:
        return {}
    con.register("_wanted_states", wanted)
    try:
        frame = con.execute(
            f"SELECT {', '.join('s.' + c for c in _STATE_COLUMNS)} FROM sync_state s "
            "JOIN _wanted_states w USING (entity, source, source_id)"
        ).df()
    finally:
        con.unregister("_wanted_states")
    states = [_state_from_row(row) for row in frame.to_dict("records")]
    return {(s.entity, s.source, str(s.source_id)): s for s in states}
