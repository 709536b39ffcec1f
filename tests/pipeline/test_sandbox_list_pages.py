"""List pages served from the sandbox's serving-side indexes (sandbox/page_index.py, wegive/listing.py) are byte for
byte what a brute-force listing of the live store gives, page after page, while the world changes between pages:
records created (over HTTP and through the store), updated, archived, refunded and deleted.

The brute force is the plain reading of each list: filter every record of the table, sort by id, cut the page,
render each row with the store's own render methods (``render_pledge`` still scans every transaction for a
pledge's payments) and wrap it in the envelope, encoded as the apps encode it."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers

COUNT = 7  # WeGive rows a page: small, so a few dozen donors make many pages
LIMIT = 3  # Handbid rows a page


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class _Client:
    """One keep-alive connection per API (as the pipeline's clients keep one)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def send(self, api: str, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None) -> tuple[int, bytes]:
        base = urlsplit(self.sb.urls[api])
        connection = self.connections.get(api)
        if connection is None:
            connection = self.connections[api] = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
        target = base.path + path + (f"?{urlencode(params)}" if params else "")
        connection.request(method, target, body=None if body is None else json.dumps(body).encode(),
                           headers={"Authorization": f"Bearer {self.sb.keys[api]}",
                                    "Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(donors=40, seed=23, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> Iterator[_Client]:
    c = _Client(sb)
    yield c
    c.close()


def _wegive_page(rows: list[Any], render: Callable[[Any], Any], page: int) -> bytes:
    total, start = len(rows), (page - 1) * COUNT
    chunk = [render(r) for r in rows[start:start + COUNT]]
    meta = {"total": str(total), "current_page": page, "last_page": max(1, math.ceil(total / COUNT)),
            "per_page": COUNT, "from": start + 1 if chunk else 0, "to": start + len(chunk) if chunk else 0}
    return _encode({"data": chunk, "search_mode": False, "pagination": True, "sort": False, "meta": meta})


def _brute_wegive(sb: Sandbox, path: str, params: dict[str, Any], page: int) -> bytes:
    w = sb.stores["wegive"]
    with w.lock:
        if path == "/dashboard/donors":  # view=both: every donor; no view or "archived": those not / only archived
            view = params.get("view")
            ids = sorted(i for i, d in w.donors.items()
                         if view == "both" or (d.get("deleted_at") is not None) == (view == "archived"))
            return _wegive_page(ids, w.render_donor_row, page)
        if path == "/dashboard/transactions":
            since = params.get("updated_at[start]")
            ids = sorted(i for i, t in w.transactions.items() if since is None or t["updated_at"] >= since)
            return _wegive_page(ids, w.render_transaction_row, page)
        if path == "/dashboard/fund-allocations":
            return _wegive_page([w.fund_allocations[i] for i in sorted(w.fund_allocations)], w.render_allocation, page)
        if path == "/dashboard/pledges":
            return _wegive_page(sorted(i for i, p in w.pledges.items() if p.get("deleted_at") is None),
                                w.render_pledge, page)
        if path == "/dashboard/scheduled-donations":
            return _wegive_page(sorted(i for i, s in w.scheduled_donations.items() if s.get("deleted_at") is None),
                                w.render_scheduled_donation, page)
    raise AssertionError(path)


def _walk_wegive(sb: Sandbox, client: _Client, path: str, params: dict[str, Any],
                 changes: list[Callable[[], None]]) -> int:
    """Page through ``path`` as the pipeline does, applying one change before each page after the first, and
    compare every page with the brute force taken right after it. Returns the pages read."""
    page, pending = 1, list(changes)
    while True:
        status, body = client.send("wegive", "GET", path, {**params, "page": page, "count": COUNT})
        assert status == 200, body[:300]
        assert body == _brute_wegive(sb, path, params, page), f"{path} page {page} differs from the brute force"
        meta = json.loads(body)["meta"]
        if meta["current_page"] >= meta["last_page"]:
            assert not pending, f"{path}: {len(pending)} changes left unapplied (too few pages)"
            return page
        if pending:
            pending.pop(0)()
        page += 1


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_wegive_lists_match_a_brute_force_listing_while_the_world_changes(sb: Sandbox, client: _Client) -> None:
    w = sb.stores["wegive"]
    clock = [datetime(2026, 12, 2, 1, 0, tzinfo=UTC)]
    w.clock = lambda: clock[0]

    def tick() -> None:
        clock[0] += timedelta(minutes=1)

    donors = sorted(w.donors)
    made: list[int] = []

    def create_over_http() -> None:
        tick()
        status, body = client.send("wegive", "POST", "/dashboard/donors/find-or-create",
                                   body={"type": "individual", "email": f"new{len(made)}@pages.example",
                                         "first_name": "Paged", "last_name": f"New{len(made)}"})
        assert status == 200, body
        made.append(json.loads(body)["data"]["id"])

    def update_over_http() -> None:
        tick()
        status, body = client.send("wegive", "PUT", f"/dashboard/donors/{donors[3]}", body={"first_name": "Changed"})
        assert status == 200, body

    def delete_donor() -> None:  # gone from WeGive's table (no method deletes a donor; a test does)
        del w.donors[donors[1]]

    def archive() -> None:  # listed still under view=both, with deleted_at set (an uncounted write)
        tick()
        w.archive_donor(donors[5])

    pages = _walk_wegive(sb, client, "/dashboard/donors", {"view": "both"},
                         [create_over_http, update_over_http, delete_donor, archive, create_over_http])
    assert pages >= 6 and made and donors[1] not in w.donors
    # a view alone (wegive/listing.py donors_in_view): the donors not archived, then only the archived. An archive
    # is a write no store method counts, so it shows from the next first page of a scan (as the filtered
    # listing did): archived between two scans here
    w.archive_donor(donors[8])
    assert _walk_wegive(sb, client, "/dashboard/donors", {},
                        [create_over_http, update_over_http, lambda: w.donors.pop(donors[9])]) >= 5
    assert _walk_wegive(sb, client, "/dashboard/donors", {"view": "archived"}, []) == 1
    w.restore_donor(donors[8])
    status, body = client.send("wegive", "GET", "/dashboard/donors", {"view": "archived", "page": 1, "count": COUNT})
    assert status == 200 and body == _brute_wegive(sb, "/dashboard/donors", {"view": "archived"}, 1)
    assert donors[8] not in [row["id"] for row in json.loads(body)["data"]]

    # transactions changed since a cursor: a gift made, one refunded, one edited, one deleted between pages
    tick()
    cursor = _stamp(clock[0])
    txns = sorted(w.transactions)
    for txn_id in txns[:30]:  # enough changed records to fill a few pages
        tick()
        w.edit_transaction(txn_id, description=f"edited {txn_id}")

    def gift() -> None:
        tick()
        w.add_transaction(donors[2], 2500)

    def refund() -> None:
        tick()
        w.refund_transaction(txns[40])

    victims = txns[4:8]

    def gone() -> None:
        del w.transactions[victims.pop()]

    def edit_old() -> None:
        tick()
        w.edit_transaction(txns[45], description="now in the window")

    _walk_wegive(sb, client, "/dashboard/transactions", {"updated_at[start]": cursor}, [gift, refund, gone, edit_old])
    _walk_wegive(sb, client, "/dashboard/transactions", {}, [gift, gone])

    allocations = sorted(w.fund_allocations)

    def drop_allocation() -> None:
        del w.fund_allocations[allocations[0]]

    def rename_fund() -> None:  # every allocation of the fund embeds it: the next page shows the new name
        w.update_fund(min(w.funds), {"name": "Renamed between pages"})

    _walk_wegive(sb, client, "/dashboard/fund-allocations", {}, [gift, drop_allocation, rename_fund, gift])
    w.amount_units = "dollars"
    try:
        _walk_wegive(sb, client, "/dashboard/fund-allocations", {}, [gift])
    finally:
        w.amount_units = "cents"

    # schedules: each row's payments come from the index of transactions by schedule
    donor = donors[6]
    for _ in range(20):
        tick()
        pledge = w.add_pledge(donor, 60000, 5000, start_date="2026-06-01")
        w.add_transaction(donor, 5000, pledge_id=pledge)
        tick()
        schedule = w.add_scheduled_donation(donor, 2000, start_date="2026-05-01")
        w.add_transaction(donor, 2000, scheduled_donation_id=schedule)
    pledges = sorted(w.pledges)
    schedules = sorted(w.scheduled_donations)

    def pay_pledge() -> None:
        tick()
        w.add_transaction(donor, 5000, pledge_id=pledges[-1])

    def remove_pledge() -> None:
        w.remove_schedule("pledges", pledges[-2])

    def refund_payment() -> None:
        tick()
        paid = max(i for i, t in w.transactions.items() if t.get("pledge_id") == pledges[-1])
        w.refund_transaction(paid)

    _walk_wegive(sb, client, "/dashboard/pledges", {"view": "all"}, [pay_pledge, remove_pledge, refund_payment])

    def pay_schedule() -> None:
        tick()
        w.add_transaction(donor, 2000, scheduled_donation_id=schedules[-1])

    def cancel_schedule() -> None:
        tick()
        w.remove_schedule("scheduled_donations", schedules[-3])

    _walk_wegive(sb, client, "/dashboard/scheduled-donations", {"view": "all"}, [pay_schedule, cancel_schedule])
    def details_match() -> None:
        for pledge_id in pledges[-3:-2] + pledges[-1:]:
            status, body = client.send("wegive", "GET", f"/dashboard/pledges/{pledge_id}")
            assert status == 200 and json.loads(body)["data"] == w.render_pledge(pledge_id)

    details_match()
    # a payment moved off its pledge by hand (in place, no counted write, after the index's last refresh): the
    # index still files it under the pledge; the check of each candidate against the live record leaves it out
    moved = max(i for i, t in w.transactions.items()
                if t.get("pledge_id") == pledges[-1] and t["status"] == "Success")
    w.transactions[moved]["pledge_id"] = None
    details_match()


def _brute_handbid(sb: Sandbox, what: str, key: str, offset: int, floor: int | None = None) -> bytes:
    h = sb.stores["handbid"]
    with h.lock:
        if what == "contacts":
            rows = [h.contact(i) for i in sorted(h.contacts)
                    if floor is None or h.contacts[i]["dateUpdated"] > floor]
        elif what == "bidders":
            rows = sorted(h.bidders_of(int(key)), key=lambda r: r["id"])
        else:
            rows = sorted(h.of_auction(what, int(key)), key=lambda r: r["id"])
    return _encode({what: rows[offset:offset + LIMIT], "totalCount": len(rows)})


def test_handbid_lists_match_a_brute_force_listing_while_the_world_changes(sb: Sandbox, client: _Client) -> None:
    h = sb.stores["handbid"]
    epoch = [int(datetime(2026, 12, 2, 2, 0, tzinfo=UTC).timestamp())]
    h.clock = lambda: datetime.fromtimestamp(epoch[0], UTC)
    auction = max(h.auctions, key=lambda a: sum(r["auctionId"] == a for r in h.receipts.values()))
    receipts = sorted(i for i, r in h.receipts.items() if r["auctionId"] == auction)
    contacts = sorted(h.contacts)
    assert len(receipts) > 2 * LIMIT, "the busiest event needs a few pages"

    def walk(what: str, path: str, params: dict[str, Any], changes: list[Callable[[], None]],
             floor: int | None = None) -> None:
        offset, pending = 0, list(changes)
        while True:
            status, body = client.send("handbid", "GET", path, {**params, "limit": LIMIT, "offset": offset})
            assert status == 200, body[:300]
            assert body == _brute_handbid(sb, what, str(auction), offset, floor), f"{what} at offset {offset}"
            answer = json.loads(body)
            offset += LIMIT
            if offset >= answer["totalCount"]:
                assert not pending, f"{what}: changes left unapplied"
                return
            if pending:
                epoch[0] += 60
                pending.pop(0)()

    def pay() -> None:
        h.add_payment(receipts[-1], 500, method="cash")

    def drop_receipt() -> None:
        del h.receipts[receipts[0]]

    def register() -> None:
        registered = {r["contactId"] for r in h.bidders.values() if r["auctionId"] == auction}
        h.register_bidder(auction, next(c for c in contacts if c not in registered))

    def edit_contact() -> None:
        h.edit_contact(contacts[-1], firstName="Edited")

    manager = "/v3/manager"
    walk("receipts", f"{manager}/auctions/{auction}/receipts", {}, [pay, drop_receipt])
    h.receipts[receipts[1]]["auctionId"] = auction + 1  # moved by hand, in place: the index's entry is stale
    walk("receipts", f"{manager}/auctions/{auction}/receipts", {}, [])
    for _ in range(2 * LIMIT):
        pay()
        register()
    walk("payments", f"{manager}/auctions/{auction}/payments", {}, [pay])
    walk("bidders", f"{manager}/auctions/{auction}/bidders", {}, [register, register])
    org = f"{manager}/organizations/{h.org_id}/contacts"
    walk("contacts", org, {}, [edit_contact, lambda: h.contacts.pop(contacts[2])])
    floor = epoch[0] - 1
    for contact_id in contacts[10:22]:
        epoch[0] += 1
        h.edit_contact(contact_id, lastName="Recent")
    walk("contacts", org, {"updatedSince": floor}, [edit_contact, register], floor=floor)
