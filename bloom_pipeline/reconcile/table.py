"""Write a reconciliation into the org's staging database: ``reconciliation`` and ``reconciliation_records``.

Why keep it: month-end close is a query, not a terminal scroll — ``SELECT ... FROM reconciliation WHERE status
= 'differs'`` over the analyst snapshot, joined to the explaining records. The tables hold the latest
reconciliation of each day: a rerun over a window replaces the rows of its days (in one transaction, so a
reader never sees half a window), days outside it are kept. Money is stored in dollars (``DECIMAL(18, 2)``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from bloom_pipeline.reconcile.run import Reconciliation
from bloom_pipeline.staging import ddl
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.staging.writes import insert_frame

TOTALS_TABLE = "reconciliation"
RECORDS_TABLE = "reconciliation_records"


def _dollars(cents: Any) -> Decimal | None:
    if cents is None or pd.isna(cents):
        return None
    return Decimal(int(cents)).scaleb(-2)


def totals_rows(result: Reconciliation) -> pd.DataFrame:
    t = result.totals
    frame = pd.DataFrame({
        "day": t["day"], "fund_key": t["fund_key"], "fund_id": t["fund_id"], "fund": t["fund"],
        "source_amount": t["source_cents"].map(_dollars), "source_refunds": t["source_refund_cents"].map(_dollars),
        "staged_amount": t["staged_cents"].map(_dollars), "staged_refunds": t["staged_refund_cents"].map(_dollars),
        "bloomerang_amount": t["bloomerang_cents"].map(_dollars),
        "bloomerang_refunds": t["bloomerang_refund_cents"].map(_dollars),
        "difference": t["difference_cents"].map(_dollars),
        "refund_difference": t["refund_difference_cents"].map(_dollars),
        "records": t["records"].astype("int64"), "status": t["status"],
    })
    return frame.assign(reconcile_id=result.reconcile_id, reconciled_at=result.reconciled_at)


def record_rows(result: Reconciliation) -> pd.DataFrame:
    e = result.explanations
    frame = pd.DataFrame({
        "day": e["day"], "fund_key": e["fund_key"], "fund_id": e["fund_id"], "fund": e["fund"],
        "source": e["source"], "source_id": e["source_id"].astype(str),
        "bloomerang_id": pd.array(e["bloomerang_id"], dtype="Int64"), "reason": e["reason"], "detail": e["detail"],
        "source_amount": e["source_cents"].map(_dollars), "staged_amount": e["staged_cents"].map(_dollars),
        "bloomerang_amount": e["bloomerang_cents"].map(_dollars),
    })
    return frame.assign(reconcile_id=result.reconcile_id, reconciled_at=result.reconciled_at)


def write_reconciliation(store: StagingStore, result: Reconciliation) -> int:
    """Replace the window's days in both tables with ``result``; returns the number of day/fund rows written."""
    totals = totals_rows(result)
    records = record_rows(result)
    with store.write() as con:
        for statement in ddl.RECONCILIATION_DDL:
            con.execute(statement)
        for table in (TOTALS_TABLE, RECORDS_TABLE):
            con.execute(f"DELETE FROM {ddl.check_identifier(table)} WHERE day BETWEEN ? AND ?",  # noqa: S608
                        [result.window.since, result.window.until])
        # rows without a day cannot be stored against one; every line in a result has a day (in_window)
        insert_frame(con, TOTALS_TABLE, totals.dropna(subset=["day"]))
        insert_frame(con, RECORDS_TABLE, records.dropna(subset=["day"]))
    return len(totals)
