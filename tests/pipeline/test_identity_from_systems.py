"""Identity lives in the systems: a lost data folder, or gifts another tool already posted, create nothing twice.

The staging file and the journal are caches. What decides "this gift already exists in Bloomerang" is what
Bloomerang holds (the correlation value on the designation's custom field) and what the source holds
(WeGive's ``bloomerang_id``), so wiping the data folder and syncing again must write nothing.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SyncHarness = Any  # the ``harness`` fixture (tests/pipeline/conftest.py)
WRITES = frozenset({"POST", "PUT", "DELETE"})


def _census(h: SyncHarness) -> dict[str, int]:
    transactions = h.transactions()
    return {"constituents": len(h.constituents()), "transactions": len(transactions),
            "refunded": sum(t.get("IsRefunded") in ("Yes", True) for t in transactions),
            "refunds": len(h.bloomerang.refunds), "funds": len(h.bloomerang.funds)}


def test_a_lost_data_folder_creates_nothing_twice_and_reads_pages_not_records(harness: SyncHarness) -> None:
    first = harness.sync()
    assert first.exit_code == 0, first.message
    before = _census(harness)
    assert before["transactions"] > 20 and before["refunded"] > 0, before
    shutil.rmtree(harness.data_dir)
    harness.sb.request_log.clear()

    again = harness.sync()

    assert again.status == "succeeded", again.message
    assert _census(harness) == before
    writes = {k: n for k, n in harness.sb.request_log.counts("bloomerang").items() if k[1] in WRITES}
    assert writes == {}, writes
    reads_by = harness.sb.request_log.counts("bloomerang")
    reads = sum(reads_by.values())
    # pages of the records, plus the run's fixed reads (custom fields and pick lists, funds, campaigns, appeals,
    # tributes, the Handbid event interactions of the linked constituents, ...): never one read per record
    assert reads <= (before["constituents"] + before["transactions"]) / 50 + 12, reads_by
    assert again.counts["transactions"].get("created", 0) == 0
    dupes = harness.duplicates(harness.transactions_by(harness.WEGIVE_TRANSACTION_FIELD))
    assert dupes == {}, dupes


def test_gifts_another_tool_posted_with_the_correlation_value_are_linked_not_posted(harness: SyncHarness) -> None:
    assert harness.sync().exit_code == 0
    wegive = harness.sb.stores["wegive"]
    gift = wegive.add_transaction(1001, 4321)
    gift_id = str(gift["id"] if isinstance(gift, dict) else gift)
    donor = next(c for c in harness.constituents()
                 if harness.custom_value(c, harness.WEGIVE_DONOR_FIELD) == "1001")
    fund_id = next(iter(harness.bloomerang.funds))
    posted = harness.bloomerang.create_transaction({
        "AccountId": donor["Id"], "Date": "2026-11-30", "Amount": 43.21, "Method": "Cash",
        "Designations": [{"Amount": 43.21, "Type": "Donation", "FundId": fund_id,
                          "CustomValues": [{"FieldId": harness.WEGIVE_TRANSACTION_FIELD, "Value": gift_id}]}],
    })
    count = len(harness.transactions())

    report = harness.sync()

    assert report.status == "succeeded", report.message
    assert len(harness.transactions()) == count, "the gift another tool posted was posted again"
    linked = harness.frame("SELECT bloomerang_id FROM sync_state WHERE entity = 'transactions' "
                           "AND source = 'wegive' AND source_id = ?", [gift_id])
    assert linked["bloomerang_id"].tolist() == [int(posted["Id"])]


def test_placeholders_and_defaults_never_overwrite_what_bloomerang_holds(harness: SyncHarness) -> None:
    assert harness.sync().exit_code == 0
    email = "brand.newperson@example.org"
    typed = harness.bloomerang.create_constituent({
        "Type": "Individual", "FirstName": "Brand", "LastName": "Newperson",
        "PrimaryEmail": {"Type": "Home", "Value": email},
    })
    donor = harness.sb.stores["wegive"].find_or_create_donor({"type": "individual", "first_name": "Brand",
                                                              "email": email})

    report = harness.sync()

    assert report.status == "succeeded", report.message
    after = harness.bloomerang.get_constituent(typed["Id"]) if hasattr(harness.bloomerang, "get_constituent") \
        else next(c for c in harness.constituents() if c["Id"] == typed["Id"])
    assert after["LastName"] == "Newperson", "the LNU placeholder overwrote a typed last name"
    assert not after.get("PrimaryAddress"), f"a default country made an address: {after.get('PrimaryAddress')}"
    linked = harness.frame("SELECT bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                           "AND source = 'wegive' AND source_id = ?", [str(donor["id"])])
    assert linked["bloomerang_id"].tolist() == [int(typed["Id"])]
