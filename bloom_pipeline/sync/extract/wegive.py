"""WeGive: donors (a full scan — the API has no modification filter), funds, fund allocations, and
transactions by ``updated_at`` cursor or a created-date window (a partition / backfill)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync.extract.cursors import read_cursor
from bloom_pipeline.sync.extract.records import Extracted


def extract_wegive(
    client: Any,
    store: StagingStore,
    run_id: str,
    out: Extracted,
    *,
    transactions_since: datetime | None = None,
    window: Window | None = None,
    include_constituents: bool = True,
) -> None:
    """Donors (full scan), funds, fund allocations, and transactions (cursor or created window)."""
    if include_constituents:
        donors = list(client.iter_donors())
        store.write_raw("wegive", "donors", donors, run_id=run_id, window="all")
        out.records["wegive.donors"] = donors
        funds = list(client.iter_funds())
        store.write_raw("wegive", "funds", funds, run_id=run_id, window="all")
        out.records["wegive.funds"] = funds
        allocations = list(client.iter_fund_allocations())
        store.write_raw("wegive", "fund_allocations", allocations, run_id=run_id, window="all")
        out.records["wegive.fund_allocations"] = allocations
    if window is not None:
        created = (datetime.combine(window.start, datetime.min.time(), UTC),
                   datetime.combine(window.end + timedelta(days=1), datetime.min.time(), UTC) - timedelta(seconds=1))
        transactions = list(client.iter_transactions(created_range=created))
        store.write_raw("wegive", "transactions", transactions, run_id=run_id, window=window,
                        window_date_of=lambda r: str(r.get("created_at", ""))[:10] or None)
    else:
        since = transactions_since or read_cursor(store, "wegive.transactions.updated_at")
        transactions = list(client.iter_transactions(updated_since=since))
        store.write_raw("wegive", "transactions", transactions, run_id=run_id,
                        window_date_of=lambda r: str(r.get("created_at", ""))[:10] or None)
    out.records["wegive.transactions"] = transactions
