"""Apply a push plan to Bloomerang: one record at a time, crash-safe and idempotent.

Bloomerang v2 has no idempotency keys and no batch write, so safety comes from three rules:

1. *Mark before you write.* A create is recorded as ``pending`` in ``sync_state`` before the POST.
   A run killed between the POST and its bookkeeping leaves that marker, and the next run resolves it
   by looking the record up by its correlation id before planning anything (``recover_pending``).
2. *Never retry a POST blindly.* When the answer is lost (``OutcomeUnknownError``: dropped
   connection, read timeout) the writer looks the record up by its correlation id; only when Bloomerang
   certainly lacks it is the POST sent again.
3. *Record at once.* Each write's outcome is journaled the moment its answer is in, and one failing
   record is logged with the API's message while the others go on.

Several writes may be in flight at once (``pool.py``: as many as the rate budget can use, up to the org's
``write_connections``); only the requests leave the calling thread — resolving references, the pending
marker, the journal and DuckDB stay in it, in plan order for the markers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Protocol

import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sync.apply.pool import PoolSize
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
    return jsontext.loads(value)


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


Job = Callable[[], dict[str, Any]]
# The plan columns a row's write reads (``_new_result``, ``_prepare``)
ROW_COLUMNS = ("source", "source_id", "bloomerang_id", "action", "payload", "diff", "payload_hash", "reason", "link",
               "target_ref")


def _new_result(writer: Writer, row: dict[str, Any]) -> RecordResult:
    return RecordResult(
        entity=writer.entity,
        source=str(row["source"]),
        source_id=str(row["source_id"]),
        action="unchanged",
        bloomerang_id=None if present(row.get("bloomerang_id")) is None else int(row["bloomerang_id"]),
        diff=_payload(present(row.get("diff"))) or None,
        payload_hash=present(row.get("payload_hash")),
    )


def _prepare(row: dict[str, Any], writer: Writer, resolver: RefResolver, result: RecordResult) -> Job | None:
    """Everything of a row's write but the request (main thread): its references resolved, its target known.

    Returns the request to send (``result.action`` says what it will be), or None when nothing is sent.
    Raises what fails the record (ApiError, UnresolvedRefError, ValueError)."""
    action = row["action"]
    if present(row.get("link")) and action == "unchanged":
        result.extra["link"] = True  # matched and identical: record the pair, send nothing
    if action in ("unchanged", "skipped", "blocked"):
        result.action = "skipped" if action in ("skipped", "blocked") else "unchanged"
        result.error = present(row.get("reason")) if action != "unchanged" else None
        return None
    text = row["payload"]
    payload = (resolver.resolve_owned(jsontext.loads(text)) if isinstance(text, str)
               else resolver.resolve(_payload(text)))
    if action == "create":
        result.action = "created"
        return lambda: create_with_recovery(writer, result.source, result.source_id, payload)
    if action == "update":
        target = present(row.get("target_ref"))
        if result.bloomerang_id is None and target is not None:
            result.bloomerang_id = resolver.lookup(target)  # follower of a record created this run
            result.extra["link"] = True
        if result.bloomerang_id is None:
            raise ValueError("update planned without a Bloomerang id")
        if not payload:
            result.action = "unchanged"
            return None
        result.action = "updated"
        bloomerang_id = result.bloomerang_id
        return lambda: writer.update(bloomerang_id, payload)
    raise ValueError(f"unknown plan action {action!r}")


def _fail(result: RecordResult, action: str, exc: Exception) -> None:
    result.action = "failed"
    result.error = str(exc)
    if action == "create" and isinstance(exc, OutcomeUnknownError):
        # the POST may have been applied: keep the pending marker so the next run looks the
        # record up by its correlation id instead of creating it a second time
        result.extra["pending"] = True
    log.warning("%s %s:%s failed: %s", result.entity, result.source, result.source_id, exc)


class _Apply:
    """One ``apply_plan`` call: rows prepared, journaled and recorded in the calling thread; only the
    requests themselves run on the pool's threads (DuckDB and the journal never leave this thread)."""

    def __init__(self, writer: Writer, resolver: RefResolver, ledger: Ledger,
                 on_written: Callable[[RecordResult, dict[str, Any]], None] | None, pool: PoolSize | None) -> None:
        self.writer, self.resolver, self.ledger, self.on_written = writer, resolver, ledger, on_written
        self.pool = pool or PoolSize(1)
        self.progress = current_progress()  # records done / total, writes, failures, ETA (silent outside a CLI)
        self.in_flight: dict[Future[dict[str, Any]], tuple[RecordResult, str]] = {}
        # each future puts itself here when it is done. Why not ``concurrent.futures.wait``: it locks and hooks
        # every future in flight on each call, once per write on the thread every write waits for.
        self.done: SimpleQueue[Future[dict[str, Any]]] = SimpleQueue()

    def finish(self, result: RecordResult, action: str, outcome: Future[dict[str, Any]] | None) -> None:
        """A row is done: its result recorded (journal first), its id made resolvable for the rows after it."""
        written: dict[str, Any] | None = None
        if outcome is not None:
            try:
                written = outcome.result()
                if written is not None:
                    result.bloomerang_id = int(written["Id"])
            except (ApiError, UnresolvedRefError, ValueError) as exc:
                _fail(result, action, exc)
                written = None
        self.ledger.record(result, written)
        if result.extra.get("pending"):  # recorded as failed, but its create stays to be looked up next run
            self.ledger.mark_pending(self.writer.entity, result.source, result.source_id, result.payload_hash)
        if result.bloomerang_id is not None and result.action != "failed" and self.on_written is not None:
            self.on_written(result, written or {})
        self.progress.record(result.action, attempted_write=action in ("create", "update"))

    def wait_one(self) -> None:
        """Wait for a write in flight to finish; record it and every other one already done."""
        future = self.done.get()
        while True:
            entry = self.in_flight.pop(future, None)  # None: recorded already (the clean-up after an error)
            if entry is not None:
                self.finish(entry[0], entry[1], future)
            if self.done.empty() and entry is not None:
                return
            future = self.done.get()

    def drain(self) -> None:
        while self.in_flight:
            self.wait_one()

    def busy(self, bloomerang_id: int | None) -> bool:
        """A write to this Bloomerang record is in flight (two writes to one record go in plan order)."""
        return bloomerang_id is not None and any(r.bloomerang_id == bloomerang_id for r, _ in self.in_flight.values())

    def run(self, rows: list[dict[str, Any]], executor: ThreadPoolExecutor | None) -> list[RecordResult]:
        results: list[RecordResult] = []
        for row in rows:
            action = row["action"]
            while True:
                result = _new_result(self.writer, row)
                try:
                    job = _prepare(row, self.writer, self.resolver, result)
                except UnresolvedRefError as exc:
                    if self.in_flight:  # a write still in flight may be the record it names: wait, try again
                        self.wait_one()
                        continue
                    _fail(result, action, exc)
                    job = None
                except (ApiError, ValueError) as exc:
                    _fail(result, action, exc)
                    job = None
                if job is not None and self.busy(result.bloomerang_id):
                    self.wait_one()
                    continue
                break
            results.append(result)
            if job is None:
                self.finish(result, action, None)
                continue
            if action == "create":
                self.ledger.mark_pending(self.writer.entity, result.source, result.source_id, result.payload_hash)
            if executor is None:
                self.finish(result, action, _done(job))
                continue
            while len(self.in_flight) >= self.pool(len(self.in_flight)):
                self.wait_one()
            future = executor.submit(job)
            self.in_flight[future] = (result, action)
            future.add_done_callback(self.done.put)
            self.pool.peak = max(self.pool.peak, len(self.in_flight))
        self.drain()
        return results


def _done(job: Job) -> Future[dict[str, Any]]:
    """The serial path: the request sent in this thread, its outcome handed over like a pool's."""
    future: Future[dict[str, Any]] = Future()
    try:
        future.set_result(job())
    except BaseException as exc:  # noqa: BLE001 - re-raised by ``result()`` exactly where the pool's would be
        future.set_exception(exc)
    return future


def apply_plan(
    plan: pd.DataFrame,
    writer: Writer,
    resolver: RefResolver,
    ledger: Ledger,
    *,
    on_written: Callable[[RecordResult, dict[str, Any]], None] | None = None,
    pool: PoolSize | None = None,
) -> list[RecordResult]:
    """Carry out every row of ``plan`` (columns: source, source_id, bloomerang_id, action, payload,
    diff, payload_hash, reason). Returns one RecordResult per row, in plan order.

    ``pool`` (``pool.PoolSize``) lets up to its cap of requests be in flight at once, on as many threads; the
    rows are still taken in plan order, a row that names a record not yet known waits for the writes in flight,
    and two writes to one Bloomerang record never overlap. None or a cap of 1: one write at a time."""
    # only the columns the loop reads become dict entries: a plan carries twice as many, each boxed per row
    rows = plan[[c for c in ROW_COLUMNS if c in plan.columns]].to_dict("records")
    applying = _Apply(writer, resolver, ledger, on_written, pool)
    applying.progress.start_entity(writer.entity, len(rows), sum(r["action"] in ("create", "update") for r in rows))
    if applying.pool.cap <= 1:
        results = applying.run(rows, None)
    else:
        try:
            results = applying.run(rows, applying.pool.executor())
        finally:
            # an unexpected error: the writes already sent are still recorded (their pending markers would
            # otherwise be looked up next run — safe, but a lookup each)
            for future in list(applying.in_flight):
                result, action = applying.in_flight.pop(future)
                try:
                    applying.finish(result, action, future)
                except Exception:  # noqa: BLE001 - the first error is the one raised
                    log.exception("could not record %s %s:%s", result.entity, result.source, result.source_id)
    applying.progress.end_entity()
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
