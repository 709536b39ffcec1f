"""Bloomerang: what it already holds, so identity is decided by Bloomerang and not by a local file.

Constituents and transactions changed since their ``lastModified`` cursors are upserted into the stored
snapshots (a nightly run reads only what changed; a run with no cursor — a new machine, a lost data
folder — pages the whole list once, 50 per request). The transaction snapshot carries the correlation
custom values of each designation, so a gift created by an earlier run, another deployment or another
tool is found before anything is created. Funds, campaigns, appeals and custom fields are small full reads.
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.extract.cursors import OVERLAP, read_cursor
from bloom_pipeline.sync.extract.records import Extracted


def extract_bloomerang(client: Any, store: StagingStore, run_id: str, out: Extracted) -> None:
    """Constituents changed since the cursor (upserted into the snapshot) and the reference lists."""
    since = read_cursor(store, "bloomerang.constituents.lastModified")
    changed = list(client.iter_constituents(
        last_modified=None if since is None else since - OVERLAP, order_by="LastModifiedDate",
        order_direction="Asc",
    ))
    store.write_raw("bloomerang", "constituents", changed, run_id=run_id, id_key="Id")
    out.records["bloomerang.constituents"] = changed
    since = read_cursor(store, "bloomerang.transactions.lastModified")
    gifts = list(client.iter_transactions(
        last_modified=None if since is None else since - OVERLAP, order_by="LastModifiedDate",
        order_direction="Asc",
    ))
    store.write_raw("bloomerang", "transactions", gifts, run_id=run_id, id_key="Id")
    out.records["bloomerang.transactions"] = gifts
    for entity, rows in (
        ("funds", list(client.iter_funds())),
        ("campaigns", list(client.iter_campaigns())),
        ("appeals", list(client.iter_appeals())),
        ("tributes", list(client.iter_tributes())),
        ("custom_fields", [dict(f, Area=area) for area in ("Constituent", "Transaction")
                           for f in client.custom_fields(area)]),
    ):
        store.write_raw("bloomerang", entity, rows, run_id=run_id, window="all", id_key="Id")
        out.records[f"bloomerang.{entity}"] = rows
