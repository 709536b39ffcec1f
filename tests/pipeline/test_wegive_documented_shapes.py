"""WeGive as WeGive documents it, end to end over real HTTP: the sandbox serves donor list rows without last
names or a mailing address (``DonorTableResource``) and card / bank sources as ``CardResource`` /
``BankResource``; the sync still lands the real people and card details in Bloomerang, and reads a donor's
detail only when the donor is new or its list row changed (contracts/wegive-handbid.md §1.4, §1.5).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from bloom_pipeline.clients.wegive import WeGiveClient
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.staging.writes import record_json
from bloom_pipeline.sync.extract import donor_details
from bloom_pipeline.sync.extract.wegive import extract_donors, read_donors

pytestmark = pytest.mark.slow  # syncs against sandbox servers

SyncHarness = Any  # tests/pipeline/conftest.py
DETAIL = ("wegive", "GET", "/api/dashboard/donors/{id}")
LIST = ("wegive", "GET", "/api/dashboard/donors")
CARD_TYPES = {"visa": "Visa", "mastercard": "MasterCard", "amex": "AmericanExpress", "discover": "Discover"}
SYNCED = {"Success", "Refunded", "Disputed"}


def wegive_requests(h: SyncHarness, since: int = 0) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for entry in h.sb.request_log.entries[since:]:
        if entry.api == "wegive":
            key = (entry.api, entry.method, entry.path_template)
            counts[key] = counts.get(key, 0) + 1
    return counts


def listed_rows(h: SyncHarness) -> list[dict[str, Any]]:
    response = requests.get(h.sb.urls["wegive"] + "/dashboard/donors", params={"count": 200}, timeout=10,
                            headers={"Authorization": f"Bearer {h.sb.keys['wegive']}"})
    return response.json()["data"]


def expiry(text: str) -> tuple[int, int]:
    month, year = text.split("/")
    return int(month), 2000 + int(year)


def test_the_first_sync_reads_each_donor_detail_once(synced: SyncHarness) -> None:
    """First in the module: the request log holds the first sync's requests only."""
    counts = wegive_requests(synced)
    assert counts[DETAIL] == len(synced.sb.stores["wegive"].donors)
    assert counts[LIST] == 1  # 30 donors: one page of 200


def test_donors_whose_list_rows_lack_last_names_reach_bloomerang_with_them(synced: SyncHarness) -> None:
    rows = listed_rows(synced)
    assert rows and not any("last_name" in r or "mailing_address" in r for r in rows)
    by_donor = synced.constituents_by(synced.WEGIVE_DONOR_FIELD)
    people = [d for d in synced.sb.stores["wegive"].donors.values() if d["type"] == "individual"]
    named = [d for d in people if (d["last_name"] or "").strip()]
    assert named, "the world has individuals with last names"
    for donor in people:
        (record,) = by_donor[str(donor["id"])]
        where = f"donor {donor['id']}"
        assert record["LastName"] == ((donor["last_name"] or "").strip() or "LNU"), where
        if (donor["middle_name"] or "").strip():
            assert record["MiddleName"] == donor["middle_name"].strip(), where
        address = donor["mailing_address"] or {}
        if (address.get("address_1") or "").strip():
            assert record["PrimaryAddress"]["City"] == address["city"].strip(), where
            assert record["PrimaryAddress"]["Street"].split("\n")[0] == address["address_1"].strip(), where
    assert sum(1 for d in named if by_donor[str(d["id"])][0]["LastName"] != "LNU") == len(named)


def test_card_gifts_arrive_as_credit_card_with_type_last_four_and_expiry(synced: SyncHarness) -> None:
    store = synced.sb.stores["wegive"]
    by_txn = synced.transactions_by(synced.WEGIVE_TRANSACTION_FIELD)
    cards = [store.render_transaction(t["id"]) for t in store.transactions.values()
             if t["source_type"] == "card" and t["status"] in SYNCED]
    assert cards, "the world has card gifts"
    for txn in cards:
        source = txn["source"]
        assert not {"brand", "exp_month", "exp_year"} & set(source)
        (record,) = by_txn[str(txn["id"])]
        month, year = expiry(source["expiration"])
        assert (record["Method"], record["CreditCardType"], record["CreditCardLastFourDigits"],
                record["CreditCardExpMonth"], record["CreditCardExpYear"]) == (
            "CreditCard", CARD_TYPES[source["issuer"]], source["last_four"], month, year), txn["id"]


def test_bank_gifts_without_a_routing_number_fall_back_with_a_note(synced: SyncHarness) -> None:
    """Default reading: WeGive's ``transit_number`` is empty for these accounts, and Bloomerang's Eft needs a
    routing number — so the gift is Method None with the note that says why."""
    store = synced.sb.stores["wegive"]
    by_txn = synced.transactions_by(synced.WEGIVE_TRANSACTION_FIELD)
    banks = [t for t in store.transactions.values() if t["source_type"] == "bank" and t["status"] in SYNCED]
    assert banks, "the world has bank gifts"
    for txn in banks:
        (record,) = by_txn[str(txn["id"])]
        assert record["Method"] == "None", txn["id"]
        assert "payment details incomplete for Eft" in record["Designations"][0]["Note"], txn["id"]


def test_a_quiet_rerun_reads_list_pages_only_and_still_stages_every_donor(harness: SyncHarness) -> None:
    h = harness
    h.sb.stores["wegive"].bank_transit_number = True  # the other reading: a US routing number is sent
    first = h.sync()
    assert first.status == "succeeded", first.message
    donors = len(h.sb.stores["wegive"].donors)
    mark = len(h.sb.request_log.entries)
    second = h.sync()
    assert second.status == "succeeded", second.message
    counts = wegive_requests(h, mark)
    assert counts.get(DETAIL, 0) == 0, "nothing changed: no donor detail is fetched"
    assert counts[LIST] == 1
    staged = h.frame("SELECT run_id, count(*) AS n FROM stg_constituents WHERE source = 'wegive' GROUP BY run_id")
    assert dict(zip(staged["run_id"], staged["n"], strict=True)).get(second.run_id) == donors
    raw = h.frame("SELECT record FROM raw_wegive_donors WHERE run_id = ?", [second.run_id])["record"]
    assert len(raw) == donors and all('"last_name"' in r for r in raw), "staged from the stored details"
    writes = [e for e in h.sb.request_log.entries[mark:] if e.method in ("POST", "PUT", "DELETE")]
    assert writes == [], "a quiet rerun writes nothing anywhere"

    # bank gifts went out as Eft with the routing number WeGive sent in transit_number
    by_txn = h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)
    store = h.sb.stores["wegive"]
    bank = next(store.render_transaction(t["id"]) for t in store.transactions.values()
                if t["source_type"] == "bank" and t["status"] in SYNCED)
    (record,) = by_txn[str(bank["id"])]
    assert (record["Method"], record["EftRoutingNumber"], record["EftLastFourDigits"], record["EftAccountType"]) == (
        "Eft", bank["source"]["transit_number"], bank["source"]["last_four"],
        bank["source"]["bank_account_type"].capitalize())

    # one donor renamed in WeGive: its row changes, its detail (and only its) is read, Bloomerang follows
    donor = next(d for d in store.donors.values() if d["type"] == "individual" and d["first_name"])
    store.update_donor(donor["id"], {"last_name": "Documented-Shape"})
    mark = len(h.sb.request_log.entries)
    third = h.sync()
    assert third.status == "succeeded", third.message
    details = [e.path for e in h.sb.request_log.entries[mark:] if (e.api, e.method, e.path_template) == DETAIL]
    assert details == [f"/api/dashboard/donors/{donor['id']}"]
    (constituent,) = h.constituents_by(h.WEGIVE_DONOR_FIELD)[str(donor["id"])]
    assert constituent["LastName"] == "Documented-Shape"


def test_bloomerang_edits_are_weighed_against_wegive_now_and_our_write_back_is_kept(harness: SyncHarness) -> None:
    """A Bloomerang edit of a field the list row does not show (middle name): the donor's WeGive detail is
    read afresh before the merge, so a WeGive edit of the same field is seen (not overwritten unseen); the
    merge's own write to WeGive is kept, so the night after fetches nothing and writes nothing."""
    h = harness
    assert h.sync().status == "succeeded"
    store = h.sb.stores["wegive"]
    by_donor = h.constituents_by(h.WEGIVE_DONOR_FIELD)
    linked = h.frame("SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                     "AND source = 'wegive' AND bloomerang_id IS NOT NULL ORDER BY source_id")
    pairs = [(int(r.source_id), int(r.bloomerang_id)) for r in linked.itertuples()
             if store.donors[int(r.source_id)]["type"] == "individual" and len(by_donor[r.source_id]) == 1]
    (pulled, pulled_constituent), (both, both_constituent) = pairs[:2]
    h.bloomerang.update_constituent(pulled_constituent, {"MiddleName": "Wrote-Back"}, actor="Front Desk")
    store.update_donor(both, {"middle_name": "Ann"})  # invisible in the list row
    h.bloomerang.update_constituent(both_constituent, {"MiddleName": "Anne"}, actor="Front Desk")
    mark = len(h.sb.request_log.entries)
    night = h.sync()
    assert night.status == "succeeded", night.message
    details = sorted(e.path for e in h.sb.request_log.entries[mark:] if (e.api, e.method, e.path_template) == DETAIL)
    assert details == sorted(f"/api/dashboard/donors/{i}" for i in (pulled, both))
    assert store.donors[pulled]["middle_name"] == "Wrote-Back"
    assert store.donors[both]["middle_name"] == "Ann", "the WeGive edit was seen, not overwritten"
    assert h.bloomerang.render_constituent(both_constituent)["MiddleName"] == "Anne"
    conflicts = h.frame("SELECT field FROM conflicts WHERE run_id = ? AND source_id = ?", [night.run_id, str(both)])
    assert conflicts["field"].tolist() == ["middle_name"]
    mark = len(h.sb.request_log.entries)
    after = h.sync()
    assert after.status == "succeeded", after.message
    details = [e.path for e in h.sb.request_log.entries[mark:] if (e.api, e.method, e.path_template) == DETAIL]
    assert details == [], details
    assert [e for e in h.sb.request_log.entries[mark:] if e.method in ("POST", "PUT", "DELETE")] == []
    (constituent,) = h.constituents_by(h.WEGIVE_DONOR_FIELD)[str(pulled)]
    assert constituent["MiddleName"] == "Wrote-Back"


@pytest.fixture
def extract_env(harness: SyncHarness):
    """The extract alone against the sandbox: a client without the run's write hook, and the org's store."""
    client = WeGiveClient(harness.sb.urls["wegive"], harness.sb.keys["wegive"])
    store = StagingStore.for_org("demo", data_dir=harness.data_dir)
    try:
        yield harness, client, store
    finally:
        client.close()


def test_details_are_refetched_when_a_write_did_not_hand_its_answer_over(extract_env) -> None:
    """Another process (a Dagster step) wrote to WeGive: the link in ``sync_state`` or a ``to_source`` row in
    ``sync_log`` tells the extract that its stored detail is older than WeGive's."""
    h, client, store = extract_env
    first = extract_donors(client, store, "run-1")
    client.on_donor_detail = None  # the next writes come from a process that does not hand answers over
    assert len(first) == len(h.sb.stores["wegive"].donors)
    linked, pulled, quiet = (d["id"] for d in first[:3])
    client.update_donor(linked, {"bloomerang_id": 777})
    client.update_donor(pulled, {"middle_name": "Elsewhere"})
    with store.connect() as con:
        ledgers.upsert_state(con, ledgers.SyncState("constituents", "wegive", str(linked), bloomerang_id=777))
        ledgers.append_log(con, "run-2", [ledgers.LogEntry(
            "constituents", "wegive", str(pulled), "updated", bloomerang_id=5, direction="pull",
            field_diff={"to_bloomerang": {}, "to_source": {"middle_name": "Elsewhere"}})])
    mark = len(h.sb.request_log.entries)
    second = {d["id"]: d for d in extract_donors(client, store, "run-2")}
    fetched = [e.path for e in h.sb.request_log.entries[mark:] if (e.api, e.method, e.path_template) == DETAIL]
    assert sorted(fetched) == sorted(f"/api/dashboard/donors/{i}" for i in (linked, pulled))
    assert second[linked]["bloomerang_id"] == 777 and second[pulled]["middle_name"] == "Elsewhere"
    assert second[quiet] == next(d for d in first if d["id"] == quiet)
    mark = len(h.sb.request_log.entries)
    extract_donors(client, store, "run-3")
    assert wegive_requests(h, mark).get(DETAIL, 0) == 0, "settled: nothing left to fetch"


def test_the_row_hash_ignores_giving_totals_and_gone_donors_are_forgotten(extract_env) -> None:
    h, client, store = extract_env
    extract_donors(client, store, "run-1")
    row = listed_rows(h)[0]
    assert donor_details.row_hash({**row, "total_given": "999", "last_donation": "2026-11-01"}) == \
        donor_details.row_hash(row)
    assert donor_details.row_hash({**row, "first_name": "Other"}) != donor_details.row_hash(row)
    gone = int(row["id"])
    del h.sb.stores["wegive"].donors[gone]
    extract_donors(client, store, "run-2")
    with store.connect() as con:
        kept = {sid for (sid,) in con.execute(f"SELECT source_id FROM {donor_details.TABLE}").fetchall()}
    assert str(gone) not in kept and len(kept) == len(h.sb.stores["wegive"].donors)
    assert all(re.fullmatch(r"\d+", sid) for sid in kept)


# -- the contract check holds every answer to the names the documents give ------------------------------------

def _envelope(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": rows, "search_mode": False, "pagination": True, "sort": False,
            "meta": {"total": str(len(rows)), "current_page": 1, "last_page": 1, "per_page": 25, "from": 1,
                     "to": len(rows)}}


def test_the_contract_check_fails_any_property_the_documents_do_not_name(synced: SyncHarness) -> None:
    from wegive_check import validate_wegive_body  # tests/contract, on the path through the contract plugin

    store = synced.sb.stores["wegive"]
    donor_id = next(iter(sorted(store.donors)))
    card_id = next(t for t, v in store.transactions.items() if v["source_type"] == "card")
    row, detail = store.render_donor_row(donor_id), store.render_donor(donor_id)
    gift = store.render_transaction_row(card_id)
    assert validate_wegive_body("GET", "/api/dashboard/donors", 200, _envelope([row])) == []
    assert validate_wegive_body("GET", f"/api/dashboard/donors/{donor_id}", 200, {"data": detail}) == []
    assert validate_wegive_body("GET", "/api/dashboard/transactions", 200, _envelope([gift])) == []

    def problems(method: str, path: str, body: Any, status: int = 200) -> list[str]:
        return validate_wegive_body(method, path, status, body)

    assert problems("GET", "/api/dashboard/donors", _envelope([{**row, "last_name": "X"}])) == [
        "GET /api/dashboard/donors 200: data/0/last_name: property not documented"]
    assert any(p.endswith("data/do_not_contact: property not documented")
               for p in problems("PUT", f"/api/dashboard/donors/{donor_id}", {"data": {**detail, "do_not_contact": 1}}))
    for key in ("brand", "exp_month", "exp_year"):
        odd = {**gift, "source": {**gift["source"], key: 1}}
        assert problems("GET", "/api/dashboard/transactions", _envelope([odd])) == [
            f"GET /api/dashboard/transactions 200: data/0/source/{key}: property not documented"]
    shown = store.render_transaction(card_id)
    odd = {**shown, "source": {**shown["source"], "routing_number": "1"}, "donor_id": 3,
           "fund": {**shown["fund"], "bloomerang_id": None}}
    assert sorted(problems("GET", f"/api/dashboard/transactions/{card_id}", {"data": odd})) == [
        f"GET /api/dashboard/transactions/{card_id} 200: data/{p}: property not documented"
        for p in ("donor_id", "fund/bloomerang_id", "source/routing_number")]
    allocation = {**shown["fund_allocations"][0], "transaction_id": card_id}
    assert problems("GET", f"/api/dashboard/transactions/{card_id}", {"data": {**shown, "fund_allocations": [
        allocation]}}) == [f"GET /api/dashboard/transactions/{card_id} 200: data/fund_allocations/0/transaction_id: "
                           "property not documented"]
    assert problems("GET", "/api/dashboard/donors/1", {"message": "gone", "code": 1}, 404) == [
        "GET /api/dashboard/donors/1 404: code: property not documented"]


def test_unchanged_donors_are_staged_from_their_stored_text_and_old_rows_are_brought_up_to_date(extract_env) -> None:
    """A stored detail is the staged record's text (with the list-only ``do_not_contact``); one stored by an
    earlier version (bare answer, row hash of json.dumps's text) is brought up to date without a request."""
    h, client, store = extract_env
    first = read_donors(client, store, "run-1")
    assert first.texts == [record_json(d) for d in first.details]
    rows = {str(r["id"]): r for r in listed_rows(h)}
    with store.connect() as con:
        stored = dict(con.execute(f"SELECT source_id, detail FROM {donor_details.TABLE}").fetchall())
        assert all(json.loads(stored[sid]).get("do_not_contact") == row.get("do_not_contact")
                   for sid, row in rows.items() if "do_not_contact" in row)
        old = [(sid, donor_details._legacy_row_hash(row),
                record_json({k: v for k, v in json.loads(stored[sid]).items() if k != "do_not_contact"}))
               for sid, row in rows.items()]
        for sid, hashed, text in old:  # what an earlier version stored
            con.execute(f"UPDATE {donor_details.TABLE} SET row_hash = ?, detail = ? WHERE source_id = ?",
                        [hashed, text, sid])
    mark = len(h.sb.request_log.entries)
    second = read_donors(client, store, "run-2")
    assert wegive_requests(h, mark).get(DETAIL, 0) == 0, "an old row hash of the same row costs no request"
    assert second.details == first.details and second.texts == first.texts
    with store.connect() as con:
        now = dict(con.execute(f"SELECT source_id, row_hash FROM {donor_details.TABLE}").fetchall())
        texts = dict(con.execute(f"SELECT source_id, detail FROM {donor_details.TABLE}").fetchall())
    assert all(hashed.startswith(donor_details.ROW_HASH_PREFIX) for hashed in now.values())
    expected = {str(d["id"]): t for d, t in zip(first.details, first.texts, strict=True)}
    assert all(texts[sid] == expected[sid] for sid in rows)
    changed = next(iter(rows.values()))
    changed["first_name"] = "Renamed"  # a list row that changed: its detail is fetched
    mark = len(h.sb.request_log.entries)
    read_donors(client, store, "run-3", listed=list(rows.values()))
    assert wegive_requests(h, mark).get(DETAIL, 0) == 1
