"""Correlation ids written back to the source: WeGive keeps the Bloomerang id on donors and funds.

WeGive's ``bloomerang_id`` is the source's half of the identity (the other half is the correlation
custom value we store in Bloomerang). It is written where it differs from the link in ``sync_state``;
a failed write-back is logged and retried on the next run, it never fails the run.

Why the writes go out several at a time (``wegive.write_connections`` in the org YAML, default 4; 1 = one
at a time): a first load writes back every new link, one request each, and one request at a time spends
WeGive's latency once per donor — 315 donors at 200 ms took 62 s, longer than a Bloomerang budget window, so
the Bloomerang slots freed meanwhile were lost (``benchmarks/budget_use.py``). WeGive documents no rate
limit (contracts/wegive-handbid.md); a 429 is retried by the session like any other. Only the requests
leave this thread: each donor's answer is handed to the client's ``on_donor_detail`` (the stored donor
details, DuckDB) here, as the answers come in, never from a request thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any

import duckdb

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging import ledgers
from bloom_pipeline.sync.context import RunContext

log = logging.getLogger(__name__)


def write_back_correlation(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> None:
    """Write each linked WeGive donor's and fund's Bloomerang id to WeGive where WeGive holds another."""
    wegive = ctx.clients.wegive
    connections = ctx.org.wegive.write_connections
    for entity, records, update in (
        ("constituents", ctx.extracted.records.get("wegive.donors", []), wegive.update_donor),
        ("funds", ctx.extracted.records.get("wegive.funds", []), wegive.update_fund),
    ):
        current = {str(r["id"]): r.get("bloomerang_id") for r in records}
        states = ledgers.links_frame(con, entity, "wegive")
        due = [(str(source_id), int(bloomerang_id))
               for source_id, bloomerang_id in states[["source_id", "bloomerang_id"]].itertuples(index=False)
               if source_id in current and str(current[source_id] or "") != str(int(bloomerang_id))]
        if connections <= 1 or len(due) <= 1:
            for source_id, bloomerang_id in due:
                _settle(entity, source_id, partial(update, int(source_id), {"bloomerang_id": bloomerang_id}))
            continue
        with _answers_kept_here(wegive) as keep_answers, ThreadPoolExecutor(
                max_workers=connections, thread_name_prefix="wegive-write") as pool:
            sent: dict[Future[Any], str] = {pool.submit(update, int(source_id), {"bloomerang_id": bloomerang_id}):
                                            source_id for source_id, bloomerang_id in due}
            try:
                for future in as_completed(sent):
                    _settle(entity, sent[future], future.result)
                    keep_answers(False)
            except BaseException:  # an unexpected error stops the write-back as it would one at a time
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def _settle(entity: str, source_id: str, outcome: Callable[[], Any]) -> None:
    try:
        outcome()
    except ApiError as exc:
        log.warning("could not write bloomerang_id back to WeGive %s %s: %s", entity, source_id, exc)


# answers handed over together: one staging transaction per batch, not one per donor (a first load writes back
# every donor; one transaction each was a fifth of its main thread)
ANSWER_BATCH = 200


@contextlib.contextmanager
def _answers_kept_here(wegive: Any) -> Iterator[Callable[[bool], None]]:
    """While the block runs, donor answers of the request threads are queued instead of handed to the client's
    ``on_donor_detail``; the function yielded hands the queued ones over in this thread (DuckDB stays in the
    thread that holds the staging connection) once ANSWER_BATCH are queued, or all of them when called with
    True, as it is on the way out. The stored details are a cache (a detail not kept is fetched again next
    run), so holding a batch back costs nothing on a crash."""
    keep = getattr(wegive, "on_donor_detail", None)
    if keep is None:
        yield lambda everything: None
        return
    queued: deque[Any] = deque()  # append / popleft are atomic: the request threads only append
    keep_many = getattr(keep, "record_many", None)

    def one_by_one(details: list[Any]) -> None:
        for detail in details:
            try:
                keep(detail)
            except Exception:  # a cache of the answer must never fail the write itself (as WeGiveClient does)
                log.warning("could not keep the detail WeGive answered for donor %s", detail.get("id"),
                            exc_info=True)

    def hand_over(everything: bool) -> None:
        if not queued or (not everything and len(queued) < ANSWER_BATCH):
            return
        details = [queued.popleft() for _ in range(len(queued))]
        if keep_many is None:
            one_by_one(details)
            return
        try:
            keep_many(details)
        except Exception:  # the batch as a whole failed: keep what can be kept, one by one
            log.warning("could not keep %d WeGive answers at once; one by one", len(details), exc_info=True)
            one_by_one(details)

    wegive.on_donor_detail = queued.append
    try:
        yield hand_over
    finally:
        wegive.on_donor_detail = keep
        hand_over(True)
