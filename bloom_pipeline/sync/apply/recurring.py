"""Recurring-donation schedules and pledges that payments need, created before the payments.

Bloomerang links a payment to its schedule by the schedule's *designation* id
(``RecurringDonationPayment.RecurringDonationId``, ``PledgePayment.PledgeId``). WeGive payments carry
``scheduled_donation_id`` / ``pledge``; the mapping writes ``ref:wegive.scheduled_donations:<id>`` and
``ref:wegive.pledges:<id>``. Before transactions are applied, every such reference without a Bloomerang
id gets its schedule created (one ``RecurringDonation`` or ``Pledge`` transaction), recorded in
``sync_state`` under the entity ``schedules`` — so it is created once, and a lost answer is found again
by its correlation value on the designation.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bloom_pipeline.sync.apply.refs import RefResolver, UnresolvedRefError, parse_ref
from bloom_pipeline.sync.apply.writers import with_custom_value

FREQUENCIES = {"weekly": "Weekly", "biweekly": "EveryOtherWeekly", "every_other_week": "EveryOtherWeekly",
               "monthly": "Monthly", "bimonthly": "EveryOtherMonthly", "quarterly": "Quarterly",
               "yearly": "Yearly", "annually": "Yearly", "annual": "Yearly"}
SCHEDULE_KEYS = {"RecurringDonationId": "scheduled_donations", "PledgeId": "pledges"}


def _cents(value: Any) -> float | None:
    try:
        return round(int(value) / 100.0, 2)
    except (TypeError, ValueError):
        return None


class ScheduleWriter:
    """Creates the schedule transaction; its ``Id`` is the schedule *designation* id payments need."""

    entity = "schedules"

    def __init__(self, client: Any, field_id: int | None) -> None:
        self.client = client
        self.field_id = field_id

    def create(self, source: str, source_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(json.dumps(payload))
        if self.field_id is not None:
            for designation in body["Designations"]:
                designation["CustomValues"] = with_custom_value(designation.get("CustomValues"), self.field_id,
                                                                f"{source}:{source_id}")
        created = self.client.create_transaction(body)
        return {**created, "Id": created["Designations"][0]["Id"], "TransactionId": created["Id"]}

    def update(self, bloomerang_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        return {"Id": bloomerang_id}

    def find_existing(self, source: str, source_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if self.field_id is None:
            return None
        found = self.client.find_transactions_by_custom_field(self.field_id, f"{source}:{source_id}")
        if not found:
            return None
        return {**found[0], "Id": found[0]["Designations"][0]["Id"], "TransactionId": found[0]["Id"]}


def schedule_plan(transactions_plan: pd.DataFrame, raw_by_id: dict[str, dict[str, Any]],
                  resolver: RefResolver) -> pd.DataFrame:
    """One ``create`` row per schedule/pledge a planned payment names and Bloomerang lacks."""
    rows: dict[str, dict[str, Any]] = {}
    for row in transactions_plan[transactions_plan["action"] == "create"].to_dict("records"):
        payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
        for designation in payload.get("Designations", []):
            for key, entity in SCHEDULE_KEYS.items():
                parsed = parse_ref(designation.get(key))
                if parsed is None:
                    continue
                try:
                    resolver.lookup(designation[key])
                    continue
                except UnresolvedRefError:
                    pass
                source_id = f"{entity}:{parsed[2]}"
                if source_id in rows:
                    continue
                raw = raw_by_id.get(str(row["source_id"]), {})
                body = _schedule_body(entity, payload, designation, raw)
                rows[source_id] = {"source": parsed[0], "source_id": source_id, "bloomerang_id": None,
                                   "action": "create", "payload": json.dumps(body), "diff": None,
                                   "payload_hash": None, "reason": None, "ref": designation[key]}
    return pd.DataFrame(list(rows.values()), columns=["source", "source_id", "bloomerang_id", "action", "payload",
                                                      "diff", "payload_hash", "reason", "ref"])


def _schedule_body(entity: str, payload: dict[str, Any], designation: dict[str, Any],
                   raw: dict[str, Any]) -> dict[str, Any]:
    amount = designation["Amount"]
    base = {"Type": "", "Amount": amount, "FundId": designation.get("FundId")}
    for optional in ("CampaignId", "AppealId"):
        if designation.get(optional) is not None:
            base[optional] = designation[optional]
    if entity == "scheduled_donations":
        amount = _cents(raw.get("scheduled_donation_amount")) or amount
        frequency = FREQUENCIES.get(str(raw.get("frequency", "monthly")).lower(), "Monthly")
        line = {**base, "Type": "RecurringDonation", "Amount": amount,
                "RecurringDonationStartDate": payload["Date"], "RecurringDonationFrequency": frequency}
    else:
        pledge = raw.get("pledge") or {}
        amount = _cents(pledge.get("total_amount")) or amount
        line = {**base, "Type": "Pledge", "Amount": amount, "PledgeFrequency": "Custom",
                "PledgeInstallments": [{"Date": payload["Date"], "Amount": amount}]}
    return {"AccountId": payload["AccountId"], "Date": payload["Date"], "Amount": amount, "Method": "None",
            "Designations": [line]}


def register(resolver: RefResolver, plan: pd.DataFrame, results: list[Any]) -> None:
    """Make each created / known schedule resolvable by the ``ref:`` its payments carry."""
    refs = dict(zip(plan["source_id"], plan["ref"], strict=True)) if len(plan) else {}
    for result in results:
        if result.bloomerang_id is not None and result.source_id in refs:
            source, entity, key = parse_ref(refs[result.source_id])
            resolver.add(source, entity, key, result.bloomerang_id)
