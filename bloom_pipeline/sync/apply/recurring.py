"""Recurring-donation schedules and pledges that payments need, created before the payments.

Bloomerang links a payment to its schedule by the schedule's *designation* id
(``RecurringDonationPayment.RecurringDonationId``, ``PledgePayment.PledgeId``). WeGive payments carry
``scheduled_donation_id`` / ``pledge``; the mapping writes ``ref:wegive.scheduled_donations:<id>`` and
``ref:wegive.pledges:<id>``. Before transactions are applied, every such reference without a Bloomerang
id gets its schedule created (one ``RecurringDonation`` or ``Pledge`` transaction) from WeGive's own
record of the schedule (``sync/plan/schedules.py``: the real installments, start date and frequency),
recorded in ``sync_state`` under the entity ``schedules`` — so it is created once, and a lost answer is
found again by its correlation value on the designation. A schedule WeGive no longer lists, or whose terms
cannot be read, is not created: its payments are logged skipped in ``sync_log`` with the reason (the log
has no rows of entity ``schedules``), and both are planned again next run.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bloom_pipeline.sync.apply.refs import RefResolver, UnresolvedRefError, parse_ref
from bloom_pipeline.sync.apply.writers import with_custom_value
from bloom_pipeline.sync.plan import schedules

SCHEDULE_KEYS = {"RecurringDonationId": "scheduled_donations", "PledgeId": "pledges"}
SCHEDULE_NAMES = {"scheduled_donations": "scheduled donation", "pledges": "pledge"}
PLAN_COLUMNS = ["source", "source_id", "bloomerang_id", "action", "payload", "diff", "payload_hash", "reason", "ref"]


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


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]


def schedule_plan(transactions_plan: pd.DataFrame, raw_by_id: dict[str, dict[str, Any]], resolver: RefResolver,
                  schedules: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """One row per schedule a planned payment names and Bloomerang lacks: ``create`` with the schedule's
    own terms (``schedules``: entity → WeGive id → record), or ``blocked`` with the reason it cannot be."""
    rows: dict[str, dict[str, Any]] = {}
    for row in transactions_plan[transactions_plan["action"] == "create"].to_dict("records"):
        payload = _payload(row)
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
                if source_id not in rows:
                    raw = raw_by_id.get(str(row["source_id"]), {})
                    body, reason = _schedule_body(entity, parsed[2], schedules.get(entity, {}), payload,
                                                  designation, raw)
                    rows[source_id] = {"source": parsed[0], "source_id": source_id, "bloomerang_id": None,
                                       "action": "blocked" if reason else "create",
                                       "payload": None if reason else json.dumps(body), "diff": None,
                                       "payload_hash": None, "reason": reason, "ref": designation[key]}
    return pd.DataFrame(list(rows.values()), columns=PLAN_COLUMNS)


def _schedule_body(entity: str, key: str, records: dict[str, dict[str, Any]], payload: dict[str, Any],
                   designation: dict[str, Any], raw: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The schedule transaction from WeGive's record of it, or (None, why not)."""
    name = SCHEDULE_NAMES[entity]
    record = records.get(str(key))
    if record is None:
        return None, (f"WeGive lists no {name} {key} (gone, or not readable): its payments are not linked to an "
                      "invented one")
    scale = schedules.amount_scale(raw.get("amount"), payload.get("Amount"))
    if scale is None:
        return None, f"the units of WeGive {name} {key}'s amounts cannot be told from its payment's"
    terms = (schedules.pledge_terms if entity == "pledges" else schedules.recurring_terms)(record, scale)
    if terms.reason:
        return None, terms.reason
    fund = schedules.schedule_fund(record)
    line = {**terms.line, "FundId": f"ref:wegive.funds:{fund}" if fund is not None else designation.get("FundId")}
    for optional in ("CampaignId", "AppealId"):
        if designation.get(optional) is not None:
            line[optional] = designation[optional]
    return {"AccountId": payload["AccountId"], "Date": terms.date, "Amount": line["Amount"], "Method": "None",
            "Designations": [line]}, None


def hold_payments(transactions_plan: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    """Planned payments on a schedule that could not be created wait, blocked with its reason (retried
    next run), rather than failing against an unresolvable reference or being linked to an invented one."""
    held = {r["ref"]: r["reason"] for r in plan.to_dict("records") if r["action"] == "blocked"} if len(plan) else {}
    if not held:
        return transactions_plan
    out = transactions_plan.copy()
    for index, row in out[out["action"] == "create"].iterrows():
        refs = [d.get(k) for d in _payload(row).get("Designations", []) for k in SCHEDULE_KEYS]
        reasons = [held[r] for r in refs if r in held]
        if reasons:
            out.loc[index, "action"] = "blocked"
            out.loc[index, "reason"] = f"payment waits for its schedule: {reasons[0]}"
    return out


def register(resolver: RefResolver, plan: pd.DataFrame, results: list[Any]) -> None:
    """Make each created / known schedule resolvable by the ``ref:`` its payments carry."""
    refs = dict(zip(plan["source_id"], plan["ref"], strict=True)) if len(plan) else {}
    for result in results:
        if result.bloomerang_id is not None and result.source_id in refs:
            source, entity, key = parse_ref(refs[result.source_id])
            resolver.add(source, entity, key, result.bloomerang_id)
