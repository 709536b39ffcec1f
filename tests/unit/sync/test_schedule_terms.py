"""The pure mapping of WeGive schedules to Bloomerang Pledge / RecurringDonation terms (``sync/plan/schedules``)
and of the schedule plan (``sync/apply/recurring``): real terms, or a reason — never a guess."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from bloom_pipeline.sync.apply import recurring
from bloom_pipeline.sync.apply.refs import RefResolver
from bloom_pipeline.sync.plan import schedules


def _pledge(**changes: object) -> dict[str, object]:
    return {"id": 3001, "total_amount": 120000, "installment_size": 10000, "installment_frequency": "monthly",
            "start_date": "2026-01-31", "fund": {"id": 4}} | changes


def test_a_twelve_month_pledge_has_twelve_monthly_installments_on_the_start_day() -> None:
    terms = schedules.pledge_terms(_pledge(), 100)
    assert terms.reason is None and terms.date == "2026-01-31"
    assert terms.line["Amount"] == 1200.0 and terms.line["PledgeFrequency"] == "Monthly"
    plan = terms.line["PledgeInstallments"]
    assert [i["Amount"] for i in plan] == [100.0] * 12
    # a month-end start stays on each month's last day, and comes back to the 31st
    assert [i["Date"] for i in plan[:4]] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
    assert plan[-1]["Date"] == "2026-12-31"


def test_the_last_installment_is_the_remainder_so_the_plan_adds_up() -> None:
    terms = schedules.pledge_terms(_pledge(total_amount=100000, installment_size=30000,
                                           installment_frequency="Quarterly"), 100)
    plan = terms.line["PledgeInstallments"]
    assert [i["Amount"] for i in plan] == [300.0, 300.0, 300.0, 100.0]
    assert sum(i["Amount"] for i in plan) == terms.line["Amount"]
    assert [date.fromisoformat(i["Date"]).month for i in plan] == [1, 4, 7, 10]


def test_amounts_in_dollars_are_read_at_the_scale_of_the_payment() -> None:
    assert schedules.amount_scale(5000, 50.0) == 100
    assert schedules.amount_scale("50.00", 50.0) == 1
    assert schedules.amount_scale(5000, 12.5) is None  # neither reading fits: not guessed
    terms = schedules.pledge_terms(_pledge(total_amount="1200.00", installment_size="100.00"), 1)
    assert terms.line["Amount"] == 1200.0 and len(terms.line["PledgeInstallments"]) == 12


@pytest.mark.parametrize(("spelling", "name"), [
    ("monthly", "Monthly"), ("Monthly", "Monthly"), ("month", "Monthly"), ("every-other-week", "EveryOtherWeekly"),
    ("bi-weekly", "EveryOtherWeekly"), ("annually", "Yearly"), ("Quarterly", "Quarterly"), ("weekly", "Weekly"),
    ("bimonthly", None), ("", None), (None, None), ("lunar", None),
])
def test_frequency_spellings(spelling: object, name: str | None) -> None:
    assert schedules.bloomerang_frequency(spelling) == name


@pytest.mark.parametrize(("changes", "why"), [
    ({"installment_frequency": None}, "installment frequency"),
    ({"installment_frequency": "bimonthly"}, "installment frequency"),
    ({"start_date": None}, "no start_date"),
    ({"installment_size": 0}, "installment_size"),
    ({"total_amount": "soon"}, "total_amount"),
])
def test_a_pledge_whose_terms_cannot_be_read_gets_a_reason(changes: dict[str, object], why: str) -> None:
    terms = schedules.pledge_terms(_pledge(**changes), 100)
    assert terms.line == {} and why in (terms.reason or "")


def test_a_scheduled_donation_keeps_its_start_date_frequency_and_end() -> None:
    record = {"id": 7001, "amount": 4000, "frequency": "quarterly", "start_date": "2025-12-05",
              "ends_at": "2027-12-05T00:00:00.000000Z", "fund_id": 3}
    terms = schedules.recurring_terms(record, 100)
    assert terms.line == {"Type": "RecurringDonation", "Amount": 40.0, "RecurringDonationStartDate": "2025-12-05",
                          "RecurringDonationFrequency": "Quarterly", "RecurringDonationEndDate": "2027-12-05"}
    assert schedules.schedule_fund(record) == 3 and schedules.schedule_fund(_pledge()) == 4
    assert "frequency" in schedules.recurring_terms(record | {"frequency": None}, 100).reason
    cancelled = record | {"ends_at": None, "deleted_at": "2026-04-02T10:00:00.000000Z"}
    assert schedules.recurring_terms(cancelled, 100).line["RecurringDonationEndDate"] == "2026-04-02"


def test_installment_dates_by_frequency() -> None:
    start = date(2026, 3, 1)
    assert schedules.installment_dates(start, "EveryOtherWeekly", 3) == [date(2026, 3, 1), date(2026, 3, 15),
                                                                          date(2026, 3, 29)]
    assert schedules.installment_dates(start, "TwiceMonthly", 3) == [date(2026, 3, 1), date(2026, 3, 16),
                                                                      date(2026, 4, 1)]
    assert schedules.installment_dates(start, "Yearly", 2) == [start, date(2027, 3, 1)]


def _payments(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """Planned payment creates: (WeGive id, designation link key, ref)."""
    return pd.DataFrame([{"source": "wegive", "source_id": sid, "action": "create", "reason": None,
                          "payload": json.dumps({"AccountId": "ref:wegive.donors:1001", "Date": "2026-10-01",
                                                 "Amount": 100.0, "Designations": [
                                                     {"Amount": 100.0, "FundId": "ref:wegive.funds:1", key: ref,
                                                      "CampaignId": 9}]})} for sid, key, ref in rows])


def test_the_schedule_plan_builds_from_the_record_and_holds_payments_of_a_missing_one() -> None:
    plan_in = _payments(("88001", "PledgeId", "ref:wegive.pledges:3001"),
                        ("88002", "PledgeId", "ref:wegive.pledges:3001"),
                        ("88003", "PledgeId", "ref:wegive.pledges:3999"))
    raw = {sid: {"id": sid, "amount": 10000} for sid in ("88001", "88002", "88003")}
    plan = recurring.schedule_plan(plan_in, raw, RefResolver(), {"pledges": {"3001": _pledge()}})
    assert list(plan["source_id"]) == ["pledges:3001", "pledges:3999"]
    created, missing = plan.to_dict("records")
    body = json.loads(created["payload"])
    assert created["action"] == "create" and body["Date"] == "2026-01-31" and body["Amount"] == 1200.0
    [line] = body["Designations"]
    assert line["FundId"] == "ref:wegive.funds:4" and line["CampaignId"] == 9  # the pledge's own fund
    assert len(line["PledgeInstallments"]) == 12
    assert missing["action"] == "blocked" and "no pledge 3999" in missing["reason"]
    held = recurring.hold_payments(plan_in, plan)
    assert list(held["action"]) == ["create", "create", "blocked"]
    assert held["reason"].iloc[2].startswith("payment waits for its schedule: WeGive lists no pledge 3999")
