"""What a run extracted, and the raw tables it lives in: every record as the API returned it.

``Extracted`` is what one run read, keyed ``source.entity``; ``stored_records`` reads a whole raw table
back (the Bloomerang snapshot), ``load_extracted`` one run's rows (how a later Dagster step sees them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bloom_pipeline import jsontext
from bloom_pipeline.staging import ddl
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.extract.cursors import parse_time

Record = dict[str, Any]


@dataclass
class Extracted:
    """What one run read, keyed ``source.entity``."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    # key -> (the records, their content hashes as the raw write stored them): the stage reuses them
    digests: dict[str, tuple[list[Record], list[str]]] = field(default_factory=dict, repr=False)

    def keep(self, key: str, records: list[Record], digests: list[str]) -> None:
        """The records of ``key`` with the content hashes the raw write was given (``writes.record_hashes``)."""
        self.records[key] = records
        self.digests[key] = (records, digests)

    def digests_of(self, key: str) -> list[str] | None:
        """The content hashes of ``key``'s records, one per record; None when none were kept or the records
        were replaced since (a retry adds records to a list: the stage then hashes them itself)."""
        kept = self.digests.get(key)
        return kept[1] if kept is not None and self.records.get(key) is kept[0] else None

    def count(self, key: str) -> int:
        return len(self.records.get(key, []))

    @property
    def cursors(self) -> dict[str, str]:
        """The cursors this run proposes: the newest modification time it read per incremental list."""
        proposed = {}
        for name, key, read, _ in _INCREMENTAL:
            times = [t for t in (_time_or_none(read(r)) for r in self.records.get(key, [])) if t is not None]
            if times:
                proposed[name] = max(times).isoformat()
        return proposed

    @property
    def read_through(self) -> frozenset[str]:
        """Cursors of the lists this run read to their end whose stamps are UTC by the vendor's contract.

        Such a list is settled up to the run's start minus the clock-skew tolerance (anything written after
        the run started is stamped later than that), so the runner commits that time, not the newest stamp
        read: the records of the last second read are then not read again every quiet night. A source whose
        stamps may be another zone's wall time (WeGive, Handbid) keeps the newest stamp it sent."""
        return frozenset(name for name, key, _, utc in _INCREMENTAL if utc and key in self.records)


# (cursor, records key, a record's modification time, the stamps are UTC by contract — fact sheet § 6)
_INCREMENTAL = (
    ("wegive.transactions.updated_at", "wegive.transactions", lambda r: r.get("updated_at"), False),
    ("handbid.contacts.dateUpdated", "handbid.contacts", lambda r: r.get("dateUpdated"), False),
    ("bloomerang.constituents.lastModified", "bloomerang.constituents",
     lambda r: (r.get("AuditTrail") or {}).get("LastModifiedDate"), True),
    ("bloomerang.transactions.lastModified", "bloomerang.transactions",
     lambda r: (r.get("AuditTrail") or {}).get("LastModifiedDate"), True),
)


def _time_or_none(value: Any) -> datetime | None:
    """A record's modification time for cursor purposes; an unparseable one is ignored (never a crash)."""
    try:
        return parse_time(value)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def stored_records(store: StagingStore, source: str, entity: str) -> list[Record]:
    """Every record of a raw table (e.g. the whole Bloomerang constituent snapshot)."""
    table = ddl.raw_table(source, entity)
    with store.connect() as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
        if not exists:
            return []
        rows = con.execute(f"SELECT record FROM {table}").fetchall()  # table name checked by ddl
    return [jsontext.loads(r[0]) for r in rows]


RAW_KEYS = (
    ("bloomerang", "constituents"), ("bloomerang", "transactions"), ("bloomerang", "funds"),
    ("bloomerang", "campaigns"), ("bloomerang", "appeals"), ("bloomerang", "custom_fields"),
    ("bloomerang", "tributes"),
    ("wegive", "donors"), ("wegive", "archived_donors"), ("wegive", "funds"), ("wegive", "fund_allocations"),
    ("wegive", "transactions"), ("wegive", "pledges"), ("wegive", "scheduled_donations"),
    ("handbid", "contacts"), ("handbid", "auctions"), ("handbid", "receipts"), ("handbid", "payments"),
    ("handbid", "items"),
)


def load_extracted(store: StagingStore, run_id: str) -> Extracted:
    """What a run extracted, read back from the raw tables (how a later Dagster step sees it)."""
    out = Extracted()
    with store.connect() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for source, entity in RAW_KEYS:
            table = ddl.raw_table(source, entity)
            if table in tables:
                rows = con.execute(f"SELECT record FROM {table} WHERE run_id = ?", [run_id]).fetchall()
                if rows:
                    out.records[f"{source}.{entity}"] = [jsontext.loads(r[0]) for r in rows]
    return out
