"""Gift lines: one row per gift and fund, read the same way from each of the three systems.

Why lines and not gifts: a WeGive gift can be split over several funds (``fund_allocations``) and Bloomerang
holds one designation per fund, so per-fund totals need the amount of each split. Every system is reduced to
the same columns (``LINE_COLUMNS``) so totals and attribution never need to know where a line came from:

* ``source`` / ``source_id`` — the gift's identity (the WeGive transaction id, the Handbid payment id); in
  Bloomerang, the correlation custom value on the designation (what ``sync/identity/by_reference.py`` matches).
* ``day`` — the gift's calendar day in the org's time zone (the day Bloomerang's ``Date`` holds).
* ``fund_key`` — one key per Bloomerang fund (``b:<id>``) when the fund is known there, else a key of the
  source fund, so a fund not yet created still has a row.
* ``cents`` — integer cents (no float sums in money); None when the source amount cannot be read (such a
  gift is quarantined, and attribution says so).
* ``refunded`` — the whole gift was refunded (WeGive ``Refunded``, Handbid ``refunded``, Bloomerang
  ``IsRefunded``): its amount counts in the gift total *and* in the refund column of its own day and fund.

Amounts are read from the records as the source wrote them (cents), not from the mapping's output, so a
mapping that converts wrongly shows as a source/staged difference instead of agreeing with itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from bloom_pipeline.mapping.transforms import Context, epoch_to_date, to_date
from bloom_pipeline.staging.writes import record_key

LINE_COLUMNS = ("source", "source_id", "day", "fund_key", "cents", "refunded", "bloomerang_id")

# Completed gifts per source: the statuses the default mappings stage (the others are excluded by rule).
WEGIVE_GIFTS = frozenset({"Success", "Refunded", "Disputed"})
HANDBID_GIFTS = frozenset({"succeeded", "refunded"})
REFUNDED = frozenset({"Refunded", "refunded"})
# Bloomerang designations that are money received; a Pledge / RecurringDonation designation is a schedule.
MONEY_TYPES = frozenset({"Donation", "PledgePayment", "RecurringDonationPayment"})

_DIGITS = re.compile(r"^-?\d+$")


def empty_lines() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LINE_COLUMNS})


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(LINE_COLUMNS)) if rows else empty_lines()


def source_cents(value: Any) -> int | None:
    """Cents as a source wrote them (a whole number, or digits as text); None for anything else (``true``,
    a fraction of a cent, garbage) — the mapping quarantines such a gift, so it is never guessed here."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def dollars_to_cents(value: Any) -> int | None:
    """Dollars (Bloomerang, the staged payload) → integer cents, rounded to the cent."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return round(float(value) * 100)
    except (TypeError, ValueError):
        return None


def as_day(value: Any) -> date | None:
    """A calendar day from a date, a timestamp or ISO text; None for anything else (NULL, NaT, garbage)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def _days(values: list[Any], reader: Callable[..., Any], timezone: str) -> list[date | None]:
    """Local calendar days through the mapping's own transform (``to_date`` / ``epoch_to_date``), so the day
    a gift is reconciled under is the day the sync gave it."""
    if not values:
        return []
    out, _ = reader(pd.Series(values, dtype=object), Context(timezone=timezone))
    return [date.fromisoformat(v) if isinstance(v, str) else None for v in out]


@dataclass
class Funds:
    """Resolves a fund as each system names it to one ``fund_key`` and a name to show.

    ``bloomerang``: ``{id: name}`` of Bloomerang's funds; ``wegive_links``: WeGive fund id → the Bloomerang
    fund id the sync linked (``sync_state``); ``wegive_names``: WeGive fund id → its name.
    """

    bloomerang: Mapping[int, str] = field(default_factory=dict)
    wegive_links: Mapping[str, int] = field(default_factory=dict)
    wegive_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name = {name.strip().casefold(): fid for fid, name in sorted(self.bloomerang.items())}

    def by_id(self, value: Any) -> str:
        return f"b:{int(value)}"

    def by_name(self, name: Any) -> str:
        text = str(name).strip()
        found = self._by_name.get(text.casefold())
        return self.by_id(found) if found is not None else f"name:{text}"

    def by_wegive(self, fund_id: Any) -> str:
        key = str(fund_id)
        if key in self.wegive_links:
            return self.by_id(self.wegive_links[key])
        if key in self.wegive_names:
            return self.by_name(self.wegive_names[key])
        return f"wegive:{key}"

    def by_setting(self, value: Any) -> str:
        """An org YAML fund (an int id or a name), as Handbid's event settings give it."""
        if value is None:
            return "unknown"
        if isinstance(value, int) and not isinstance(value, bool):
            return self.by_id(value)
        return self.by_name(value)

    def by_ref(self, ref: Any) -> str:
        """A staged ``FundId``: ``ref:wegive.funds:1``, ``ref:bloomerang.funds:name=General Fund``, or an id."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self.by_id(ref)
        text = str(ref or "")
        if text.isdigit():
            return self.by_id(text)
        if text.startswith("ref:wegive.funds:"):
            return self.by_wegive(text.rsplit(":", 1)[-1])
        if text.startswith("ref:bloomerang.funds:"):
            key = text[len("ref:bloomerang.funds:"):]
            return self.by_name(key[len("name="):]) if key.startswith("name=") else self.by_id(key)
        return f"name:{text}" if text else "unknown"

    def label(self, key: str) -> str:
        kind, _, value = key.partition(":")
        if kind == "b" and value.isdigit():
            return self.bloomerang.get(int(value), f"Bloomerang fund {value}")
        if kind == "wegive":
            return self.wegive_names.get(value, f"WeGive fund {value}")
        return value or key

    def bloomerang_id(self, key: str) -> int | None:
        kind, _, value = key.partition(":")
        return int(value) if kind == "b" and value.isdigit() else None


def wegive_lines(records: Iterable[Mapping[str, Any]], funds: Funds, timezone: str) -> pd.DataFrame:
    """Completed WeGive gifts, one line per fund allocation (the gift's ``amount`` / ``fund`` when it has none)."""
    rows: list[dict[str, Any]] = []
    stamps: list[Any] = []
    for record in records:
        if record.get("status") not in WEGIVE_GIFTS:
            continue
        allocations = record.get("fund_allocations") or [{"amount": record.get("amount"),
                                                          "fund": record.get("fund")}]
        for allocation in allocations:
            fund = (allocation or {}).get("fund") or {}
            fund_id = fund.get("id") if isinstance(fund, Mapping) else None
            rows.append({"source": "wegive", "source_id": record_key(record),
                         "fund_key": "unknown" if fund_id is None else funds.by_wegive(fund_id),
                         "cents": source_cents((allocation or {}).get("amount")),
                         "refunded": record.get("status") in REFUNDED, "bloomerang_id": None})
            stamps.append(record.get("created_at"))
    for row, day in zip(rows, _days(stamps, to_date, timezone), strict=True):
        row["day"] = day
    return _frame(rows)


def handbid_lines(records: Iterable[Mapping[str, Any]], funds: Funds, timezone: str,
                  fund_of: Callable[[Any, Any], Any], auction_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Completed Handbid payments, one line each; the fund is the org YAML's setting for the payment's event
    (``fund_of(auction_id, auction_name)``, i.e. ``OrgConfig.event_choice``), as the mapping chooses it."""
    rows: list[dict[str, Any]] = []
    stamps: list[Any] = []
    for record in records:
        if record.get("status") not in HANDBID_GIFTS:
            continue
        auction = record.get("auctionId")
        name = record.get("auctionName") or (auction_names or {}).get(str(auction))
        rows.append({"source": "handbid", "source_id": record_key(record),
                     "fund_key": funds.by_setting(fund_of(auction, name)),
                     "cents": source_cents(record.get("amount")),
                     "refunded": record.get("status") in REFUNDED, "bloomerang_id": None})
        stamps.append(record.get("dateInserted"))
    for row, day in zip(rows, _days(stamps, epoch_to_date, timezone), strict=True):
        row["day"] = day
    return _frame(rows)


def staged_lines(staged: pd.DataFrame, funds: Funds) -> pd.DataFrame:
    """``stg_transactions`` rows (source, source_id, date, is_refunded, payload): one line per designation."""
    rows: list[dict[str, Any]] = []
    for row in staged.to_dict("records"):
        payload = row.get("payload")
        payload = json.loads(payload) if isinstance(payload, str) else (payload or {})
        designations = payload.get("Designations") or [{"Amount": payload.get("Amount"), "FundId": None}]
        day = as_day(row.get("date"))
        for designation in designations:
            rows.append({"source": str(row["source"]), "source_id": str(row["source_id"]), "day": day,
                         "fund_key": funds.by_ref(designation.get("FundId")),
                         "cents": dollars_to_cents(designation.get("Amount")),
                         "refunded": bool(row.get("is_refunded")), "bloomerang_id": None})
    return _frame(rows)


def _custom_value(values: Any, field_id: int | None) -> str | None:
    if field_id is None or not isinstance(values, list):
        return None
    for value in values:
        if isinstance(value, Mapping) and value.get("FieldId") == field_id:
            inner = value.get("Value")
            if isinstance(inner, Mapping):
                inner = inner.get("Value")
            return None if inner is None else str(inner)
    return None


def bloomerang_lines(transactions: Iterable[Mapping[str, Any]], field_ids: Mapping[str, int],
                     funds: Funds) -> pd.DataFrame:
    """Bloomerang transactions (read shape) → one line per money designation carrying a correlation value.

    Transactions without our correlation values (entered by staff, another integration) are not the sync's
    and are left out; so are schedule designations (Pledge, RecurringDonation: a promise, not money) and
    correlation values that name a schedule (``wegive:scheduled_donations:7003``) rather than a gift.
    """
    rows: list[dict[str, Any]] = []
    for record in transactions:
        if record.get("Id") is None:
            continue
        parsed = as_day(record.get("Date"))
        refunded = record.get("IsRefunded") in ("Yes", True)
        for designation in record.get("Designations") or []:
            if (designation or {}).get("Type") not in MONEY_TYPES:
                continue
            for source in ("wegive", "handbid"):
                value = _custom_value(designation.get("CustomValues"), field_ids.get(source))
                if value is None or ":" in value:
                    continue
                fund = designation.get("Fund") or {}
                fund_id = fund.get("Id") if isinstance(fund, Mapping) else None
                rows.append({"source": source, "source_id": value, "day": parsed,
                             "fund_key": "unknown" if fund_id is None else funds.by_id(fund_id),
                             "cents": dollars_to_cents(designation.get("Amount")), "refunded": refunded,
                             "bloomerang_id": int(record["Id"])})
                break
    return _frame(rows)
