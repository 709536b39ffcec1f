"""The Handbid manager simulator over loopback HTTP: paging, updatedSince, write-back, auctions, receipts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=120, seed=3, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sb.keys['handbid']}"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, sb.urls["handbid"] + path, timeout=10, **kwargs)

    return call


def _org(sb) -> str:
    return f"/v3/manager/organizations/{sb.handbid_org_id}"


def test_contacts_page_with_limit_offset_and_total_count(api, sb):
    seen, offset = [], 0
    while True:
        body = api("GET", _org(sb) + "/contacts", params={"limit": 7, "offset": offset}).json()
        assert body["totalCount"] == len(sb.world.handbid["contacts"])
        if not body["contacts"]:
            break
        seen += [c["id"] for c in body["contacts"]]
        offset += 7
    assert seen == sorted(c["id"] for c in sb.world.handbid["contacts"])
    assert api("GET", _org(sb) + "/contacts", params={"limit": 0}).json()["contacts"] == []
    too_many = api("GET", _org(sb) + "/contacts", params={"limit": 101})
    assert too_many.status_code == 400 and too_many.json()["error"] == "validation_error"


def test_updated_since_is_strictly_after(api, sb):
    contacts = sb.world.handbid["contacts"]
    pivot = sorted(c["dateUpdated"] for c in contacts)[len(contacts) // 2]
    body = api("GET", _org(sb) + "/contacts", params={"updatedSince": pivot, "limit": 100}).json()
    assert body["totalCount"] == sum(c["dateUpdated"] > pivot for c in contacts)
    assert all(c["dateUpdated"] > pivot for c in body["contacts"])


def test_put_contact_writes_back_and_bumps_date_updated(api, sb):
    sb.stores["handbid"].clock = lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    contact = sb.world.handbid["contacts"][2]
    response = api("PUT", f"/v3/manager/contacts/{contact['id']}",
                   json={"firstName": "Robert", "email": "robert@example.org", "userCellPhone": "(303) 555-1212"})
    assert response.status_code == 200
    data = response.json()["contact"]
    stamp = int(datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp())
    assert data["firstName"] == "Robert" and data["email"] == "robert@example.org" and data["dateUpdated"] == stamp
    since = api("GET", _org(sb) + "/contacts", params={"updatedSince": stamp - 1}).json()["contacts"]
    assert [c["id"] for c in since] == [contact["id"]]
    bad = api("PUT", f"/v3/manager/contacts/{contact['id']}", json={"email": "nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "validation_error"
    assert api("PUT", "/v3/manager/contacts/1", json={"firstName": "X"}).json()["error"] == "not_found"


def test_auction_status_filter_and_store_status_change(api, sb):
    body = api("GET", _org(sb) + "/auctions", params={"status": "reconciled"}).json()
    assert body["totalCount"] >= 2 and {a["status"] for a in body["auctions"]} == {"reconciled"}
    closed = api("GET", _org(sb) + "/auctions", params={"status": "closed"}).json()["auctions"][0]
    sb.stores["handbid"].set_auction_status(closed["id"], "reconciled")
    after = api("GET", _org(sb) + "/auctions", params={"status": "reconciled"}).json()
    assert closed["id"] in {a["id"] for a in after["auctions"]} and after["totalCount"] == body["totalCount"] + 1
    assert api("GET", _org(sb) + "/auctions", params={"status": "done"}).status_code == 400
    assert api("GET", "/v3/manager/organizations/1/auctions").status_code == 404


def test_receipts_carry_line_items_and_emailed_flag_payments_link_to_receipts(api, sb):
    auction = next(a for a in sb.world.handbid["auctions"] if a["status"] == "reconciled")
    receipts = api("GET", f"/v3/manager/auctions/{auction['id']}/receipts", params={"limit": 100}).json()["receipts"]
    assert receipts and all(r["lineItems"] and r["lineItems"][0]["name"] for r in receipts)
    assert all(isinstance(r["emailed"], bool) and (r["emailedAt"] is not None) == r["emailed"] for r in receipts)
    payments = api("GET", f"/v3/manager/auctions/{auction['id']}/payments", params={"limit": 100}).json()
    receipt_ids = {r["id"] for r in receipts}
    assert payments["payments"] and all(p["receiptId"] in receipt_ids for p in payments["payments"])
    items = api("GET", f"/v3/manager/auctions/{auction['id']}/items").json()
    assert items["totalCount"] >= 8 and items["items"][0]["name"]


def test_a_manager_payment_settles_an_open_receipt(api, sb):
    unpaid = next(r for r in sb.world.handbid["receipts"] if not r["paid"])
    payment = sb.stores["handbid"].add_payment(unpaid["id"], unpaid["balanceDue"], method="check",
                                               reference="check #7")
    path = f"/v3/manager/auctions/{unpaid['auctionId']}"
    receipts = api("GET", path + "/receipts", params={"limit": 100}).json()["receipts"]
    assert next(r for r in receipts if r["id"] == unpaid["id"])["paid"] is True
    payments = api("GET", path + "/payments", params={"limit": 100}).json()["payments"]
    assert payment["id"] in {p["id"] for p in payments}

def test_payments_of_unreconciled_auctions_are_served_too(api, sb):
    auction = next(a for a in sb.world.handbid["auctions"] if a["status"] == "closed")
    assert api("GET", f"/v3/manager/auctions/{auction['id']}/receipts").status_code == 200
    assert api("GET", "/v3/manager/auctions/1/payments").json()["error"] == "not_found"


def test_bad_token_is_401(sb):
    response = requests.get(sb.urls["handbid"] + _org(sb) + "/auctions", headers={"Authorization": "Bearer x"},
                            timeout=10)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
