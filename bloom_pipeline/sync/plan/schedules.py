"""The Bloomerang Pledge / RecurringDonation a WeGive schedule becomes: its real terms, never a guess.

Why: Bloomerang computes a pledge's balance, arrears and next installment from the installment plan it
was given, and a recurring schedule's next expected payment from its start date and frequency. Built from
the first payment seen (one installment of the whole amount, a schedule "starting" on whatever payment
the run met first, a guessed frequency) those figures are wrong at every month end. So the terms come
from WeGive's own schedule records (``GET /dashboard/pledges``, ``/dashboard/scheduled-donations``), and a
schedule whose terms cannot be read is *not* created: ``ScheduleTerms.reason`` says why, and its payments
wait (retried every run) rather than being linked to an invented schedule.

What the documents leave open, and how it is handled (contracts/wegive-handbid.md §1.5, §3):

* **Frequency names** — WeGive documents none. Every usual spelling is read (``monthly``, ``Monthly``,
  ``month``, ``every_other_week``, ``bi-weekly``, ``annually`` …, ``FREQUENCIES``); an unknown or ambiguous
  one (``bimonthly``: twice a month or every two months?) is a reason, not a guess.
* **Cents or dollars** — unconfirmed for every amount. A schedule's amounts are read at the scale the org's
  mapping read the payment's amount at (``amount_scale``: the raw amount over the mapped dollars), so one
  org setting (``cents_to_dollars`` or ``dollars`` on the transaction ``Amount``) decides both.
* **Installments of a pledge** — ``ceil(total_amount / installment_size)``, each ``installment_size``
  and the last the remainder (Bloomerang requires the installments to add up to the pledge amount),
  dated from ``start_date`` at the frequency (a month-end start stays on the month's last day).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

Record = dict[str, Any]

# a frequency's spelling, lower-cased with spaces and dashes as "_" -> Bloomerang's name
FREQUENCIES = {
    **dict.fromkeys(("weekly", "week", "every_week", "1_week"), "Weekly"),
    **dict.fromkeys(("biweekly", "bi_weekly", "every_other_week", "every_2_weeks", "fortnightly", "2_weeks",
                     "everyotherweekly"), "EveryOtherWeekly"),
    **dict.fromkeys(("twice_monthly", "twicemonthly", "semimonthly", "semi_monthly", "twice_a_month"),
                    "TwiceMonthly"),
    **dict.fromkeys(("monthly", "month", "every_month", "1_month"), "Monthly"),
    **dict.fromkeys(("every_other_month", "every_2_months", "2_months", "everyothermonthly"),
                    "EveryOtherMonthly"),
    **dict.fromkeys(("quarterly", "quarter", "every_quarter", "every_3_months", "3_months"), "Quarterly"),
    **dict.fromkeys(("yearly", "annually", "annual", "year", "every_year", "1_year"), "Yearly"),
}
# how far apart installments are: (months, days)
STEPS = {"Weekly": (0, 7), "EveryOtherWeekly": (0, 14), "Monthly": (1, 0), "EveryOtherMonthly": (2, 0),
         "Quarterly": (3, 0), "Yearly": (12, 0)}
CENT = Decimal("0.01")


@dataclass
class ScheduleTerms:
    """One schedule designation's terms (``line``), or why it cannot be created (``reason``)."""

    line: Record = field(default_factory=dict)
    date: str | None = None
    reason: str | None = None


def bloomerang_frequency(value: Any) -> str | None:
    """WeGive's frequency in any usual spelling → Bloomerang's name; None when unknown or ambiguous."""
    if not isinstance(value, str):
        return None
    return FREQUENCIES.get(value.strip().lower().replace("-", "_").replace(" ", "_"))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def amount_scale(raw_amount: Any, mapped_dollars: Any) -> int | None:
    """100 when the source amount is cents of the mapped dollars, 1 when it is the dollars; else None."""
    raw, dollars = _decimal(raw_amount), _decimal(mapped_dollars)
    if raw is None or dollars is None or dollars <= 0:
        return None
    if abs(raw - dollars * 100) < Decimal("0.5"):
        return 100
    if abs(raw - dollars) < Decimal("0.005"):
        return 1
    return None


def dollars(value: Any, scale: int) -> Decimal | None:
    number = _decimal(value)
    return None if number is None else (number / scale).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def add_months(day: date, months: int, anchor_day: int | None = None) -> date:
    """``months`` later on the anchor's day of the month, or the month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(anchor_day or day.day, calendar.monthrange(year, month)[1]))


def installment_dates(start: date, frequency: str, count: int) -> list[date]:
    """``count`` installment dates from ``start`` (TwiceMonthly: the start day and 15 days on, each month)."""
    if frequency == "TwiceMonthly":
        out: list[date] = []
        month = 0
        while len(out) < count:
            first = add_months(start, month)
            out += [first, first + timedelta(days=15)][: count - len(out)]
            month += 1
        return out
    months, days = STEPS[frequency]
    return [add_months(start, months * n) if months else start + timedelta(days=days * n) for n in range(count)]


def pledge_terms(pledge: Record, scale: int) -> ScheduleTerms:
    """A WeGive pledge → Bloomerang ``Pledge`` designation fields with its whole installment plan."""
    name = f"WeGive pledge {pledge.get('id')}"
    total, size = dollars(pledge.get("total_amount"), scale), dollars(pledge.get("installment_size"), scale)
    frequency = bloomerang_frequency(pledge.get("installment_frequency"))
    start = _day(pledge.get("start_date"))
    if total is None or total <= 0:
        return ScheduleTerms(reason=f"{name} has no usable total_amount ({pledge.get('total_amount')!r})")
    if size is None or size <= 0 or size > total:
        return ScheduleTerms(reason=f"{name} has no usable installment_size ({pledge.get('installment_size')!r})")
    if frequency is None:
        return ScheduleTerms(reason=f"{name}: installment frequency {pledge.get('installment_frequency')!r} is "
                                    "missing or not one Bloomerang knows; not guessed")
    if start is None:
        return ScheduleTerms(reason=f"{name} has no start_date; its installments are not invented")
    count = math.ceil(total / size)
    amounts = [size] * (count - 1) + [total - size * (count - 1)]
    plan = [{"Date": d.isoformat(), "Amount": float(a)}
            for d, a in zip(installment_dates(start, frequency, count), amounts, strict=True)]
    return ScheduleTerms(line={"Type": "Pledge", "Amount": float(total), "PledgeFrequency": frequency,
                               "PledgeInstallments": plan}, date=start.isoformat())


def recurring_terms(schedule: Record, scale: int) -> ScheduleTerms:
    """A WeGive scheduled donation → Bloomerang ``RecurringDonation`` designation fields."""
    name = f"WeGive scheduled donation {schedule.get('id')}"
    amount = dollars(schedule.get("amount"), scale)
    frequency = bloomerang_frequency(schedule.get("frequency"))
    start = _day(schedule.get("start_date"))
    if amount is None or amount <= 0:
        return ScheduleTerms(reason=f"{name} has no usable amount ({schedule.get('amount')!r})")
    if frequency is None:
        return ScheduleTerms(reason=f"{name}: frequency {schedule.get('frequency')!r} is missing or not one "
                                    "Bloomerang knows; not guessed")
    if start is None:
        return ScheduleTerms(reason=f"{name} has no start_date; not guessed from a payment")
    line: Record = {"Type": "RecurringDonation", "Amount": float(amount), "RecurringDonationStartDate":
                    start.isoformat(), "RecurringDonationFrequency": frequency}
    if frequency == "TwiceMonthly":
        line["RecurringDonationDay1"] = start.day
        line["RecurringDonationDay2"] = (start + timedelta(days=15)).day
    end = _day(schedule.get("ends_at")) or _day(schedule.get("deleted_at"))  # a cancelled schedule ended then:
    if end is not None:                                                     # not "overdue" at every month end
        line["RecurringDonationEndDate"] = end.isoformat()
    return ScheduleTerms(line=line, date=start.isoformat())


def schedule_fund(record: Record) -> Any:
    """The schedule's own fund id (a pledge embeds its fund; a scheduled donation has ``fund_id``)."""
    fund = record.get("fund")
    return record.get("fund_id") or (fund.get("id") if isinstance(fund, dict) else None)
