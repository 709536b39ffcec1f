"""WeGive's own schedules behind the generated payments: pledges and scheduled (recurring) donations.

Why a module of its own: a payment only names its schedule (``pledge_id`` and the embedded ``pledge``;
``scheduled_donation_id`` and the ``scheduled_donation_*`` columns), while the terms a finance team
reconciles against — a pledge's total, installment size and frequency, a schedule's start date, frequency
and amount — live on the schedule record, served by ``/dashboard/pledges`` and
``/dashboard/scheduled-donations``. These functions derive those records from the payments already
generated (no random draw: the world's donors and gifts stay exactly as they were), so every payment's
schedule exists and agrees with it. Records are stored in cents and in the store's own shape; what each
answer shows is ``sandbox/wegive/resources.py``'s decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Record = dict[str, Any]


def pledge_record(pledge: Record, payment: Record) -> Record:
    """The stored pledge a payment embeds (its terms), with the fund and campaign of that payment."""
    return {**{k: v for k, v in pledge.items() if k not in ("donor", "fund", "donations")},
            "fund_id": payment["fund_id"], "campaign_id": payment.get("campaign_id"),
            "created_at": payment["created_at"], "updated_at": payment["created_at"], "deleted_at": None}


def scheduled_donation_record(schedule_id: int, payments: list[Record]) -> Record:
    """The stored schedule of ``payments`` (oldest first): it started on the first payment's day."""
    first = payments[0]
    return {
        "id": schedule_id, "name": "Monthly donation", "donor_id": first["donor_id"], "amount": first["amount"],
        "fee_amount": first.get("fee_amount") or 0, "cover_fees": bool(first.get("cover_fees")),
        "frequency": first.get("frequency") or "monthly", "start_date": str(first["created_at"])[:10],
        "ends_at": None, "status": first.get("scheduled_donation_status") or "active",
        "fund_id": first["fund_id"], "campaign_id": first.get("campaign_id"),
        "payment_method_type": first.get("source_type"), "created_at": first["created_at"],
        "updated_at": first["created_at"], "paused_at": None, "deleted_at": None, "is_test": False,
    }


def wegive_schedules(transactions: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """``(pledges, scheduled_donations)`` of the payments that name one, ordered by id."""
    pledges: dict[int, Record] = {}
    by_schedule: dict[int, list[Record]] = {}
    for txn in sorted(transactions, key=lambda t: (t["created_at"], t["id"])):
        if txn.get("pledge_id") is not None and txn.get("pledge"):
            pledges.setdefault(int(txn["pledge_id"]), pledge_record(txn["pledge"], txn))
        if txn.get("scheduled_donation_id") is not None:
            by_schedule.setdefault(int(txn["scheduled_donation_id"]), []).append(txn)
    schedules = [scheduled_donation_record(sid, payments) for sid, payments in by_schedule.items()]
    return sorted(pledges.values(), key=lambda p: p["id"]), sorted(schedules, key=lambda s: s["id"])
