"""Issue 5: reruns are idempotent and cheap, a dry run changes nothing, and a real run applies exactly
its plan; source changes cost exactly one write each; Handbid payments wait for the reconciliation.

Each test changes the world, so each has its own sandbox (``harness``) and data dir.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.sync.extract.cursors import parse_time

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

SyncHarness = Any  # the ``harness`` fixture (tests/pipeline/conftest.py)
APIS = ("bloomerang", "wegive", "handbid")


def planned(h: SyncHarness, run_id: str) -> set[tuple[str, str, str, str]]:
    plan = h.frame("SELECT entity, source, source_id, action FROM push_plan WHERE run_id = ? "
                   "AND action IN ('create', 'update')", [run_id])
    return {(e, s, str(i), a + "d") for e, s, i, a in plan.itertuples(index=False)}


def applied(h: SyncHarness, run_id: str) -> set[tuple[str, str, str, str]]:
    log = h.sync_log(run_id)
    log = log[log["action"].isin(["created", "updated"]) & (log["direction"].fillna("push") == "push")]
    rows = log[["entity", "source", "source_id", "action"]].itertuples(index=False)
    return {(e, s, str(i), a) for e, s, i, a in rows}


def snapshot_tables(h: SyncHarness) -> dict[str, pd.DataFrame]:
    if not h.store.path.exists():
        return {}
    return {t: h.frame(f"SELECT * FROM {t} ORDER BY ALL") for t in ("sync_state", "cursors", "sync_runs")}


def test_a_rerun_with_no_change_writes_nothing_and_duplicates_nothing(harness: SyncHarness) -> None:
    first = harness.sync()
    assert first.exit_code == 0, first.message
    constituents, transactions = len(harness.bloomerang.constituents), len(harness.bloomerang.transactions)
    harness.sb.request_log.clear()
    second = harness.sync()
    assert second.exit_code == 0, second.message
    for api in APIS:
        assert not harness.write_requests(api), (api, harness.write_requests(api))
    assert (len(harness.bloomerang.constituents), len(harness.bloomerang.transactions)) == (constituents,
                                                                                            transactions)
    reads = harness.sb.request_log.counts("bloomerang")
    assert sum(reads.values()) <= 12, reads  # incremental: a few list pages, nothing per record
    assert second.counts["transactions"].get("created", 0) == 0


def bloomerang_records_read(h: SyncHarness) -> dict[str, list[dict[str, Any]]]:
    """The records Bloomerang's incremental lists answered since the log was cleared, by list."""
    read: dict[str, list[dict[str, Any]]] = {}
    for entry in h.sb.request_log.entries:
        if entry.api == "bloomerang" and entry.method == "GET" and entry.path_template in (
                "/v2/constituents", "/v2/transactions"):
            read.setdefault(entry.path_template, []).extend(json.loads(entry.body)["Results"])
    return read


def test_a_quiet_night_reads_only_what_changed_since_the_last_run_started(harness: SyncHarness,
                                                                          tmp_path: Path) -> None:
    """Bloomerang's cursors are settled up to a run's start minus the clock-skew tolerance, so a quiet night
    does not read again the records of the last second the previous run read (the whole tail of a fast
    load); a record stamped inside the tolerance but written after a run's read is still read next time."""
    mappings = tmp_path / "mappings"
    shutil.copytree(Path(__file__).resolve().parents[2] / "mappings", mappings)
    demo = mappings / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text().replace("clock_skew_tolerance: 2m", "clock_skew_tolerance: 1s"))
    harness.mappings_dir = mappings
    assert harness.sync().exit_code == 0
    time.sleep(2.5)  # the tolerance (1 s) and the one-second read overlap, waited out
    second_start = datetime.now(UTC)
    assert harness.sync().exit_code == 0  # reads the load's own writes back once
    time.sleep(2.5)
    harness.sb.request_log.capture_bodies = True
    harness.sb.request_log.clear()
    third_start = datetime.now(UTC)
    assert harness.sync().exit_code == 0
    settled = second_start - timedelta(seconds=2)  # the second run's start - tolerance - overlap
    for path, records in bloomerang_records_read(harness).items():
        stale = [r["Id"] for r in records if parse_time(r["AuditTrail"]["LastModifiedDate"]) < settled]
        assert not stale, (path, stale)  # the load's tail is not read again

    person = next(iter(harness.bloomerang.constituents))
    harness.bloomerang.touch("constituent", person, at=third_start - timedelta(milliseconds=500))
    harness.sb.request_log.clear()
    assert harness.sync().exit_code == 0
    read = {r["Id"] for r in bloomerang_records_read(harness)["/v2/constituents"]}
    assert person in read  # stamped before the third run started, written after its read: not lost


def test_a_dry_run_changes_nothing_and_the_real_run_applies_exactly_the_plan(harness: SyncHarness, capsys) -> None:
    harness.data_dir.mkdir(parents=True)
    dry = harness.sync(dry_run=True, quiet=False)
    printed = capsys.readouterr().out
    assert "constituents — create" in printed and "first_name:" in printed, printed[:2000]  # plan + diffs
    for api in APIS:
        assert not harness.write_requests(api), api
    assert not harness.store.path.exists(), "a dry run leaves no staging file behind"
    dry_plan = dry.plan[dry.plan["action"].isin(["create", "update"])]
    assert len(dry_plan) > 0

    real = harness.sync()
    assert real.exit_code == 0, real.message
    assert planned(harness, real.run_id) == applied(harness, real.run_id)
    as_planned_dry = {(e, s, str(i), a + "d") for e, s, i, a in
                      dry_plan[["entity", "source", "source_id", "action"]].itertuples(index=False)}
    assert as_planned_dry == planned(harness, real.run_id), "the dry run showed what the real run did"

    harness.sb.stores["wegive"].update_donor(1001, {"last_name": "Dry-Run-Changed"})
    harness.sb.stores["wegive"].add_transaction(1001, 777)
    before = snapshot_tables(harness)
    harness.sb.request_log.clear()
    again = harness.sync(dry_run=True)
    assert (again.plan["action"] == "create").sum() == 1  # the new gift, shown and not sent
    for api in APIS:
        assert not harness.write_requests(api), api
    after = snapshot_tables(harness)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[table], obj=table)  # cursors, state, run ledger untouched


def test_each_source_change_costs_exactly_its_own_writes(harness: SyncHarness) -> None:
    assert harness.sync().exit_code == 0
    wegive, bloomerang = harness.sb.stores["wegive"], harness.bloomerang
    by_txn = harness.transactions_by(harness.WEGIVE_TRANSACTION_FIELD)
    live = [t for t in wegive.transactions.values() if t["status"] == "Success" and str(t["id"]) in by_txn]
    plain = [t for t in live if not t.get("scheduled_donation_id") and not t.get("pledge_id")
             and len(t["fund_allocations"]) == 1]
    edited, refunded = plain[0], plain[1]
    new_amount = edited["amount"] + 1234
    allocations = [{**edited["fund_allocations"][0], "amount": new_amount}]  # WeGive keeps the two equal
    donor = next(d for d in wegive.donors.values() if d["type"] == "individual")
    harness.sb.request_log.clear()

    wegive.update_donor(donor["id"], {"last_name": "Renamed-Donor"})
    wegive.edit_transaction(edited["id"], amount=new_amount, fund_allocations=allocations)
    wegive.refund_transaction(refunded["id"])
    new = wegive.add_transaction(donor["id"], 4200)
    report = harness.sync()

    assert report.exit_code == 0, report.message
    writes = harness.write_requests()
    assert writes == Counter({("bloomerang", "PUT", "/v2/constituent/{id}"): 1,
                              ("bloomerang", "PUT", "/v2/transaction/{id}"): 1,
                              ("bloomerang", "POST", "/v2/refund"): 1,
                              ("bloomerang", "POST", "/v2/transaction"): 1}), writes
    by_txn = harness.transactions_by(harness.WEGIVE_TRANSACTION_FIELD)
    by_donor = harness.constituents_by(harness.WEGIVE_DONOR_FIELD)
    assert by_donor[str(donor["id"])][0]["LastName"] == "Renamed-Donor"
    assert by_txn[str(edited["id"])][0]["Amount"] == round(new_amount / 100, 2)
    assert by_txn[str(refunded["id"])][0]["IsRefunded"] == "Yes"
    assert [t["Amount"] for t in by_txn[str(new["id"])]] == [42.0]
    assert not harness.duplicates(by_txn)
    assert all(r["_run_processor_refund"] is False for r in bloomerang.refunds.values())


def test_handbid_payments_sync_once_their_auction_is_reconciled(harness: SyncHarness) -> None:
    handbid = harness.sb.stores["handbid"]
    closed = next(a for a in handbid.auctions.values() if a["status"] == "closed")
    waiting = [p for p in handbid.payments.values() if p["auctionId"] == closed["id"] and p["status"] != "voided"]
    assert waiting
    assert harness.sync().exit_code == 0
    by_payment = harness.transactions_by(harness.HANDBID_PAYMENT_FIELD)
    assert not {str(p["id"]) for p in waiting} & set(by_payment), "paid at an auction not yet reconciled"

    reconciled = next(a for a in handbid.auctions.values() if a["status"] == "reconciled")
    receipt = next(r for r in handbid.receipts.values() if r["auctionId"] == reconciled["id"] and not r["emailed"]
                   and any(p["receiptId"] == r["id"] for p in handbid.payments.values()))
    handbid.set_auction_status(closed["id"], "reconciled")
    handbid.mark_receipt_emailed(receipt["id"])
    report = harness.sync()
    assert report.exit_code == 0, report.message

    by_payment = harness.transactions_by(harness.HANDBID_PAYMENT_FIELD)
    assert not harness.duplicates(by_payment)
    for payment in waiting:
        record = by_payment[str(payment["id"])][0]
        assert record["Designations"][0]["Note"].startswith(closed["name"]), payment["id"]
    for payment in (p for p in handbid.payments.values() if p["receiptId"] == receipt["id"]):
        assert by_payment[str(payment["id"])][0]["Designations"][0]["AcknowledgementStatus"] == "Yes"


def test_one_failing_record_never_stops_the_others(harness: SyncHarness) -> None:
    wegive, bloomerang = harness.sb.stores["wegive"], harness.bloomerang
    gone = wegive.find_or_create_donor({"type": "individual", "email": "ada.gone@example.org", "first_name": "Ada",
                                        "last_name": "Gone"})  # a donor with no gifts yet
    assert harness.sync().exit_code == 0
    kept = next(d for d in wegive.donors.values() if d["type"] == "individual")
    by_donor = harness.constituents_by(harness.WEGIVE_DONOR_FIELD)
    bloomerang.delete_constituent(by_donor[str(gone["id"])][0]["Id"])  # deleted by a Bloomerang user
    doomed = wegive.add_transaction(gone["id"], 1500)
    fine = [wegive.add_transaction(kept["id"], 1000 + n) for n in range(3)]

    report = harness.sync()

    assert report.exit_code == 1 and report.counts["transactions"]["failed"] == 1, report.counts
    log = harness.sync_log(report.run_id)
    log = log[log["entity"] == "transactions"].set_index("source_id")
    assert log.loc[str(doomed["id"]), "action"] == "failed"
    assert "No constituent with id" in log.loc[str(doomed["id"]), "error"]  # the API's own message
    by_txn = harness.transactions_by(harness.WEGIVE_TRANSACTION_FIELD)
    assert all(len(by_txn[str(t["id"])]) == 1 for t in fine)
    assert str(doomed["id"]) not in by_txn
