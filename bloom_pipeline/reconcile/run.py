"""Reconcile one org over a window of days: read the three systems, total them, attribute the differences.

What is read, and why there:

* **Source** — the latest extract of each WeGive transaction and Handbid payment (``raw_*`` tables): the
  records exactly as the APIs returned them at the last sync, with the amounts in the sources' own cents.
  Reconciliation answers "did what the sources gave us arrive", so it does not call WeGive or Handbid.
* **Staged** — ``stg_transactions`` (what the mapping made of them), one line per designation.
* **Bloomerang** — read live, because a gift edited or deleted there is what this must catch and the stored
  snapshot only ever learns of changes, never of deletions: ``GET /transactions`` ordered by ``Date``
  descending, 50 per page, stopping at the first transaction dated before the window; only transactions whose
  designations carry our correlation values count (``lines.bloomerang_lines``).
* **Ledger** — ``quarantine`` (reasons), ``sync_log`` (failures) and ``sync_state`` (links, what was loaded).

The day of a gift is its calendar day in the org's time zone (``OrgConfig.timezone``), the day the mapping
gives Bloomerang's ``Date``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.reconcile import explain as ex
from bloom_pipeline.reconcile import lines as ln
from bloom_pipeline.reconcile.totals import DayWindow, in_window, totals
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.snapshot import custom_field_ids

DEFAULT_DAYS = 30
CUSTOM_FIELD_AREAS = ("Constituent", "Transaction")  # both: the org YAML names fields of both


def default_window(timezone: str, *, days: int = DEFAULT_DAYS, now: datetime | None = None) -> DayWindow:
    """The last ``days`` days up to today, in the org's time zone (today included)."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
    return DayWindow(today - timedelta(days=days - 1), today)


@dataclass
class Reconciliation:
    """The outcome of one reconciliation: per day/fund totals, and the explaining records."""

    org: str
    window: DayWindow
    totals: pd.DataFrame
    explanations: pd.DataFrame
    funds: ln.Funds
    reconcile_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    reconciled_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    bloomerang_read: int = 0  # transactions read from Bloomerang

    @property
    def matches(self) -> bool:
        return self.explanations.empty and bool((self.totals["status"] == "match").all())

    @property
    def exit_code(self) -> int:
        return 0 if self.matches else 1

    def mismatches(self) -> pd.DataFrame:
        return self.totals[self.totals["status"] != "match"].reset_index(drop=True)


# -- reading the staging database -------------------------------------------------------------------------

def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND "
                      "table_schema = 'main'", [table]).fetchone()
    return bool(row and row[0])


def _latest_raw(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    """The latest copy of every record of a raw table (the raw tables of upserted lists keep one; a window
    rerun keeps its own)."""
    if not _has_table(con, table):
        return []
    rows = con.execute(
        f"SELECT record FROM {table} QUALIFY row_number() OVER (PARTITION BY source_id "  # noqa: S608 - constant
        "ORDER BY extracted_at DESC) = 1"
    ).fetchall()
    return [jsontext.loads(r[0]) for r in rows]


@dataclass
class StagedInputs:
    wegive: list[dict[str, Any]]
    handbid: list[dict[str, Any]]
    auction_names: dict[str, str]
    staged: pd.DataFrame
    wegive_fund_links: dict[str, int]
    wegive_fund_names: dict[str, str]
    ledger: ex.Ledger
    excluded: frozenset[ex.Key]


def _ledger(con: duckdb.DuckDBPyConnection, records: Mapping[str, list[dict[str, Any]]],
            staged: pd.DataFrame) -> tuple[ex.Ledger, frozenset[ex.Key]]:
    events = con.execute("""
        WITH events AS (
            SELECT source, source_id, 'quarantined:' || kind AS outcome, array_to_string(reasons, '; ') AS detail,
                   quarantined_at AS event_at
            FROM quarantine
            WHERE entity IN ('transactions', 'payments') AND kind IN ('invalid', 'excluded')
              AND source IN ('wegive', 'handbid') AND source_id IS NOT NULL
            UNION ALL
            SELECT source, source_id, action, coalesce(error, ''), logged_at
            FROM sync_log
            WHERE entity = 'transactions' AND direction = 'push' AND action <> 'quarantined'
              AND source_id IS NOT NULL
        )
        SELECT source, source_id, outcome, detail FROM events
        QUALIFY row_number() OVER (PARTITION BY source, source_id ORDER BY event_at DESC) = 1
    """).fetchall()
    outcomes: dict[ex.Key, tuple[str, str]] = {}
    excluded: set[ex.Key] = set()
    for source, source_id, outcome, detail in events:
        key = (str(source), str(source_id))
        if outcome == "quarantined:excluded":
            excluded.add(key)
        elif outcome == "quarantined:invalid":
            outcomes[key] = (ex.QUARANTINED, detail or "quarantined")
        elif outcome == "failed":
            outcomes[key] = (ex.FAILED, detail or "failed")
    state = con.execute("SELECT source, source_id, bloomerang_id, source_hash FROM sync_state "
                        "WHERE entity = 'transactions' AND bloomerang_id IS NOT NULL").fetchall()
    hashes = {(str(s), str(i)): h for s, i, h in
              zip(staged.get("source", []), staged.get("source_id", []), staged.get("payload_hash", []), strict=True)}
    linked = {(str(s), str(i)): int(b) for s, i, b, _ in state}
    pushed = frozenset(k for s, i, _, h in state if hashes.get(k := (str(s), str(i))) == h)
    gifts = {"wegive": ln.WEGIVE_GIFTS, "handbid": ln.HANDBID_GIFTS}
    not_gifts = {(source, ln.record_key(r)): str(r.get("status")) for source, rows in records.items()
                 for r in rows if r.get("status") not in gifts[source]}
    return ex.Ledger(outcomes=outcomes, linked=linked, pushed=pushed, not_gifts=not_gifts), frozenset(excluded)


def read_staging(store: StagingStore, window: DayWindow) -> StagedInputs:
    """Everything reconciliation needs from the org's staging database, in one short-lived connection."""
    with store.connect() as con:
        wegive = _latest_raw(con, "raw_wegive_transactions")
        handbid = _latest_raw(con, "raw_handbid_payments")
        auctions = _latest_raw(con, "raw_handbid_auctions")
        staged = con.execute(
            "SELECT source, source_id, date, is_refunded, payload, payload_hash FROM stg_transactions "
            "WHERE date BETWEEN ? AND ?", [window.since, window.until]).df()
        links = con.execute("SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'funds' "
                            "AND source = 'wegive' AND bloomerang_id IS NOT NULL").fetchall()
        names = con.execute("SELECT source_id, name FROM stg_funds WHERE source = 'wegive'").fetchall()
        if _has_table(con, "raw_wegive_funds"):
            names = [(r.get("id"), r.get("name")) for r in _latest_raw(con, "raw_wegive_funds")] + names
        ledger, excluded = _ledger(con, {"wegive": wegive, "handbid": handbid}, staged)
    return StagedInputs(
        wegive=wegive, handbid=handbid,
        auction_names={str(a.get("id")): str(a.get("name")) for a in auctions if a.get("name")},
        staged=staged, wegive_fund_links={str(s): int(b) for s, b in links},
        wegive_fund_names={str(s): str(n) for s, n in names if s is not None and n},
        ledger=ledger, excluded=excluded,
    )


# -- reading Bloomerang -----------------------------------------------------------------------------------

def bloomerang_in_window(client: Any, window: DayWindow) -> Iterator[dict[str, Any]]:
    """Bloomerang's transactions dated in ``window``: newest first, 50 a page, stopping below the window.

    Bloomerang has no date filter on ``GET /transactions``; ordering by ``Date`` descending lets the scan stop
    at the first page that reaches before the window instead of reading the org's whole history.
    """
    for record in client.iter_transactions(order_by="Date", order_direction="Desc"):
        day = ln.as_day(record.get("Date"))
        if day is None:
            continue
        if day < window.since:
            return
        if day <= window.until:
            yield record


def _label(frame: pd.DataFrame, funds: ln.Funds) -> pd.DataFrame:
    frame = frame.copy()
    keys = frame["fund_key"].astype(str)
    frame.insert(2, "fund", [funds.label(k) for k in keys])
    frame.insert(2, "fund_id", pd.array([funds.bloomerang_id(k) for k in keys], dtype="Int64"))
    return frame


def reconcile_org(org: OrgConfig, store: StagingStore, bloomerang: Any, window: DayWindow) -> Reconciliation:
    """Reconcile ``org`` over ``window`` (``bloomerang``: a ``BloomerangClient``).

    Raises ``ConfigurationError`` (``CustomFieldError``) when Bloomerang lacks the org's correlation fields;
    API errors propagate as ``ApiError``.
    """
    inputs = read_staging(store, window)
    field_ids = custom_field_ids(org, [dict(f, Area=area) for area in CUSTOM_FIELD_AREAS
                                       for f in bloomerang.custom_fields(area)]).transaction
    funds = ln.Funds(bloomerang={int(f["Id"]): str(f.get("Name") or f["Id"]) for f in bloomerang.iter_funds()
                                 if f.get("Id") is not None},
                     wegive_links=inputs.wegive_fund_links, wegive_names=inputs.wegive_fund_names)
    transactions = list(bloomerang_in_window(bloomerang, window))
    source = pd.concat([
        ln.wegive_lines(inputs.wegive, funds, org.timezone),
        ln.handbid_lines(inputs.handbid, funds, org.timezone,
                         lambda auction, name: org.event_choice(auction, name, "fund"), inputs.auction_names),
    ], ignore_index=True)
    if inputs.excluded and len(source):  # out of scope by an org rule: not a gift of this org's books
        keep = [(s, i) not in inputs.excluded for s, i in zip(source["source"], source["source_id"], strict=True)]
        source = source[keep].reset_index(drop=True)
    source = in_window(source, window)
    staged = in_window(ln.staged_lines(inputs.staged, funds), window)
    bloom = in_window(ln.bloomerang_lines(transactions, field_ids, funds), window)
    explanations = ex.explain(source, staged, bloom, inputs.ledger)
    table = totals(source, staged, bloom, explanations)
    return Reconciliation(org=org.name, window=window, totals=_label(table, funds),
                          explanations=_label(explanations, funds), funds=funds, bloomerang_read=len(transactions))


def parse_day(value: str | date | None) -> date | None:
    """``--since`` / ``--until``: an ISO day; None stays None (``ValueError`` for anything else)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value.strip()[:10])
