"""Handbid: contacts by ``updatedSince`` cursor; auctions; receipts, payments and items only of
*reconciled* auctions (Handbid's own rule: an event's transactions are final only once it is reconciled)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.staging.writes import texts_and_hashes
from bloom_pipeline.sync.extract.cursors import OVERLAP, read_cursor
from bloom_pipeline.sync.extract.records import Extracted, Record


def extract_handbid(
    client: Any, store: StagingStore, run_id: str, out: Extracted, *, contacts_since: datetime | None = None
) -> None:
    """Contacts since the cursor; auctions; receipts, payments and items of reconciled auctions."""
    since = contacts_since or read_cursor(store, "handbid.contacts.dateUpdated")
    contacts = list(client.iter_contacts(updated_since=None if since is None else since - OVERLAP))
    texts, digests = texts_and_hashes(contacts)  # shared by the raw write and the stage
    store.write_raw("handbid", "contacts", contacts, run_id=run_id, digests=digests, texts=texts)
    out.keep("handbid.contacts", contacts, digests)
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
