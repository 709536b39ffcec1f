"""HandbidClient walked through every endpoint the Handbid sandbox serves, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from bloom_pipeline.clients.handbid import HandbidClient
from bloom_pipeline.clients.http import AuthError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.handbid import app as handbid_app
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=250, seed=13, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def hb(sb):
    client = HandbidClient(sb.urls["handbid"], sb.keys["handbid"], sb.handbid_org_id)
    yield client
    client.close()


def queries(sb, path: str, since: int) -> list[dict]:
    return [parse_qs(e.query) for e in sb.request_log.entries[since:] if e.api == "handbid" and e.path == path]


def test_contacts_page_by_limit_and_offset(sb, hb):
    contacts_path = f"/v3/manager/organizations/{sb.handbid_org_id}/contacts"
    mark = len(sb.request_log.entries)
    everyone = list(hb.iter_contacts())
    assert len(everyone) == len(sb.world.handbid["contacts"]) and len({c["id"] for c in everyone}) == len(everyone)
    assert [(q["limit"], q["offset"]) for q in queries(sb, contacts_path, mark)] == [(["100"], ["0"])]
    small = HandbidClient(sb.urls["handbid"], sb.keys["handbid"], sb.handbid_org_id)
    small.PAGE_SIZE = 25  # the same walk in several pages
    mark = len(sb.request_log.entries)
    assert [c["id"] for c in small.iter_contacts()] == [c["id"] for c in everyone]
    offsets = [q["offset"][0] for q in queries(sb, contacts_path, mark)]
    assert offsets == [str(n) for n in range(0, len(everyone), 25)]


def test_contacts_updated_since_includes_the_cursor_second(hb):
    everyone = list(hb.iter_contacts())
    cursor = sorted(c["dateUpdated"] for c in everyone)[len(everyone) // 2]
    recent = list(hb.iter_contacts(updated_since=cursor))
    assert {c["id"] for c in recent} == {c["id"] for c in everyone if c["dateUpdated"] >= cursor}


def test_contact_get_and_update(hb):
    contact = next(hb.iter_contacts())
    assert hb.get_contact(contact["id"])["email"] == contact["email"]
    updated = hb.update_contact(contact["id"], {"firstName": "Renamed", "userCellPhone": "3035550101"})
    assert updated["firstName"] == "Renamed" and updated["dateUpdated"] >= contact["dateUpdated"]
    assert hb.get_contact(contact["id"])["firstName"] == "Renamed"


def test_auctions_and_their_receipts_payments_items(sb, hb):
    auctions = list(hb.iter_auctions())
    assert len(auctions) == len(sb.world.handbid["auctions"])
    reconciled = list(hb.iter_auctions(status="reconciled"))
    assert reconciled and all(a["status"] == "reconciled" for a in reconciled)
    assert {a["id"] for a in hb.iter_auctions(status=["closed", "reconciled"])} >= {a["id"] for a in reconciled}
    payments = [p for a in auctions for p in hb.iter_payments(a["id"])]
    receipts = [r for a in auctions for r in hb.iter_receipts(a["id"])]
    items = [i for a in auctions for i in hb.iter_items(a["id"])]
    assert len(payments) == len(sb.world.handbid["payments"])
    assert len(receipts) == len(sb.world.handbid["receipts"])
    assert len(items) == len(sb.world.handbid["items"])


def test_auction_bidders_say_who_registered_and_who_checked_in(sb, hb):
    bidders = [b for a in hb.iter_auctions() for b in hb.iter_bidders(a["id"])]
    assert len(bidders) == len(sb.world.handbid["bidders"])
    assert {b["isCheckedIn"] for b in bidders} == {0, 1}  # served as 0/1 (the store's flags_as knob)


def test_errors(sb, hb):
    with pytest.raises(ApiError) as err:
        hb.get_contact(99_999_999)
    assert err.value.status == 404
    with pytest.raises(ApiError) as bad_status:
        list(hb.iter_auctions(status="sleeping"))
    assert bad_status.value.status == 400
    with pytest.raises(AuthError, match="DEMO_HANDBID_TOKEN"):
        list(HandbidClient(sb.urls["handbid"], "wrong-token-1234", sb.handbid_org_id,
                           token_env="DEMO_HANDBID_TOKEN").iter_auctions())


def test_every_served_route_was_walked(sb, hb):
    """Runs last in this module: each route of the Handbid app saw at least one request."""
    routes = handbid_app.create_app(sb.stores["handbid"], Knobs(), RequestLog(), "k").app.routes
    seen = [(e.method, e.path) for e in sb.request_log.entries if e.api == "handbid"]
    missing = [f"{sorted(r.methods - {'HEAD'})} {r.path}" for r in routes
               if not any(m in r.methods and r.path_regex.match(p) for m, p in seen)]
    assert missing == []
