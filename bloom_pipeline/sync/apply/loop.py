"""Apply a push plan to Bloomerang: one record at a time, crash-safe and idempotent.

Bloomerang v2 has no idempotency keys and no batch write, so safety comes from three rules:

1. *Mark before you write.* A create is recorded as ``pending`` in ``sync_state`` before the POST.
   A run killed between the POST and its bookkeeping leaves that marker, and the next run resolves it
   by looking the record up by its correlation id before planning anything (``recover_pending``).
2. *Never retry a POST blindly.* When the answer is lost (``OutcomeUnknownError``: dropped
   connection, read timeout) the writer looks the record up by its correlation id; only when Bloomerang
   certainly lacks it is the POST sent again.
3. *Record at once.* Each successful write is committed to ``sync_state`` before the next record is
   touched, and one failing record is logged with the API's message while the others go on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sync.apply.refs import RefResolver, UnresolvedRefError
from bloom_pipeline.sync.fields import present
from bloom_pipeline.sync.progress import current as current_progress

log = logging.getLogger(__name__)


@dataclass
class RecordResult:
    """What happened to one planned record (one ``sync_log`` row)."""

    entity: str
    source: str
    source_id: str
    action: str  # created | updated | unchanged | skipped | failed
    bloomerang_id: int | None = None
    diff: dict[str, Any] | None = None
    error: str | None = None
    payload_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Writer(Protocol):
    """The Bloomerang calls of one entity."""

    entity: str

    def create(self, source: str, source_id: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, bloomerang_id: int, payload: dict[str, Any]) -> dict[str, Any]: ...

    def find_existing(self, source: str, source_id: str, payload: dict[str, Any]) -> dict[str, Any] | None: ...


class Ledger(Protocol):
    """Where results go the moment they happen (the staging store, in production)."""

    def mark_pending(self, entity: str, source: str, source_id: str, payload_hash: str | None) -> None: ...

    def record(self, result: RecordResult, written: dict[str, Any] | None) -> None: ...


def _payload(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return {}
    return json.loads(value)


def create_with_recovery(writer: Writer, source: str, source_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST once; if the answer is lost, look the record up; POST again only if it is truly absent."""
    try:
        return writer.create(source, source_id, payload)
    except OutcomeUnknownError as unknown:
        log.warning("create of %s %s:%s lost its answer; looking it up", writer.entity, source, source_id)
        try:
            found = writer.find_existing(source, source_id, payload)
        except ApiError:
            raise unknown from None  # still unknown: the record stays pending for the next run's lookup
        if found is not None:
            return found
        return writer.create(source, source_id, payload)


def apply_plan(
    plan: pd.DataFrame,
    writer: Writer,
    resolver: RefResolver,
    ledger: Ledger,
    *,
    on_written: Callable[[RecordResult, dict[str, Any]], None] | None = None,
) -> list[RecordResult]:
    """Carry out every row of ``plan`` (columns: source, source_id, bloomerang_id, action, payload,
    diff, payload_hash, reason). Returns one RecordResult per row, in plan order."""
    results: list[RecordResult] = []
    rows = plan.to_dict("records")
    progress = current_progress()  # records done / total, writes, failures, ETA (silent outside a CLI sync)
    progress.start_entity(writer.entity, len(rows), sum(r["action"] in ("create", "update") for r in rows))
    for row in rows:
        result = RecordResult(
            entity=writer.entity,
            source=str(row["source"]),
            source_id=str(row["source_id"]),
            action="unchanged",
            bloomerang_id=None if present(row.get("bloomerang_id")) is None else int(row["bloomerang_id"]),
            diff=_payload(present(row.get("diff"))) or None,
            payload_hash=present(row.get("payload_hash")),
        )
        action = row["action"]
        written: dict[str, Any] | None = None
        if present(row.get("link")) and action == "unchanged":
            result.extra["link"] = True  # matched and identical: record the pair, send nothing
        if action in ("unchanged", "skipped", "blocked"):
            result.action = "skipped" if action in ("skipped", "blocked") else "unchanged"
            result.error = present(row.get("reason")) if action != "unchanged" else None
        else:
            try:
                payload = resolver.resolve(_payload(row["payload"]))
                if action == "create":
                    ledger.mark_pending(writer.entity, result.source, result.source_id, result.payload_hash)
                    written = create_with_recovery(writer, result.source, result.source_id, payload)
                    result.action = "created"
                elif action == "update":
                    target = present(row.get("target_ref"))
                    if result.bloomerang_id is None and target is not None:
                        result.bloomerang_id = resolver.lookup(target)  # follower of a record created this run
                        result.extra["link"] = True
                    if result.bloomerang_id is None:
                        raise ValueError("update planned without a Bloomerang id")
                    if payload:
                        written = writer.update(result.bloomerang_id, payload)
                        result.action = "updated"
                    else:
                        result.action = "unchanged"
                else:
                    raise ValueError(f"unknown plan action {action!r}")
                if written is not None:
                    result.bloomerang_id = int(written["Id"])
            except (ApiError, UnresolvedRefError, ValueError) as exc:
                result.action = "failed"
                result.error = str(exc)
                if action == "create" and isinstance(exc, OutcomeUnknownError):
                    # the POST may have been applied: keep the pending marker so the next run looks the
                    # record up by its correlation id instead of creating it a second time
                    result.extra["pending"] = True
                written = None
                log.warning("%s %s:%s failed: %s", writer.entity, result.source, result.source_id, exc)
        ledger.record(result, written)
        if result.extra.get("pending"):  # recorded as failed, but its create stays to be looked up next run
            ledger.mark_pending(writer.entity, result.source, result.source_id, result.payload_hash)
        if result.bloomerang_id is not None and result.action != "failed" and on_written is not None:
            on_written(result, written or {})
        results.append(result)
        progress.record(result.action, attempted_write=action in ("create", "update"))
    progress.end_entity()
    return results


def recover_pending(
    pending: Iterable[tuple[str, str, str]], writers: dict[str, Writer], ledger: Ledger
) -> list[RecordResult]:
    """Settle creates a killed run left ``pending``: found in Bloomerang → recorded as created."""
    settled: list[RecordResult] = []
    for entity, source, source_id in pending:
        writer = writers.get(entity)
        if writer is None:
            continue
        try:
            found = writer.find_existing(source, source_id, {})
        except ApiError as exc:  # Bloomerang unavailable: leave it pending, try again next run
            log.warning("could not look up pending %s %s:%s: %s", entity, source, source_id, exc)
            continue
        result = RecordResult(entity, source, source_id, "created" if found else "skipped")
        if found is not None:
            result.bloomerang_id = int(found["Id"])
            result.extra["recovered"] = True
        else:
            result.error = "pending write was never committed; it will be planned again"
        ledger.record(result, found)
        settled.append(result)
    return settled


def summarise(results: Iterable[RecordResult]) -> dict[str, dict[str, int]]:
    """Counts per entity and action, e.g. {"constituents": {"created": 3, "failed": 1}}."""
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        bucket = counts.setdefault(result.entity, {})
        bucket[result.action] = bucket.get(result.action, 0) + 1
    return counts
