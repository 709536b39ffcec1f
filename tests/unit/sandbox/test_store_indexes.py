"""The sandbox stores' indexes answer exactly what a scan of the whole table would.

Bloomerang's list endpoints cut pages from indexes (``sandbox/bloomerang/indexes.py``) and WeGive's list scans
are filtered and sorted once per scan (``wegive.app.ScanCache``); each test here compares an indexed answer with
the brute-force answer computed from the tables after writes, moves back in time, and deletes. In process
(Starlette's ``TestClient``), so this stays in the fast tier.
"""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime, timedelta

with warnings.catch_warnings():  # starlette's notice about its httpx-based client: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bloom_pipeline.sandbox.bloomerang.app import create_app as bloomerang_app
from bloom_pipeline.sandbox.bloomerang.indexes import ModifiedOrder, Postings
from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.wegive.app import create_app as wegive_app
from bloom_pipeline.sandbox.wegive.store import WeGiveStore
from bloom_pipeline.settings import SANDBOX_KEYS

START = datetime(2026, 11, 1, tzinfo=UTC)


def test_modified_order_positions_and_moves() -> None:
    order = ModifiedOrder()
    for n in range(10):
        order.add(START + timedelta(minutes=n % 4), 100 + n)
    order.move(START + timedelta(minutes=1), START + timedelta(minutes=9), 101)
    order.remove(START + timedelta(minutes=3), 103)
    assert order.ids(0, len(order))[-1] == 101
    assert 103 not in order.ids(0, len(order))
    after = list(order.ids_after(START + timedelta(minutes=2)))
    assert after == [107, 101]  # strictly after: minute 2 (102, 106) is left out; then by (time, id)
    postings = Postings()
    postings.add("a", 3)
    postings.add("a", 1)
    postings.discard("a", 3)
    assert postings.ids("a") == [1] and postings.ids("b") == []


def _bloomerang() -> tuple[BloomerangStore, TestClient]:
    clock = {"now": START}
    store = BloomerangStore.from_world(generate_world(donors=120, seed=3))
    store.clock = lambda: clock["now"]
    rng = random.Random(5)
    ids = list(store.constituents)
    for step in range(60):  # updates, CRM edits back in time, new constituents, new contacts
        clock["now"] = START + timedelta(seconds=step * 7)
        target = rng.choice(ids)
        if step % 5 == 0:
            store.touch("constituent", target, at=START - timedelta(days=step))
        elif step % 5 == 1:
            body = {"Type": "Individual", "FirstName": "New", "LastName": f"Person{step}",
                    "CustomValues": [{"FieldId": 901, "Value": f"w-{step}"}]}
            ids.append(store.create_constituent(body)["Id"])
        elif step % 5 == 2:
            store.create_contact("email", {"AccountId": target, "Type": "Work", "Value": f"x{step}@example.org"})
        else:
            store.update_constituent(target, {"JobTitle": f"T{step}",
                                              "CustomValues": [{"FieldId": 901, "Value": f"moved-{step}"}]})
    store.delete_constituent(ids[1])
    client = TestClient(bloomerang_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["bloomerang"]))
    client.headers["X-API-KEY"] = SANDBOX_KEYS["bloomerang"]
    return store, client


def _all_pages(client: TestClient, params: dict) -> list[int]:
    out, skip = [], 0
    while True:
        page = client.get("/v2/constituents", params={**params, "skip": skip, "take": 7}).json()
        out += [r["Id"] for r in page["Results"]]
        skip += 7
        if skip >= page["TotalFiltered"]:
            return out


def test_bloomerang_lists_match_a_scan() -> None:
    store, client = _bloomerang()
    records = list(store.constituents.values())
    since = START + timedelta(seconds=100)
    by_modified = sorted(records, key=lambda r: (r["_audit"]["modified"], r["Id"]))
    assert _all_pages(client, {"orderBy": "LastModifiedDate"}) == [r["Id"] for r in by_modified]
    assert _all_pages(client, {"orderBy": "LastModifiedDate", "orderDirection": "Desc"}) == \
        [r["Id"] for r in reversed(by_modified)]
    changed = [r["Id"] for r in by_modified if r["_audit"]["modified"] > since]
    assert changed and _all_pages(client, {"orderBy": "LastModifiedDate", "lastModified": since.isoformat()}) == changed
    assert _all_pages(client, {"lastModified": since.isoformat()}) == sorted(changed)
    assert _all_pages(client, {}) == sorted(store.constituents)
    assert _all_pages(client, {"orderDirection": "Desc"}) == sorted(store.constituents, reverse=True)
    for value in ("w-1", "moved-3", "moved-8"):
        holders = [r["Id"] for r in records if store.custom_value_matches(r["_custom"], 901, value)]
        assert _all_pages(client, {"customFieldId": 901, "customFieldValue": value}) == holders
    target = records[0]["Id"]
    store.update_constituent(target, {"CustomValues": [{"FieldId": 901, "Value": "first"}]})
    store.update_constituent(target, {"CustomValues": [{"FieldId": 901, "Value": "second"}]})
    assert _all_pages(client, {"customFieldId": 901, "customFieldValue": "first"}) == []  # a stale posting
    assert _all_pages(client, {"customFieldId": 901, "customFieldValue": "second"}) == [target]
    for record in records:
        emails = sorted(e["Id"] for e in store.emails.values() if e["AccountId"] == record["Id"])
        assert [e["Id"] for e in store.contacts_of("email", record["Id"])] == emails


def test_duplicates_found_through_the_name_index() -> None:
    store, _ = _bloomerang()
    person = next(r for r in store.constituents.values() if r["Type"] == "Individual" and
                  store.contacts_of("email", r["Id"]))
    email = store.contacts_of("email", person["Id"])[0]["Value"]
    first, last = person["FirstName"], person["LastName"]
    found = store.find_duplicates({"FirstName": first, "LastName": last.upper(), "EmailAddress": email})
    assert person["Id"] in [r["Id"] for r in found]
    store.update_constituent(person["Id"], {"LastName": "Renamed"})
    assert person["Id"] not in [r["Id"] for r in store.find_duplicates(
        {"FirstName": first, "LastName": last, "EmailAddress": email})]  # the old name's posting is stale
    assert person["Id"] in [r["Id"] for r in store.find_duplicates(
        {"FirstName": first, "LastName": "renamed", "EmailAddress": email})]


def test_wegive_scan_pages_see_writes_made_between_pages() -> None:
    store = WeGiveStore.from_world(generate_world(donors=60, seed=3))
    client = TestClient(wegive_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["wegive"]))
    client.headers["Authorization"] = f"Bearer {SANDBOX_KEYS['wegive']}"

    def page(number: int, **params: str) -> list[dict]:
        answer = client.get("/api/dashboard/donors", params={"page": number, "count": 10, **params})
        assert answer.status_code == 200
        return answer.json()["data"]

    ids = sorted(store.donors)
    assert [d["id"] for n in range(1, 7) for d in page(n)] == ids
    renamed = ids[25]
    store.update_donor(renamed, {"first_name": "Zed"})
    assert next(d for d in page(3) if d["id"] == renamed)["first_name"] == "Zed"  # page 3 after a write: live
    ordered = [d["id"] for n in range(1, 7) for d in page(n, **{"sort[name]": "desc"})]
    expected = sorted(ids, key=lambda i: (store.donors[i].get("name") or "").lower(), reverse=True)
    assert sorted(ordered) == ids and [(store.donors[i].get("name") or "").lower() for i in ordered] == \
        [(store.donors[i].get("name") or "").lower() for i in expected]
    assert client.get("/api/dashboard/donors", params={"page": 2, "count": 500}).status_code == 422


def test_bloomerang_transactions_in_date_order_match_a_sort() -> None:
    """The default ``Date`` order of ``GET /transactions`` is cut from ``store.transactions_by_date``; after
    creates, a Date moved by an update and a delete, every page is what sorting the whole table gives."""
    store, client = _bloomerang()
    accounts, fund = list(store.constituents), next(iter(store.funds))
    rng = random.Random(8)
    made = []
    for n in range(30):
        day = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"  # repeats: ties ordered by Id
        made.append(store.create_transaction({
            "AccountId": rng.choice(accounts), "Date": day, "Amount": 10.0 + n, "Method": "None",
            "Designations": [{"Type": "Donation", "Amount": 10.0 + n, "FundId": fund}]})["Id"])
    store.update_transaction(made[4], {"Date": "2030-01-01"})
    store.update_transaction(made[5], {"Amount": 99.0, "Designations": [{"Type": "Donation", "Amount": 99.0,
                                                                         "FundId": fund}]})
    store.delete_transaction(made[6])

    def pages(**params: str) -> list[int]:
        out, skip = [], 0
        while True:
            page = client.get("/v2/transactions", params={**params, "skip": skip, "take": 7}).json()
            out += [r["Id"] for r in page["Results"]]
            skip += 7
            if skip >= page["TotalFiltered"]:
                return out

    by_date = sorted(store.transactions.values(), key=lambda t: (t["Date"], t["Id"]))
    assert pages() == [t["Id"] for t in reversed(by_date)]  # the default: Date Desc
    assert pages(orderDirection="Asc") == [t["Id"] for t in by_date]
    assert pages()[0] == made[4] and made[6] not in pages()


def test_wegive_allocation_pages_match_a_scan_and_see_writes() -> None:
    """``GET /dashboard/fund-allocations`` is a full scan each night: its pages are cut from one filtered, sorted
    list per scan (``ScanCache``) and must be what filtering and sorting the table gives, writes included."""
    store = WeGiveStore.from_world(generate_world(donors=60, seed=3))
    client = TestClient(wegive_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["wegive"]))
    client.headers["Authorization"] = f"Bearer {SANDBOX_KEYS['wegive']}"

    def scan(**params: str) -> list[int]:
        out, number = [], 1
        while True:
            answer = client.get("/api/dashboard/fund-allocations", params={"page": number, "count": 25, **params})
            assert answer.status_code == 200
            body = answer.json()
            out += [row["id"] for row in body["data"]]
            if number >= body["meta"]["last_page"]:
                return out
            number += 1

    assert scan() == sorted(store.fund_allocations)
    fund = next(iter(store.fund_allocations.values()))["fund"]["id"]
    assert scan(fund=str(fund)) == sorted(a["id"] for a in store.fund_allocations.values() if a["fund"]["id"] == fund)
    first = client.get("/api/dashboard/fund-allocations", params={"page": 1, "count": 25}).json()
    store.add_transaction(next(iter(store.donors)), 500)  # a new gift and its allocation between two pages
    last = client.get("/api/dashboard/fund-allocations",
                      params={"page": first["meta"]["last_page"] + 1, "count": 25}).json()
    assert max(store.fund_allocations) in [row["id"] for row in last["data"]] + [
        row["id"] for row in client.get("/api/dashboard/fund-allocations", params={
            "page": first["meta"]["last_page"], "count": 25}).json()["data"]]
