"""The WeGive simulator over real loopback HTTP: envelope, paging, filters, auth, errors, write-back, and the
documented shapes (a donor list row is not its detail; card and bank sources as WeGive documents them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import requests

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=150, seed=11, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sb.keys['wegive']}"
    base = sb.urls["wegive"] + "/dashboard"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, base + path, timeout=10, **kwargs)

    return call


def _all(api, path: str, params: dict | None = None) -> list[dict]:
    rows, page = [], 1
    while True:
        body = api("GET", path, params={**(params or {}), "page": page, "count": 40}).json()
        rows += body["data"]
        if body["meta"]["current_page"] >= body["meta"]["last_page"]:
            return rows
        page += 1


def test_list_envelope_meta_total_is_a_string_and_pages_cover_everything(api, sb):
    body = api("GET", "/donors", params={"count": 40, "page": 2}).json()
    assert set(body) == {"data", "search_mode", "pagination", "sort", "meta"}
    assert body["meta"] == {"total": "150", "current_page": 2, "last_page": 4, "per_page": 40, "from": 41, "to": 80}
    assert [d["id"] for d in _all(api, "/donors")] == sorted(d["id"] for d in sb.world.wegive["donors"])
    past = api("GET", "/donors", params={"page": 9, "count": 40}).json()
    assert past["data"] == [] and past["meta"]["from"] == 0


def test_count_above_200_is_rejected_with_422(api):
    response = api("GET", "/transactions", params={"count": 201})
    assert response.status_code == 422
    assert response.json()["errors"]["count"] == ["The count field must not be greater than 200."]
    assert api("GET", "/transactions", params={"count": 200}).json()["meta"]["per_page"] == 200


def test_updated_at_bracket_range_is_inclusive(api, sb):
    txns = sb.world.wegive["transactions"]
    stamps = sorted(t["updated_at"] for t in txns)
    start, end = stamps[10], stamps[60]
    rows = _all(api, "/transactions", {"updated_at[start]": start, "updated_at[end]": end})
    assert {r["id"] for r in rows} == {t["id"] for t in txns if start <= t["updated_at"] <= end}
    assert start in {r["updated_at"] for r in rows} and end in {r["updated_at"] for r in rows}


def test_created_range_with_dates_and_other_filters(api, sb):
    txns = sb.world.wegive["transactions"]
    day = txns[len(txns) // 2]["created_at"][:10]
    rows = _all(api, "/transactions", {"created[start]": day, "created[end]": day})
    assert rows and {r["id"] for r in rows} == {t["id"] for t in txns if t["created_at"][:10] == day}
    refunded = _all(api, "/transactions", {"status": "Refunded", "source_type": "card", "unknown_param": "x"})
    assert refunded and all(r["status"] == "Refunded" and r["source_type"] == "card" for r in refunded)
    donor_id = txns[0]["donor_id"]
    assert {r["owner"]["id"] for r in _all(api, "/transactions", {"donor_id": donor_id})} == {donor_id}
    assert api("GET", "/transactions", params={"updated_at[start]": "yesterday"}).status_code == 422


def test_sort_brackets_order_results(api):
    body = api("GET", "/transactions", params={"sort[amount]": "desc", "count": 50}).json()
    amounts = [r["amount"] for r in body["data"]]
    assert body["sort"] is True and amounts == sorted(amounts, reverse=True)


def test_donor_filters_email_type_and_bloomerang_id(api, sb):
    donor = next(d for d in sb.world.wegive["donors"] if d["bloomerang_id"])
    found = api("GET", "/donors", params={"email_1": donor["email_1"].upper()}).json()["data"]
    assert [d["id"] for d in found] == [donor["id"]]
    assert [d["id"] for d in api("GET", "/donors", params={"bloomerang_id": donor["bloomerang_id"]}).json()["data"]] \
        == [donor["id"]]
    companies = _all(api, "/donors", {"type": "company"})
    assert companies and all(d["type"] == "company" for d in companies)


def test_bad_token_is_401_before_anything_else(sb):
    url = sb.urls["wegive"] + "/dashboard/donors"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": sb.keys["wegive"]}):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401 and response.json() == {"message": "Unauthenticated."}


def test_unknown_records_are_404_with_message(api):
    for path in ("/donors/999999", "/transactions/1", "/funds/999", "/donors/abc"):
        response = api("GET", path)
        assert response.status_code == 404 and isinstance(response.json()["message"], str)


def test_show_endpoints_wrap_in_data(api, sb):
    txn = sb.world.wegive["transactions"][0]
    body = api("GET", f"/transactions/{txn['id']}").json()["data"]
    assert body["amount"] == txn["amount"] and body["owner"]["id"] == txn["donor_id"]
    assert api("GET", "/funds/1").json()["data"]["name"] == "General Fund"


def test_put_donor_validates_with_422(api, sb):
    donor_id = sb.world.wegive["donors"][3]["id"]
    response = api("PUT", f"/donors/{donor_id}", json={"email_1": "not-an-email", "first_name": 5})
    assert response.status_code == 422
    body = response.json()
    assert set(body["errors"]) == {"email_1", "first_name"} and body["message"].endswith("(and 1 more error)")
    assert api("PUT", f"/donors/{donor_id}", json={"bloomerang_id": "abc"}).status_code == 422
    assert api("PUT", f"/donors/{donor_id}", json={}).status_code == 422


def test_put_donor_applies_changes_and_bumps_updated_at(api, sb):
    store = sb.stores["wegive"]
    donor = sb.world.wegive["donors"][4]
    store.clock = lambda: datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    body = {"first_name": "Robert", "email_1": "robert.new@example.org", "bloomerang_id": 4242,
            "mailing_address": {"address_1": "9 Elm St", "city": "Boulder", "state": "CO", "zip": "80301",
                                "country": "US"}}
    data = api("PUT", f"/donors/{donor['id']}", json=body).json()["data"]
    assert data["first_name"] == "Robert" and data["email_1"] == "robert.new@example.org"
    assert data["bloomerang_id"] == 4242 and data["mailing_address"]["city"] == "Boulder"
    assert data["updated_at"] == "2026-11-20T12:00:00.123456Z"
    assert api("GET", f"/donors/{donor['id']}").json()["data"] == data
    txn = next(t for t in sb.world.wegive["transactions"] if t["donor_id"] == donor["id"])
    assert api("GET", f"/transactions/{txn['id']}").json()["data"]["owner"]["email_1"] == "robert.new@example.org"


def test_find_or_create_finds_by_email_then_creates(api, sb):
    existing = next(d for d in sb.world.wegive["donors"] if d["email_1"] and "@" in d["email_1"]
                    and d["type"] == "individual")
    found = api("POST", "/donors/find-or-create", json={"type": "individual", "email": existing["email_1"]})
    assert found.status_code == 200 and found.json()["data"]["id"] == existing["id"]
    body = {"type": "individual", "email": "brand.new@example.org", "first_name": "Brand", "last_name": "New"}
    created = api("POST", "/donors/find-or-create", json=body).json()["data"]
    assert created["id"] > max(d["id"] for d in sb.world.wegive["donors"]) and created["name"] == "Brand New"
    again = api("POST", "/donors/find-or-create", json=body).json()["data"]
    assert again["id"] == created["id"]
    missing = api("POST", "/donors/find-or-create", json={"type": "person"})
    assert missing.status_code == 422 and set(missing.json()["errors"]) == {"type", "email"}


def test_put_fund_writes_bloomerang_id_back(api, sb):
    sb.stores["wegive"].clock = lambda: datetime(2026, 11, 21, tzinfo=UTC)
    data = api("PUT", "/funds/2", json={"bloomerang_id": 1003}).json()["data"]
    assert data["bloomerang_id"] == "1003" and "updated_at" not in data  # a FundResource has none
    assert sb.stores["wegive"].funds[2]["updated_at"] == "2026-11-21T00:00:00.000000Z"
    assert [f["id"] for f in api("GET", "/funds", params={"bloomerang_id": 1003}).json()["data"]] == [2]
    assert api("PUT", "/funds/2", json={"name": ""}).status_code == 422


def test_user_edits_in_the_store_show_up_in_the_updated_filter(api, sb):
    store = sb.stores["wegive"]
    store.clock = lambda: datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    txn_id = sb.world.wegive["transactions"][1]["id"]
    store.refund_transaction(txn_id)
    new = store.add_transaction(sb.world.wegive["donors"][0]["id"], 12345, source_type="check")
    rows = api("GET", "/transactions", params={"updated_at[start]": "2026-11-22T08:00:00Z"}).json()["data"]
    assert {r["id"] for r in rows} == {txn_id, new["id"]}
    assert next(r for r in rows if r["id"] == txn_id)["status"] == "Refunded"


def test_dollar_knob_serves_amounts_in_dollars(api, sb):
    store = sb.stores["wegive"]
    txn = sb.world.wegive["transactions"][5]
    store.amount_units = "dollars"
    try:
        data = api("GET", f"/transactions/{txn['id']}").json()["data"]
    finally:
        store.amount_units = "cents"
    assert data["amount"] == round(txn["amount"] / 100, 2)
    assert sum(a["amount"] for a in data["fund_allocations"]) == pytest.approx(data["amount"])


def test_fund_allocations_and_campaigns_lists(api, sb):
    txn = next(t for t in sb.world.wegive["transactions"] if len(t["fund_allocations"]) > 1)
    rows = api("GET", "/fund-allocations", params={"transaction_id": txn["id"]}).json()["data"]
    assert sum(r["amount"] for r in rows) == txn["amount"] and all(r["fund"]["name"] for r in rows)
    assert api("GET", "/campaigns").json()["meta"]["total"] == "4"


def test_donor_list_rows_are_table_resources_and_the_detail_has_the_person(api, sb):
    """contracts/wegive-handbid.md §1.4: a row has ``first_name`` and ``name`` but no last or middle name, and
    the address as ``mailing_address_object`` plus the ``mailingAddress`` string; the detail has the rest."""
    donor = next(d for d in sb.world.wegive["donors"] if d["type"] == "individual" and d["last_name"]
                 and d["mailing_address"])
    row = next(r for r in _all(api, "/donors") if r["id"] == donor["id"])
    assert not {"last_name", "middle_name", "mailing_address", "updated_at", "bloomerang_id"} & set(row)
    assert (row["first_name"], row["name"]) == (donor["first_name"], donor["name"])
    assert row["mailing_address_object"] == donor["mailing_address"]
    assert row["mailingAddress"] == donor["mailing_address"]["readable_string"]
    detail = api("GET", f"/donors/{donor['id']}").json()["data"]
    assert (detail["last_name"], detail["middle_name"]) == (donor["last_name"], donor["middle_name"])
    assert detail["mailing_address"] == donor["mailing_address"] and "mailing_address_object" not in detail
    assert (detail["bloomerang_id"], detail["updated_at"]) == (donor["bloomerang_id"], donor["updated_at"])


def test_donor_spread_knob_drops_the_raw_columns_from_the_detail(api, sb):
    store, donor_id = sb.stores["wegive"], sb.world.wegive["donors"][0]["id"]
    store.donor_spread = False
    try:
        detail = api("GET", f"/donors/{donor_id}").json()["data"]
    finally:
        store.donor_spread = True
    assert "bloomerang_id" not in detail and "updated_at" not in detail and detail["id"] == donor_id


def test_card_and_bank_sources_are_the_documented_resources(api, sb):
    """``CardResource``: issuer, last_four, expiration "MM/YY", expires_at; ``BankResource``: last_four,
    bank_account_type, institution_number, transit_number (empty unless the knob says US routing)."""
    txns = sb.world.wegive["transactions"]
    card = api("GET", f"/transactions/{next(t for t in txns if t['source_type'] == 'card')['id']}").json()["data"]
    source = card["source"]
    assert source["type"] == "card" and source["issuer"] in ("visa", "mastercard", "amex", "discover")
    assert re.fullmatch(r"\d{4}", source["last_four"]) and re.fullmatch(r"\d{2}/\d{2}", source["expiration"])
    month, year = source["expiration"].split("/")
    assert source["expires_at"].startswith(f"20{year}-{month}-")
    assert not {"brand", "exp_month", "exp_year"} & set(source)
    bank_id = next(t for t in txns if t["source_type"] == "bank")["id"]
    bank = api("GET", f"/transactions/{bank_id}").json()["data"]["source"]
    assert bank["type"] == "bank" and bank["bank_account_type"] in ("checking", "savings")
    assert bank["institution_number"] is None and bank["transit_number"] is None
    assert not {"account_type", "routing_number"} & set(bank)
    sb.stores["wegive"].bank_transit_number = True
    try:
        routed = api("GET", f"/transactions/{bank_id}").json()["data"]["source"]
    finally:
        sb.stores["wegive"].bank_transit_number = False
    assert routed["transit_number"] in ("110000000", "021000021")
    gift = next(t for t in txns if t["source_type"] == "in_kind")
    row = next(r for r in _all(api, "/transactions", {"source_type": "in_kind"}) if r["id"] == gift["id"])
    assert row["source"] == {"type": "in_kind"} and row["description"] == gift["description"] != "Donation"
