"""WeGiveClient walked through every endpoint the WeGive sandbox serves, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from bloom_pipeline.clients.http import AuthError
from bloom_pipeline.clients.wegive import WeGiveClient
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.sandbox.wegive import app as wegive_app

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=250, seed=11, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def wg(sb):
    client = WeGiveClient(sb.urls["wegive"], sb.keys["wegive"])
    yield client
    client.close()


def queries(sb, path: str, since: int) -> list[dict]:
    return [parse_qs(e.query) for e in sb.request_log.entries[since:] if e.api == "wegive" and e.path == path]


def test_donors_full_scan_pages_200_at_a_time(sb, wg):
    mark = len(sb.request_log.entries)
    donors = list(wg.iter_donors())
    assert len(donors) == len(sb.world.wegive["donors"]) == 250
    assert len({d["id"] for d in donors}) == 250
    pages = queries(sb, "/api/dashboard/donors", mark)
    assert [(q["page"], q["count"]) for q in pages] == [(["1"], ["200"]), (["2"], ["200"])]


def test_donor_get_update_and_find_or_create(wg):
    donor = next(wg.iter_donors(type="individual"))
    assert wg.get_donor(donor["id"])["id"] == donor["id"]
    updated = wg.update_donor(donor["id"], {"first_name": "Renamed", "bloomerang_id": 4242})
    assert updated["first_name"] == "Renamed" and updated["bloomerang_id"] == 4242
    assert wg.get_donor(donor["id"])["bloomerang_id"] == 4242
    found = wg.find_or_create_donor({"type": "individual", "email": donor["email_1"]})
    assert found["id"] == donor["id"]
    new = wg.find_or_create_donor({"type": "individual", "email": "brand.new@example.org",
                                   "first_name": "Brand", "last_name": "New"})
    assert new["id"] != donor["id"] and wg.get_donor(new["id"])["email_1"] == "brand.new@example.org"


def test_list_rows_lack_the_person_the_detail_has(sb, wg):
    """A list row (DonorTableResource) has no last name; ``get_donor`` (DonorViewResource) has it."""
    person = next(d for d in sb.world.wegive["donors"] if d["type"] == "individual" and d["last_name"])
    row = next(r for r in wg.iter_donors(type="individual") if r["id"] == person["id"])
    assert "last_name" not in row and "middle_name" not in row
    assert wg.get_donor(person["id"])["last_name"] == person["last_name"]


def test_donor_write_answers_reach_on_donor_detail_and_a_failing_callback_never_fails_the_write(sb, wg):
    seen: list[dict] = []
    donor = next(d for d in sb.world.wegive["donors"] if d["type"] == "individual")
    wg.on_donor_detail = seen.append
    try:
        answer = wg.update_donor(donor["id"], {"middle_name": "Quincy"})
        wg.find_or_create_donor({"type": "individual", "email": "hooked@example.org", "first_name": "Hook"})
        wg.get_donor(donor["id"])  # a read is the caller's own to keep
        assert [d["id"] for d in seen][0] == donor["id"] and len(seen) == 2
        assert seen[0] == answer and seen[0]["middle_name"] == "Quincy"

        def broken(detail: dict) -> None:
            raise RuntimeError("disk full")

        wg.on_donor_detail = broken
        assert wg.update_donor(donor["id"], {"middle_name": "Quinn"})["middle_name"] == "Quinn"
    finally:
        wg.on_donor_detail = None


def test_transactions_filter_by_bracket_ranges(sb, wg):
    everything = list(wg.iter_transactions())
    assert len(everything) == len(sb.world.wegive["transactions"]) > 200
    stamps = sorted(t["updated_at"] for t in everything)
    cut = stamps[len(stamps) // 2]
    cut_dt = datetime.fromisoformat(cut.replace("Z", "+00:00"))
    mark = len(sb.request_log.entries)
    recent = list(wg.iter_transactions(updated_since=cut_dt))
    assert recent and all(t["updated_at"] >= cut[:19] for t in recent)
    assert len(recent) < len(everything)
    sent = queries(sb, "/api/dashboard/transactions", mark)[0]
    assert sent["updated_at[start]"] == [cut_dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 30, tzinfo=UTC)
    window = list(wg.iter_transactions(created_range=(start, end), status="Success"))
    assert all("2026-01-01" <= t["created_at"][:10] <= "2026-06-30" and t["status"] == "Success" for t in window)
    one = everything[0]
    assert wg.get_transaction(one["id"])["id"] == one["id"]
    assert {t["id"] for t in wg.iter_transactions(donor_id=one["owner"]["id"])} >= {one["id"]}


def test_funds_allocations_and_campaigns(sb, wg):
    funds = list(wg.iter_funds())
    assert len(funds) == len(sb.world.wegive["funds"])
    assert wg.get_fund(funds[0]["id"])["name"] == funds[0]["name"]
    assert str(wg.update_fund(funds[0]["id"], {"bloomerang_id": 77})["bloomerang_id"]) == "77"
    allocations = list(wg.iter_fund_allocations())
    assert len(allocations) == len(sb.world.wegive["fund_allocations"]) > 200
    assert len(list(wg.iter_campaigns())) == len(sb.world.wegive["campaigns"])


def test_pledges_and_scheduled_donations(sb, wg):
    pledges = list(wg.iter_pledges())
    assert [p["id"] for p in pledges] == [p["id"] for p in sb.world.wegive["pledges"]] and pledges
    one = wg.get_pledge(pledges[0]["id"])
    assert one["id"] == pledges[0]["id"] and one["installment_frequency"] == "monthly"
    assert int(one["total_amount"]) % int(one["installment_size"]) == 0
    donor = one["donor_id"]
    assert {p["id"] for p in wg.iter_pledges(donor_id=donor)} == {
        p["id"] for p in sb.world.wegive["pledges"] if p["donor_id"] == donor}
    schedules = list(wg.iter_scheduled_donations())
    assert [s["id"] for s in schedules] == [s["id"] for s in sb.world.wegive["scheduled_donations"]] and schedules
    detail = wg.get_scheduled_donation(schedules[0]["id"])
    assert (detail["start_date"], detail["frequency"]) == (schedules[0]["start_date"], schedules[0]["frequency"])


def test_errors(sb, wg):
    with pytest.raises(ApiError) as err:
        wg.get_donor(9_999_999)
    assert err.value.status == 404
    with pytest.raises(ApiError) as invalid:
        wg.find_or_create_donor({"type": "individual"})
    assert invalid.value.status == 422 and "email" in invalid.value.message
    with pytest.raises(AuthError, match="DEMO_WEGIVE_TOKEN"):
        list(WeGiveClient(sb.urls["wegive"], "1|wrong-token", token_env="DEMO_WEGIVE_TOKEN").iter_donors())


def test_every_served_route_was_walked(sb, wg):
    """Runs last in this module: each route of the WeGive app saw at least one request."""
    routes = wegive_app.create_app(sb.stores["wegive"], Knobs(), RequestLog(), "k").app.routes
    seen = [(e.method, e.path) for e in sb.request_log.entries if e.api == "wegive"]
    missing = [f"{sorted(r.methods - {'HEAD'})} {r.path}" for r in routes
               if not any(m in r.methods and r.path_regex.match(p) for m, p in seen)]
    assert missing == []
