"""The generated sandbox world: deterministic, fast, and messy in the ways the sync must survive."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from nicknames import NickNamer

from bloom_pipeline.sandbox.data.wegive import (
    ANCHOR,
    SOURCE_TYPES,
    STATUSES,
    iter_wegive_donors,
    iter_wegive_transactions,
)
from bloom_pipeline.sandbox.data.world import generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(donors=2000, seed=42)


def _dump(world) -> str:
    parts = [world.bloomerang, world.wegive, world.handbid, world.handbid_org_id, world.links, str(world.anchor)]
    return json.dumps(parts, sort_keys=True)


@pytest.mark.slow  # seconds of work: kept out of the fast tier
def test_same_seed_gives_byte_identical_world(world):
    assert _dump(generate_world(donors=2000, seed=42)) == _dump(world)


def test_different_seed_gives_different_world(world):
    other = generate_world(donors=2000, seed=43)
    assert [d["email_1"] for d in other.wegive["donors"][:50]] != [d["email_1"] for d in world.wegive["donors"][:50]]


def test_donor_mix_has_companies_missing_names_bad_emails_odd_phones_and_foreign_addresses(world):
    donors = world.wegive["donors"]
    types = Counter(d["type"] for d in donors)
    assert set(types) == {"individual", "company"} and 0.06 < types["company"] / len(donors) < 0.14
    individuals = [d for d in donors if d["type"] == "individual"]
    assert any(d["first_name"] is None for d in individuals) and any(d["last_name"] is None for d in individuals)
    assert all(d["first_name"] is None and d["name"] for d in donors if d["type"] == "company")

    def invalid(email):
        try:
            validate_email(email, check_deliverability=False)
            return False
        except EmailNotValidError:
            return True

    bad = [d for d in donors if d["email_1"] and invalid(d["email_1"])]
    assert 0.01 < len(bad) / len(donors) < 0.06
    phones = [d["mobile_phone"] for d in donors if d["mobile_phone"]]
    assert any(p.startswith("(") for p in phones) and any("." in p for p in phones)
    assert any(p.startswith("+44") for p in phones) and any(len(p) == 7 and p.isdigit() for p in phones)
    assert phonenumbers.is_possible_number(phonenumbers.parse(next(p for p in phones if p.startswith("+44")), None))
    countries = Counter((d["mailing_address"] or {}).get("country") for d in donors)
    assert countries["US"] > 1500 and {"GB", "DE", "FR", "CA"} <= set(countries)
    assert any(d["mailing_address"] is None for d in donors)


def test_transactions_cover_every_status_source_type_split_recurring_and_pledge(world):
    txns = world.wegive["transactions"]
    assert 2.5 < len(txns) / len(world.wegive["donors"]) < 3.5
    assert set(STATUSES) == {t["status"] for t in txns}
    assert set(SOURCE_TYPES) == {t["source_type"] for t in txns}
    assert all(isinstance(t["amount"], int) and isinstance(t["fee"], int) for t in txns)
    assert all(sum(a["amount"] for a in t["fund_allocations"]) == t["amount"] for t in txns)
    assert any(len(t["fund_allocations"]) > 1 for t in txns)
    refunded = [t for t in txns if t["status"] == "Refunded"]
    assert refunded and all(t["refunded_at"] and t["updated_at"] == t["refunded_at"] for t in refunded)
    monthly = [t for t in txns if t["frequency"] == "monthly"]
    assert monthly and all(t["scheduled_donation_id"] for t in monthly)
    assert any(Counter(t["scheduled_donation_id"] for t in monthly).values())
    assert any(t["pledge"] and t["pledge_id"] for t in txns)
    card = next(t for t in txns if t["source_type"] == "card")  # CardResource / BankResource (wegive-openapi.json)
    assert {"issuer", "last_four", "expiration", "expires_at"} <= set(card["source"])
    bank = next(t for t in txns if t["source_type"] == "bank")
    assert bank["source"]["bank_account_type"] in ("checking", "savings") and bank["source"]["transit_number"]
    assert next(t for t in txns if t["source_type"] == "check")["source"] == {"type": "check"}


def test_transaction_times_are_laravel_utc_within_120_days_and_ids_follow_creation(world):
    txns = world.wegive["transactions"]
    start = (ANCHOR.replace(tzinfo=None).isoformat()[:10])
    assert all(t["created_at"].endswith("Z") and len(t["created_at"]) == 27 for t in txns)
    assert all(t["created_at"] <= t["updated_at"] <= start + "T00:00:00.000000Z" for t in txns)
    oldest = min(t["created_at"] for t in txns)
    assert oldest >= "2026-07-03"  # anchor 2026-11-01 minus 121 days
    assert [t["created_at"] for t in txns] == sorted(t["created_at"] for t in txns)


def test_every_identity_path_is_present(world):
    links = world.links
    assert all(len(links[path]) >= 5 for path in ("both", "custom_field", "bloomerang_id", "match", "handbid"))
    constituents = world.bloomerang["constituents"]
    donors = {d["id"]: d for d in world.wegive["donors"]}
    for _src, donor_id, index in links["both"]:
        assert constituents[index]["CustomValues"] == [{"FieldId": 901, "Value": str(donor_id)}]
        assert isinstance(donors[donor_id]["bloomerang_id"], int)
    for _src, donor_id, index in links["custom_field"]:
        assert donors[donor_id]["bloomerang_id"] is None and constituents[index]["CustomValues"]
    for _src, donor_id, index in links["bloomerang_id"]:
        assert donors[donor_id]["bloomerang_id"] and "CustomValues" not in constituents[index]
    share = sum(len(links[p]) for p in ("both", "custom_field", "bloomerang_id", "match")) / len(donors)
    assert 0.10 < share < 0.20
    assert all(c["PrimaryEmail"]["Type"] == "Home" for c in constituents if "PrimaryEmail" in c)


def test_bloomerang_has_shared_and_own_funds_campaigns_and_appeals(world):
    bloomerang_funds = {f["Name"] for f in world.bloomerang["funds"]}
    wegive_funds = {f["name"] for f in world.wegive["funds"]}
    assert bloomerang_funds & wegive_funds and bloomerang_funds - wegive_funds
    assert "Annual Fund 2026" in {c["Name"] for c in world.bloomerang["campaigns"]}
    assert "Spring Gala" in {a["Name"] for a in world.bloomerang["appeals"]}


def test_handbid_world_has_every_status_receipts_payments_and_nickname_twins(world):
    hb = world.handbid
    statuses = Counter(a["status"] for a in hb["auctions"])
    assert set(statuses) == {"setup", "presale", "preview", "open", "ending", "extended", "closed", "reconciled"}
    assert statuses["reconciled"] >= 2
    assert all(r["lineItems"] and all(li["name"] for li in r["lineItems"]) for r in hb["receipts"])
    assert {True, False} == {r["emailed"] for r in hb["receipts"]}
    per_receipt = Counter(p["receiptId"] for p in hb["payments"])
    assert max(per_receipt.values()) >= 2
    reconciled = {a["id"] for a in hb["auctions"] if a["status"] == "reconciled"}
    assert any(p["auctionId"] in reconciled for p in hb["payments"])
    by_email = {d["email_1"]: d for d in world.wegive["donors"] if d["email_1"]}
    twins = [(c, by_email[c["email"]]) for c in hb["contacts"] if c["email"] in by_email]
    assert 0.07 < len(twins) / len(hb["contacts"]) < 0.13
    namer = NickNamer()
    nicknamed = [(c, d) for c, d in twins if c["firstName"] != d["first_name"]]
    assert nicknamed and all(c["firstName"].lower() in namer.nicknames_of(d["first_name"]) for c, d in nicknamed)


def test_streaming_generators_match_world_ids_and_scale():
    donors = list(itertools.islice(iter_wegive_donors(1_000_000, seed=42), 300))
    assert [d["id"] for d in donors[:3]] == [1001, 1002, 1003]
    assert donors == list(iter_wegive_donors(300, seed=42))
    txns = list(itertools.islice(iter_wegive_transactions(300, seed=42), 100))
    assert all(t["donor_id"] in {d["id"] for d in donors} for t in txns)
    # speed is measured by benchmarks/mapping_throughput.py, not asserted in a unit test
