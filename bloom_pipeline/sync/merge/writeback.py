"""Correlation ids written back to the source: WeGive keeps the Bloomerang id on donors and funds.

WeGive's ``bloomerang_id`` is the source's half of the identity (the other half is the correlation
custom value we store in Bloomerang). It is written where it differs from the link in ``sync_state``;
a failed write-back is logged and retried on the next run, it never fails the run.
"""

from __future__ import annotations

import logging

import duckdb

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging import ledgers
from bloom_pipeline.sync.context import RunContext

log = logging.getLogger(__name__)


def write_back_correlation(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> None:
    """Write each linked WeGive donor's and fund's Bloomerang id to WeGive where WeGive holds another."""
    wegive = ctx.clients.wegive
    for entity, records, update in (
        ("constituents", ctx.extracted.records.get("wegive.donors", []), wegive.update_donor),
        ("funds", ctx.extracted.records.get("wegive.funds", []), wegive.update_fund),
    ):
        current = {str(r["id"]): r.get("bloomerang_id") for r in records}
        states = ledgers.states_frame(con, entity, "wegive").dropna(subset=["bloomerang_id"])
        for source_id, bloomerang_id in states[["source_id", "bloomerang_id"]].itertuples(index=False):
            if source_id in current and str(current[source_id] or "") != str(int(bloomerang_id)):
                try:
                    update(int(source_id), {"bloomerang_id": int(bloomerang_id)})
                except ApiError as exc:
                    log.warning("could not write bloomerang_id back to WeGive %s %s: %s", entity, source_id, exc)
