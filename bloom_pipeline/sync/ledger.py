"""The apply loop's ledger over the staging store: one small transaction per record, at once.

The connection is held for the whole apply phase (opening the file per record would cost ~20 ms
each), but every record commits on its own, so a run killed mid-way keeps everything it wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.apply import RecordResult
from bloom_pipeline.sync.canonical import snapshot_frame
from bloom_pipeline.sync.echo import CANONICAL_FIELDS
from bloom_pipeline.sync.extract import parse_time


def _modified(written: dict[str, Any] | None) -> datetime | None:
    if not written:
        return None
    return parse_time((written.get("AuditTrail") or {}).get("LastModifiedDate"))


LOGGED_ENTITIES = frozenset({"funds", "constituents", "transactions"})


class StoreLedger:
    """Implements ``apply.Ledger`` on an open DuckDB connection of the org's staging file."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, *, direction: str = "push",
                 snapshots: dict[tuple[str, str, str], dict[str, Any]] | None = None,
                 bloomerang_current: dict[int, dict[str, Any]] | None = None,
                 field_ids: dict[str, int] | None = None) -> None:
        self.con = con
        self.run_id = run_id
        self.direction = direction
        # (entity, source, source_id) -> the source record's canonical fields as staged this run
        self.snapshots = snapshots or {}
        # Bloomerang id -> canonical fields in the snapshot (for pairs linked without a write)
        self.bloomerang_current = bloomerang_current or {}
        self.field_ids = field_ids or {}

    def _bloomerang_side(self, result: RecordResult, written: dict[str, Any] | None) -> dict[str, Any] | None:
        if result.entity != "constituents":
            return None
        if written and "Type" in written:
            frame = snapshot_frame([written], self.field_ids)
            row = frame.iloc[0].to_dict()
            return {name: _plain(row.get(name)) for name in CANONICAL_FIELDS}
        return self.bloomerang_current.get(int(result.bloomerang_id)) if result.bloomerang_id else None

    def mark_pending(self, entity: str, source: str, source_id: str, payload_hash: str | None) -> None:
        with transaction(self.con):
            ledgers.mark_pending(self.con, entity, source, source_id, "create", run_id=self.run_id)

    def record(self, result: RecordResult, written: dict[str, Any] | None) -> None:
        with transaction(self.con):
            linked = result.action in ("created", "updated") or result.extra.get("link")
            if linked and result.action != "failed" and result.bloomerang_id is not None:
                previous = ledgers.get_state(self.con, result.entity, result.source, result.source_id)
                snapshot = self.snapshots.get((result.entity, result.source, result.source_id))
                state = previous or ledgers.SyncState(result.entity, result.source, result.source_id)
                state.bloomerang_id = result.bloomerang_id
                if result.payload_hash:
                    state.source_hash = result.payload_hash
                bloomerang_side = self._bloomerang_side(result, written)
                if snapshot is not None and bloomerang_side is not None:
                    state.source_snapshot = snapshot
                    state.bloomerang_snapshot = bloomerang_side
                state.bloomerang_modified_at = _modified(written) or state.bloomerang_modified_at
                state.last_run_id = self.run_id
                state.synced_at = None
                ledgers.upsert_state(self.con, state)
            elif result.action in ("failed", "skipped"):
                ledgers.clear_pending(self.con, result.entity, result.source, result.source_id)
            if result.entity not in LOGGED_ENTITIES:
                return  # schedules / pledges: bookkeeping for their payments, which are logged
            ledgers.append_log(self.con, self.run_id, [
                ledgers.LogEntry(
                    entity=result.entity,
                    source=result.source,
                    source_id=result.source_id,
                    action=result.action,
                    bloomerang_id=result.bloomerang_id,
                    direction=self.direction,
                    field_diff=result.diff,
                    error=result.error,
                )
            ])


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    return value
