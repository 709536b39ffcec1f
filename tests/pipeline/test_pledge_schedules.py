"""Pledges and recurring gifts from WeGive's own schedules, over real HTTP ("Money" issue, part A).

What it protects: a WeGive pledge of 12 monthly installments becomes one Bloomerang Pledge with those 12
installments (read back through ``GET /pledge/{id}/installments``), and its payments are PledgePayments of
it; a scheduled donation becomes a RecurringDonation with the schedule's own start date, frequency and amount
— not the first payment's date and a guessed "Monthly"; a payment whose pledge WeGive no longer lists is held
with the reason, not linked to an invented pledge; a gift that is not tax-deductible, or given to a fund
with a fair-market value, carries its NonDeductibleAmount. A rerun writes nothing, and with the data folder
lost nothing is created twice (the schedules are found by their correlation values in Bloomerang).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from tests.pipeline.conftest import SyncHarness, start_sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers

DONORS = 12
World = tuple[SyncHarness, dict[str, Any]]  # the synced harness and what the fixture added to WeGive
FMV_FUND = 2


def _designation(h: SyncHarness, value: str) -> dict[str, Any]:
    """The one Bloomerang designation whose correlation value is ``value`` (``wegive:pledges:<id>``, a gift id)."""
    found = [d for t in h.transactions() for d in t["Designations"]
             if h.custom_value(d, h.WEGIVE_TRANSACTION_FIELD) == value]
    assert len(found) == 1, f"{value}: {len(found)} designations"
    return found[0]


def _gift(h: SyncHarness, txn_id: int) -> dict[str, Any]:
    gifts = h.transactions_by(h.WEGIVE_TRANSACTION_FIELD).get(str(txn_id), [])
    assert len(gifts) == 1, f"WeGive gift {txn_id}: {len(gifts)} Bloomerang transactions"
    return gifts[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small world plus, as WeGive's back office would make them: a 12-month pledge with two payments, a
    quarterly schedule that started long before its payment, a cancelled (archived) schedule, a payment on a
    pledge since deleted, a gift
    that is not deductible and one to a fund with a fair-market value — synced once."""
    sb = start_sandbox(donors=DONORS)
    try:
        wg = sb.stores["wegive"]
        donor = min(int(t["donor_id"]) for t in wg.transactions.values() if t["status"] == "Success")
        facts: dict[str, Any] = {"donor": donor}
        facts["pledge"] = wg.add_pledge(donor, 120000, 10000, frequency="monthly", start_date="2026-06-15",
                                        end_date="2027-05-15")
        facts["pledge_payments"] = [wg.add_transaction(donor, 10000, pledge_id=facts["pledge"])["id"]
                                    for _ in range(2)]
        facts["schedule"] = wg.add_scheduled_donation(donor, 4000, frequency="quarterly", start_date="2025-12-05")
        facts["schedule_payment"] = wg.add_transaction(donor, 4000, scheduled_donation_id=facts["schedule"])["id"]
        facts["cancelled"] = wg.add_scheduled_donation(donor, 2000, start_date="2026-02-10")
        facts["cancelled_payment"] = wg.add_transaction(donor, 2000, scheduled_donation_id=facts["cancelled"])["id"]
        wg.scheduled_donations[facts["cancelled"]]["deleted_at"] = "2026-11-20T16:00:00.000000Z"  # archived
        gone = wg.add_pledge(donor, 30000, 10000, start_date="2026-09-01")
        facts["orphan"] = wg.add_transaction(donor, 10000, pledge_id=gone)["id"]
        wg.remove_schedule("pledges", gone)
        facts["gone"] = gone
        facts["not_deductible"] = wg.add_transaction(donor, 5000)["id"]
        wg.edit_transaction(facts["not_deductible"], is_tax_deductible=False)
        wg.funds[FMV_FUND].update(has_fmv=True, fmv=2500)  # a gala fund: $25 of each gift buys dinner
        facts["fmv_gift"] = wg.add_transaction(donor, 10000, fund_id=FMV_FUND)["id"]
        facts["fmv_small"] = wg.add_transaction(donor, 1000, fund_id=FMV_FUND)["id"]
        h = SyncHarness(sb, tmp_path_factory.mktemp("pledges") / "data")
        report = h.sync(direction="push")
        assert report.status in ("succeeded", "partial"), report.message
        yield h, facts
    finally:
        sb.stop()


def test_a_twelve_month_pledge_becomes_a_pledge_of_twelve_installments(world: World) -> None:
    h, facts = world
    pledge = _designation(h, f"wegive:pledges:{facts['pledge']}")
    assert pledge["Type"] == "Pledge" and pledge["Amount"] == 1200.0
    client = BloomerangClient(h.sb.urls["bloomerang"], h.sb.keys["bloomerang"], rate_budget=None)
    installments = list(client.iter_pledge_installments(pledge["Id"]))
    assert [i["Amount"] for i in installments] == [100.0] * 12
    days = [date.fromisoformat(i["Date"]) for i in installments]
    assert days[0] == date(2026, 6, 15) and days[-1] == date(2027, 5, 15)
    assert all((b.year * 12 + b.month) - (a.year * 12 + a.month) == 1 and b.day == 15
               for a, b in zip(days, days[1:], strict=False))
    for txn_id in facts["pledge_payments"]:
        [payment] = _gift(h, txn_id)["Designations"]
        assert payment["Type"] == "PledgePayment" and payment["PledgeId"] == pledge["Id"]
    assert sorted(pledge["PledgePaymentIds"]) == sorted(
        _gift(h, t)["Designations"][0]["Id"] for t in facts["pledge_payments"])
    assert pledge["PledgeBalance"] == 1000.0


def test_every_generated_pledge_keeps_its_installment_plan(world: World) -> None:
    h, facts = world
    client = BloomerangClient(h.sb.urls["bloomerang"], h.sb.keys["bloomerang"], rate_budget=None)
    generated = [p for p in h.sb.stores["wegive"].pledges.values() if p["id"] != facts["pledge"]]
    assert generated, "the world has pledges"
    for record in generated:
        pledge = _designation(h, f"wegive:pledges:{record['id']}")
        plan = list(client.iter_pledge_installments(pledge["Id"]))
        assert len(plan) == record["total_amount"] // record["installment_size"]
        assert plan[0]["Date"] == record["start_date"]


def test_a_recurring_donation_has_the_schedules_start_date_and_frequency(world: World) -> None:
    h, facts = world
    schedule = _designation(h, f"wegive:scheduled_donations:{facts['schedule']}")
    assert schedule["Type"] == "RecurringDonation"
    assert schedule["RecurringDonationStartDate"] == "2025-12-05"
    assert schedule["RecurringDonationFrequency"] == "Quarterly"
    assert schedule["Amount"] == 40.0
    [payment] = _gift(h, facts["schedule_payment"])["Designations"]
    assert payment["Type"] == "RecurringDonationPayment" and payment["RecurringDonationId"] == schedule["Id"]


def test_a_cancelled_schedule_is_read_from_the_archive_and_ends_when_it_was_cancelled(world: World) -> None:
    h, facts = world
    schedule = _designation(h, f"wegive:scheduled_donations:{facts['cancelled']}")
    assert (schedule["RecurringDonationStartDate"], schedule["RecurringDonationEndDate"]) == ("2026-02-10",
                                                                                              "2026-11-20")
    [payment] = _gift(h, facts["cancelled_payment"])["Designations"]
    assert payment["RecurringDonationId"] == schedule["Id"]


def test_a_payment_whose_pledge_is_gone_waits_with_the_reason(world: World) -> None:
    h, facts = world
    assert str(facts["orphan"]) not in h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)
    assert not [d for t in h.transactions() for d in t["Designations"]
                if h.custom_value(d, h.WEGIVE_TRANSACTION_FIELD) == f"wegive:pledges:{facts['gone']}"]
    log = h.sync_log(h.reports[0].run_id)
    row = log[(log["entity"] == "transactions") & (log["source_id"] == str(facts["orphan"]))].iloc[0]
    assert row["action"] == "skipped"
    assert "waits for its schedule" in row["error"] and f"no pledge {facts['gone']}" in row["error"]


def test_the_non_deductible_amount_lands(world: World) -> None:
    h, facts = world
    [not_deductible] = _gift(h, facts["not_deductible"])["Designations"]
    assert not_deductible["NonDeductibleAmount"] == 50.0
    [fmv] = _gift(h, facts["fmv_gift"])["Designations"]
    assert fmv["NonDeductibleAmount"] == 25.0
    [small] = _gift(h, facts["fmv_small"])["Designations"]
    assert small["NonDeductibleAmount"] == 10.0  # the benefit is capped at what was given
    [plain] = _gift(h, facts["schedule_payment"])["Designations"]
    assert plain.get("NonDeductibleAmount") in (None, 0)


def test_a_rerun_and_a_lost_data_folder_create_nothing_twice(world: World) -> None:
    h, facts = world
    schedules_before = sorted(d["Id"] for t in h.transactions() for d in t["Designations"]
                              if d["Type"] in ("Pledge", "RecurringDonation"))
    h.sb.request_log.clear()
    report = h.sync(direction="push")
    assert report.status in ("succeeded", "partial"), report.message
    assert not h.write_requests("bloomerang"), h.write_requests("bloomerang")
    shutil.rmtree(h.data_dir)
    report = h.sync(direction="push")
    assert report.status in ("succeeded", "partial"), report.message
    assert h.duplicates(h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)) == {}
    assert sorted(d["Id"] for t in h.transactions() for d in t["Designations"]
                  if d["Type"] in ("Pledge", "RecurringDonation")) == schedules_before
    assert str(facts["orphan"]) not in h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)
