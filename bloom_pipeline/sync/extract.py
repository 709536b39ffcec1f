"""Extract from the three APIs into ``raw_*`` tables: incrementally where the API allows it.

* WeGive transactions: ``updated_at[start]`` from the stored cursor (or a created-date window for a
  partition / backfill). WeGive donors have no modification filter: a full scan every run, and the
  hash of each mapped record against ``sync_state`` decides what changed (nothing unchanged is written).
* Handbid contacts: ``updatedSince`` cursor; payments, receipts and items only of *reconciled* auctions
  (Handbid's own rule: an event's transactions are final only once it is reconciled).
* Bloomerang constituents: ``lastModified`` cursor, upserted into the stored snapshot, so a nightly
  run reads only what changed; funds, campaigns, appeals and custom fields are small full reads.

Cursors are *proposed* here and committed by the runner only when a non-dry run succeeds.
Cursor reads overlap by a second: Bloomerang's and Handbid's filters are strictly-after with
one-second resolution, and a re-read record is harmless (its hash is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore, Window

Record = dict[str, Any]
OVERLAP = timedelta(seconds=1)


@dataclass
class Extracted:
    """What one run read, keyed ``source.entity``."""

    records: dict[str, list[Record]] = field(default_factory=dict)

    def count(self, key: str) -> int:
        return len(self.records.get(key, []))

    @property
    def cursors(self) -> dict[str, str]:
        """The cursors this run proposes: the newest modification time it read per incremental list."""
        proposed = {}
        for name, key, read in (
            ("wegive.transactions.updated_at", "wegive.transactions", lambda r: r.get("updated_at")),
            ("handbid.contacts.dateUpdated", "handbid.contacts", lambda r: r.get("dateUpdated")),
            ("bloomerang.constituents.lastModified", "bloomerang.constituents",
             lambda r: (r.get("AuditTrail") or {}).get("LastModifiedDate")),
        ):
            times = [t for t in (parse_time(read(r)) for r in self.records.get(key, [])) if t is not None]
            if times:
                proposed[name] = max(times).isoformat()
        return proposed


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (with Z or offset) or epoch seconds → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_cursor(store: StagingStore, name: str) -> datetime | None:
    with store.connect() as con:
        return parse_time(ledgers.get_cursor(con, name))


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


def extract_handbid(
    client: Any, store: StagingStore, run_id: str, out: Extracted, *, contacts_since: datetime | None = None
) -> None:
    """Contacts since the cursor; auctions; receipts, payments and items of reconciled auctions."""
    since = contacts_since or read_cursor(store, "handbid.contacts.dateUpdated")
    contacts = list(client.iter_contacts(updated_since=None if since is None else since - OVERLAP))
    store.write_raw("handbid", "contacts", contacts, run_id=run_id)
    out.records["handbid.contacts"] = contacts
    auctions = list(client.iter_auctions())
    store.write_raw("handbid", "auctions", auctions, run_id=run_id, window="all")
    out.records["handbid.auctions"] = auctions
    receipts: list[Record] = []
    payments: list[Record] = []
    items: list[Record] = []
    for auction in auctions:
        if str(auction.get("status", "")).lower() != "reconciled":
            continue
        receipts += list(client.iter_receipts(auction["id"]))
        payments += list(client.iter_payments(auction["id"]))
        items += list(client.iter_items(auction["id"]))
    for entity, rows in (("receipts", receipts), ("payments", payments), ("items", items)):
        store.write_raw("handbid", entity, rows, run_id=run_id)
        out.records[f"handbid.{entity}"] = rows


def extract_bloomerang(client: Any, store: StagingStore, run_id: str, out: Extracted) -> None:
    """Constituents changed since the cursor (upserted into the snapshot) and the reference lists."""
    since = read_cursor(store, "bloomerang.constituents.lastModified")
    changed = list(client.iter_constituents(
        last_modified=None if since is None else since - OVERLAP, order_by="LastModifiedDate",
        order_direction="Asc",
    ))
    store.write_raw("bloomerang", "constituents", changed, run_id=run_id, id_key="Id")
    out.records["bloomerang.constituents"] = changed
    for entity, rows in (
        ("funds", list(client.iter_funds())),
        ("campaigns", list(client.iter_campaigns())),
        ("appeals", list(client.iter_appeals())),
        ("custom_fields", [dict(f, Area=area) for area in ("Constituent", "Transaction")
                           for f in client.custom_fields(area)]),
    ):
        store.write_raw("bloomerang", entity, rows, run_id=run_id, window="all", id_key="Id")
        out.records[f"bloomerang.{entity}"] = rows


def stored_records(store: StagingStore, source: str, entity: str) -> list[Record]:
    """Every record of a raw table (e.g. the whole Bloomerang constituent snapshot)."""
    import json

    from bloom_pipeline.staging import ddl

    table = ddl.raw_table(source, entity)
    with store.connect() as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
        if not exists:
            return []
        rows = con.execute(f"SELECT record FROM {table}").fetchall()  # table name checked by ddl
    return [json.loads(r[0]) for r in rows]


RAW_KEYS = (
    ("bloomerang", "constituents"), ("bloomerang", "funds"), ("bloomerang", "campaigns"), ("bloomerang", "appeals"),
    ("bloomerang", "custom_fields"), ("wegive", "donors"), ("wegive", "funds"), ("wegive", "fund_allocations"),
    ("wegive", "transactions"), ("handbid", "contacts"), ("handbid", "auctions"), ("handbid", "receipts"),
    ("handbid", "payments"), ("handbid", "items"),
)


def load_extracted(store: StagingStore, run_id: str) -> Extracted:
    """What a run extracted, read back from the raw tables (how a later Dagster step sees it)."""
    import json

    from bloom_pipeline.staging import ddl

    out = Extracted()
    with store.connect() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for source, entity in RAW_KEYS:
            table = ddl.raw_table(source, entity)
            if table in tables:
                rows = con.execute(f"SELECT record FROM {table} WHERE run_id = ?", [run_id]).fetchall()
                if rows:
                    out.records[f"{source}.{entity}"] = [json.loads(r[0]) for r in rows]
    return out
