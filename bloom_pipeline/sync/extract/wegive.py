"""WeGive: donors (a full scan of the list — the API has no modification filter — and the detail of each
donor that is new or changed, ``donor_details``), funds, fund allocations, transactions by ``updated_at``
cursor or a created-date window (a partition / backfill), and the pledges and scheduled donations the
payments belong to (whole lists, every run).

The records of ``wegive.donors`` are donor details (``DonorViewResource``): a list row lacks the last and
middle name and the mailing address the mapping reads (contracts/wegive-handbid.md §1.4). A donor whose
list row did not change is staged from the detail stored at an earlier run, as WeGive answered it then.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.staging.writes import record_digest, record_json, scan_digest, texts_and_hashes
from bloom_pipeline.sync.extract import donor_details
from bloom_pipeline.sync.extract.cursors import read_cursor
from bloom_pipeline.sync.extract.records import Extracted, Record

log = logging.getLogger(__name__)


def extract_wegive(
    client: Any,
    store: StagingStore,
    run_id: str,
    out: Extracted,
    *,
    transactions_since: datetime | None = None,
    window: Window | None = None,
    include_constituents: bool = True,
    read_connections: int = 1,
) -> None:
    """Donors (list scan + the details that changed), funds, fund allocations, and transactions.
    ``read_connections``: most donor-detail reads in flight at once (the org's ``wegive.read_connections``)."""
    if include_constituents:
        active, archived = split_archived(list(client.iter_donors(view=DONOR_VIEW)))
        read = read_donors(client, store, run_id, out.records.get("bloomerang.constituents"), listed=active,
                           connections=read_connections)
        donors, texts = read.details, read.texts  # one text per record, shared by the raw write and the stage
        digests = [record_digest(text) for text in texts]
        store.write_raw("wegive", "donors", donors, run_id=run_id, window="all", digests=digests, texts=texts)
        out.keep("wegive.donors", donors, digests)
        store.write_raw("wegive", "archived_donors", archived, run_id=run_id, window="all")
        out.records["wegive.archived_donors"] = archived
        funds = list(client.iter_funds())
        texts, digests = texts_and_hashes(funds)
        store.write_raw("wegive", "funds", funds, run_id=run_id, window="all", digests=digests, texts=texts)
        out.keep("wegive.funds", funds, digests)
        allocations = list(client.iter_fund_allocations())  # no filter: the whole list every night, mostly unchanged
        store.write_raw("wegive", "fund_allocations", allocations, run_id=run_id, window="all",
                        scan_digest=scan_digest(allocations))
        out.records["wegive.fund_allocations"] = allocations
    if window is not None:
        created = (datetime.combine(window.start, datetime.min.time(), UTC),
                   datetime.combine(window.end + timedelta(days=1), datetime.min.time(), UTC) - timedelta(seconds=1))
        transactions = list(client.iter_transactions(created_range=created))
        texts, digests = texts_and_hashes(transactions)
        store.write_raw("wegive", "transactions", transactions, run_id=run_id, window=window,
                        window_date_of=lambda r: str(r.get("created_at", ""))[:10] or None, digests=digests,
                        texts=texts)
    else:
        since = transactions_since or read_cursor(store, "wegive.transactions.updated_at")
        transactions = list(client.iter_transactions(updated_since=since))
        texts, digests = texts_and_hashes(transactions)
        store.write_raw("wegive", "transactions", transactions, run_id=run_id,
                        window_date_of=lambda r: str(r.get("created_at", ""))[:10] or None, digests=digests,
                        texts=texts)
    out.keep("wegive.transactions", transactions, digests)
    extract_schedules(client, store, run_id, out)


# WeGive's schedules, read whole every run (a few per donor at most; no modification filter on pledges):
# raw table entity -> the client's list. Both views: a cancelled (archived) schedule still has payments.
SCHEDULE_LISTS = (("pledges", "iter_pledges"), ("scheduled_donations", "iter_scheduled_donations"))
SCHEDULE_VIEWS = ("all", "archived")


def extract_schedules(client: Any, store: StagingStore, run_id: str, out: Extracted) -> None:
    """Pledges and scheduled donations, current and archived: the terms (installments, frequency, start
    date, amount, end) the payments' Bloomerang schedules are created from, so that none is guessed."""
    for entity, method in SCHEDULE_LISTS:
        records = [r for view in SCHEDULE_VIEWS for r in getattr(client, method)(view=view)]
        store.write_raw("wegive", entity, records, run_id=run_id, window="all")
        out.records[f"wegive.{entity}"] = records


# The donor list's ``view`` that shows archived donors too (contracts/wegive-handbid.md §1.3: all / active /
# archived / both; the default and ``all`` may well leave the archived ones out), so a deletion is seen.
DONOR_VIEW = "both"


def split_archived(rows: list[Record]) -> tuple[list[Record], list[Record]]:
    """(listed donors, archived donors): a row with ``deleted_at`` set is archived (soft-deleted) in WeGive. An
    archived donor is neither staged nor written to; ``sync/lifecycle.py`` decides what Bloomerang does."""
    active = [r for r in rows if not (isinstance(r, dict) and r.get("deleted_at"))]
    archived = [r for r in rows if isinstance(r, dict) and r.get("deleted_at")]
    return active, archived


# What only the list row (DonorTableResource) carries, not the detail (DonorViewResource): kept on the record
# the run stages, so no step has to scan the list again (the communication step reads `do_not_contact`).
LIST_ONLY_FIELDS = ("do_not_contact",)


def _with_list_only_fields(detail: Record, row: Record) -> Record:
    extra = {k: row[k] for k in LIST_ONLY_FIELDS if k in row and k not in detail}
    return {**detail, **extra} if extra else detail


def _donor_id(row: Any) -> int | None:
    """The donor id a detail can be read by, or None (missing, not a whole number, a JSON true)."""
    value = row.get("id") if isinstance(row, dict) else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 and str(number) == str(value).strip() else None


def _read_details(client: Any, rows: list[Record], connections: int) -> dict[str, Future]:
    """Each row's detail read (``client.get_donor``), at most ``connections`` at once; source id -> its future
    (an answer or the error). One connection: read here, one after another, as before."""
    if connections <= 1 or len(rows) <= 1:
        out: dict[str, Future] = {}
        for row in rows:
            future: Future = Future()
            try:
                future.set_result(client.get_donor(_donor_id(row)))
            except ApiError as exc:
                future.set_exception(exc)
                out[str(row["id"])] = future
                if exc.status != 404:  # raised by the caller at this row: read no further, as before
                    return out
                continue
            out[str(row["id"])] = future
        return out
    with ThreadPoolExecutor(max_workers=min(connections, len(rows)), thread_name_prefix="wegive-read") as pool:
        return {str(row["id"]): pool.submit(client.get_donor, _donor_id(row)) for row in rows}


@dataclass
class DonorRead:
    """Every listed donor's record as the run stages it, and each one's stored text (``record_json`` of it)."""

    details: list[Record] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def extract_donors(client: Any, store: StagingStore, run_id: str,
                   bloomerang_constituents: list[Record] | None = None,
                   listed: list[Record] | None = None, connections: int = 1) -> list[Record]:
    """Every listed donor's detail: fetched for the donors that need it, the stored one for the others
    (``read_donors``, its records)."""
    return read_donors(client, store, run_id, bloomerang_constituents, listed, connections).details


def read_donors(client: Any, store: StagingStore, run_id: str,
                bloomerang_constituents: list[Record] | None = None,
                listed: list[Record] | None = None, connections: int = 1) -> DonorRead:
    """Every listed donor's detail: fetched for the donors that need it, the stored one for the others.

    ``bloomerang_constituents`` are the constituents this run read as changed (the Bloomerang extract runs
    first): a linked donor whose constituent really changed has its WeGive detail read afresh, so the merge
    weighs the change against WeGive's current values. The client then keeps handing the answers of this
    run's own donor writes to the stored details (``on_donor_detail``), so the write-back and the merge
    leave them current.

    Why several reads at once (``connections``, the org's ``wegive.read_connections``): a first load reads every
    donor's detail, one request each, and one at a time spends WeGive's latency once per donor (2,000 details
    were 8 s of the demo's first run on loopback). Only the requests leave this thread; the answers are judged
    and kept here, in list order, exactly as one at a time: the first error that is not a 404 is raised.

    An unchanged donor's stored text is its staged record's text as it is (``donor_details``: the stored detail
    holds the list-only fields), so a quiet night serialises only the donors that changed.
    """
    if listed is None:
        listed = split_archived(list(client.iter_donors(view=DONOR_VIEW)))[0]
    # a row without a usable id has no detail to read: it goes on as listed, and the mapping quarantines it
    rows = [row for row in listed if _donor_id(row) is not None]
    hashes = {str(row["id"]): donor_details.row_hash(row) for row in rows}
    with store.connect() as con:
        stored = donor_details.load_stored(con)
        wanted = set(donor_details.needs_detail(con, rows, stored, bloomerang_constituents, hashes))
    fetched: dict[str, tuple[str, str]] = {}
    refresh: dict[str, tuple[str, str]] = {}
    out = DonorRead()
    for row in listed:
        if _donor_id(row) is None:
            out.details.append(row)
            out.texts.append(record_json(row))
    answers = _read_details(client, [row for row in rows if str(row["id"]) in wanted], connections)
    for row in rows:
        sid = str(row["id"])
        if sid in wanted:
            try:
                detail = answers[sid].result()
            except ApiError as exc:
                if exc.status != 404:
                    raise
                log.warning("WeGive donor %s is listed but its detail is gone (deleted meanwhile?); "
                            "left out of this run", sid)
                continue
            if not isinstance(detail, dict) or str(detail.get("id")) != sid:
                log.warning("WeGive answered donor %s's detail with another record; the list row is used", sid)
                detail = row
            record = _with_list_only_fields(detail, row)
            text = record_json(record)
            fetched[sid] = (hashes[sid], text)
        else:
            have = stored[sid]
            record = _with_list_only_fields(have.detail, row)
            if record is have.detail and have.row_hash == hashes[sid]:
                text = have.text
            else:  # stored without the list-only fields (a write's answer, an earlier version) or an older hash
                text = record_json(record)
                refresh[sid] = (hashes[sid], text)
        out.details.append(record)
        out.texts.append(text)
    with store.connect() as con:
        donor_details.save(con, fetched, [str(d["id"]) for d in out.details if _donor_id(d) is not None],
                           run_id=run_id, refresh=refresh)
    if hasattr(client, "on_donor_detail"):
        client.on_donor_detail = donor_details.DetailRecorder(store, run_id)
    return out
