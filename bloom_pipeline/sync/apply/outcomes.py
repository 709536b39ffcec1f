"""The apply loop's ledger: every record's result is durable at once (journal), and reaches DuckDB in
batches (``sync_state`` and ``sync_log``), so bookkeeping never costs more than the API write it records.

The journal (``journal.py``) takes the pending marker before a create and the outcome the moment a
write returns; ``flush`` moves outcomes into DuckDB in one transaction. A run killed between the two
loses nothing: ``replay`` at the start of the next run flushes what the journal still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import duckdb

from bloom_pipeline.staging import ledgers, state_batch
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.apply.journal import Journal
from bloom_pipeline.sync.apply.loop import RecordResult
from bloom_pipeline.sync.extract.cursors import parse_time
from bloom_pipeline.sync.snapshot import canonical_fields

LOGGED_ENTITIES = frozenset({"funds", "constituents", "transactions"})
# Outcomes moved into DuckDB per batch. Most of a move's cost is per move, not per record (frames, a join, an
# upsert, a commit): at 200 a first load's 8,000 records paid 43 moves, 8% of its profiled main thread. The
# journal holds the batch durably meanwhile, and every step that reads ``sync_state`` runs after a ``flush``
# (``Load.flush`` / ``close``).
FLUSH_EVERY = 1000


def _modified(written: dict[str, Any] | None) -> datetime | None:
    if not written:
        return None
    return parse_time((written.get("AuditTrail") or {}).get("LastModifiedDate"))


class WhenAsked(Mapping):
    """A mapping built by ``build`` the first time it is read: what the ledger keeps of a linked pair (both sides'
    canonical fields) costs a pass over every staged donor and every Bloomerang constituent, and a run that links
    nothing new (a quiet night) never reads it."""

    def __init__(self, build: Callable[[], Mapping[Any, Any]]) -> None:
        self._build = build
        self._built: Mapping[Any, Any] | None = None

    def _mapping(self) -> Mapping[Any, Any]:
        if self._built is None:
            self._built = self._build()
        return self._built

    def __getitem__(self, key: Any) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


class StoreLedger:
    """Implements ``apply.Ledger`` on the org's journal and an open DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, journal: Journal, *, direction: str = "push",
                 snapshots: Mapping[tuple[str, str, str], dict[str, Any]] | None = None,
                 bloomerang_current: Mapping[int, dict[str, Any]] | None = None,
                 field_ids: dict[str, int] | None = None) -> None:
        self.con = con
        self.run_id = run_id
        self.journal = journal
        self.direction = direction
        # (entity, source, source_id) -> the source record's canonical fields as staged this run
        self.snapshots = snapshots if snapshots is not None else {}
        # Bloomerang id -> canonical fields in the snapshot (for pairs linked without a write)
        self.bloomerang_current = bloomerang_current if bloomerang_current is not None else {}
        self.field_ids = field_ids or {}
        self._unflushed = 0

    def mark_pending(self, entity: str, source: str, source_id: str, payload_hash: str | None) -> None:
        self.journal.mark_pending(entity, source, source_id, self.run_id)

    def _bloomerang_side(self, result: RecordResult, written: dict[str, Any] | None) -> dict[str, Any] | None:
        if result.entity != "constituents":
            return None
        if written and "Type" in written:
            return canonical_fields(written)  # one record: the snapshot frame's values without its pandas cost
        return self.bloomerang_current.get(int(result.bloomerang_id)) if result.bloomerang_id else None

    def record(self, result: RecordResult, written: dict[str, Any] | None) -> None:
        key = (result.entity, result.source, result.source_id)
        linked = (result.action in ("created", "updated") or result.extra.get("link")) and result.action != "failed"
        bloomerang_side = self._bloomerang_side(result, written) if linked else None
        # the source side is kept only beside a Bloomerang side (a linked constituent): a gift never asks for it
        source_side = self.snapshots.get(key) if bloomerang_side is not None else None
        self.journal.add_outcome(self.run_id, {
            "entity": result.entity, "source": result.source, "source_id": result.source_id,
            "action": result.action, "bloomerang_id": result.bloomerang_id, "diff": result.diff,
            "error": result.error, "payload_hash": result.payload_hash, "direction": self.direction,
            "link": bool(linked and result.bloomerang_id is not None),
            "source_snapshot": source_side if bloomerang_side is not None else None,
            "bloomerang_snapshot": bloomerang_side if source_side is not None else None,
            "bloomerang_modified_at": _modified(written),
        })
        self._unflushed += 1
        if self._unflushed >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        flush_journal(self.con, self.journal)
        self._unflushed = 0


def flush_journal(con: duckdb.DuckDBPyConnection, journal: Journal) -> int:
    """Move every journaled outcome into ``sync_state`` / ``sync_log`` in one DuckDB transaction."""
    outcomes = journal.outcomes()
    if not outcomes:
        return 0
    linked = [(run_id, body) for _, run_id, body in outcomes if body["link"]]
    with transaction(con):
        previous = state_batch.states_for(con, [(b["entity"], b["source"], str(b["source_id"])) for _, b in linked])
        states = []
        for run_id, body in linked:
            key = (body["entity"], body["source"], str(body["source_id"]))
            state = previous.get(key) or ledgers.SyncState(*key)
            state.bloomerang_id = int(body["bloomerang_id"])
            state.source_hash = body["payload_hash"] or state.source_hash
            if body["source_snapshot"] is not None:
                state.source_snapshot = body["source_snapshot"]
                state.bloomerang_snapshot = body["bloomerang_snapshot"]
            state.bloomerang_modified_at = parse_time(body["bloomerang_modified_at"]) or state.bloomerang_modified_at
            state.last_run_id, state.synced_at = run_id, None
            states.append(state)
        state_batch.upsert_states(con, states)
        by_run: dict[str, list[ledgers.LogEntry]] = {}
        for _, run_id, body in outcomes:
            if body["entity"] in LOGGED_ENTITIES:
                by_run.setdefault(run_id, []).append(ledgers.LogEntry(
                    entity=body["entity"], source=body["source"], source_id=body["source_id"], action=body["action"],
                    bloomerang_id=body["bloomerang_id"], direction=body["direction"], field_diff=body["diff"],
                    error=body["error"]))
        for run_id, entries in by_run.items():
            ledgers.append_log(con, run_id, entries)
    journal.forget_outcomes(outcomes[-1][0])
    return len(outcomes)
