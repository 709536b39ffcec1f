"""Map extracted records with the org's YAML, stage them, quarantine rejects, validate the tables.

Every extracted record ends in exactly one place: a staged row (``stg_*``) or a quarantine row with
its reasons and the raw record. Then the pandera models check each staged table as a whole, and the
org's reject threshold decides whether the load may run at all (a gate, not a warning).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.schemas import validate_staged
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ddl import WINDOW_COLUMN
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync.extract.records import Extracted

# source.entity extracted -> staged entity, in load order
STAGED_FROM: tuple[tuple[str, str], ...] = (
    ("wegive.funds", "funds"),
    ("wegive.donors", "constituents"),
    ("handbid.contacts", "constituents"),
    ("wegive.transactions", "transactions"),
    ("handbid.payments", "transactions"),
)
FULL_SCANS = frozenset({"wegive.donors", "wegive.funds"})


@dataclass
class EntityGate:
    """The validation verdict of one staged entity in one run."""

    entity: str
    staged: int = 0
    rejected: int = 0
    excluded: int = 0
    extracted: int = 0
    schema_ok: bool = True
    failure_cases: pd.DataFrame | None = None
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    blocked_reason: str | None = None

    @property
    def reject_share(self) -> float:
        considered = self.extracted - self.excluded
        return self.rejected / considered if considered > 0 else 0.0

    @property
    def passed(self) -> bool:
        return self.blocked_reason is None


def enrich_payments(payments: list[dict[str, Any]], receipts: list[dict[str, Any]],
                    auctions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add what a Handbid payment's Bloomerang transaction needs from its receipt and its event:
    the event name, the receipt's item names, and whether the receipt was emailed."""
    by_receipt = {r.get("id"): r for r in receipts}
    by_auction = {a.get("id"): a for a in auctions}
    enriched = []
    for payment in payments:
        receipt = by_receipt.get(payment.get("receiptId"), {})
        auction = by_auction.get(payment.get("auctionId"), {})
        items = [str(li.get("name") or (li.get("item") or {}).get("name") or "") for li in receipt.get("lineItems", [])]
        enriched.append({
            **payment,
            "auctionName": auction.get("name"),
            "auctionStatus": auction.get("status"),
            "itemNames": [name for name in items if name],
            "receiptEmailed": bool(receipt.get("emailed") or receipt.get("emailedAt")),
        })
    return enriched


def _staging_scope(key: str, mapped: pd.DataFrame, records: list[dict[str, Any]],
                   window: Window | None) -> tuple[Any, pd.DataFrame]:
    """Which staged rows this extract replaces, and the frame to write.

    A backfill window covers WeGive transactions by *created day (UTC)* — the extract's filter — which is
    not the staged ``date`` (the gift's day in the org time zone), so each row carries its created day as
    the window date. Handbid payments are not read by window: they are upserted as in any run.
    """
    if key in FULL_SCANS:
        return "all", mapped
    if window is None or key != "wegive.transactions":
        return None, mapped
    created = {str(r.get("id")): (str(r.get("created_at") or "")[:10] or None) for r in records}
    return window, mapped.assign(**{WINDOW_COLUMN: mapped["source_id"].astype(str).map(created)})


def _rejected_rows(rejected: pd.DataFrame, source: str, entity: str) -> pd.DataFrame:
    rows = rejected.copy()
    rows["source"] = source
    rows["entity"] = entity
    if "kind" not in rows:
        rows["kind"] = "invalid"
    return rows


def stage_all(org: OrgConfig, store: StagingStore, run_id: str, extracted: Extracted,
              window: Window | None = None) -> dict[str, EntityGate]:
    """Map every extracted source entity, write ``stg_*`` and ``quarantine``; returns per-entity gates."""
    gates = {entity: EntityGate(entity) for _, entity in STAGED_FROM}
    records = dict(extracted.records)
    if "handbid.payments" in records:
        records["handbid.payments"] = enrich_payments(
            records["handbid.payments"], records.get("handbid.receipts", []), records.get("handbid.auctions", [])
        )
    for key, entity in STAGED_FROM:
        if key not in records:
            continue
        source, source_entity = key.split(".")
        result = map_frame(org, key, records[key])
        gate = gates[entity]
        gate.extracted += len(records[key])
        scope, mapped = _staging_scope(key, result.mapped, records[key], window)
        store.write_staged(entity, mapped, source=source, run_id=run_id, window=scope)
        gate.staged += len(result.mapped)
        if len(result.rejected):
            rows = _rejected_rows(result.rejected, source, source_entity)
            store.write_quarantine(rows, run_id=run_id)
            kinds = rows["kind"].fillna("invalid")
            gate.excluded += int((kinds == "excluded").sum())
            gate.rejected += int((kinds != "excluded").sum())
            reasons = Counter(str(e) for errs in rows.loc[kinds != "excluded", "errors"] for e in _as_list(errs))
            gate.top_reasons = (Counter(dict(gate.top_reasons)) + reasons).most_common(5)
            with store.write() as con:
                ledgers.append_log(con, run_id, [
                    ledgers.LogEntry(entity=entity, source=source, source_id=str(r["source_id"]), action="quarantined",
                                     error="; ".join(_as_list(r["errors"])))
                    for r in rows.to_dict("records")
                ])
    return gates


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    return [str(v) for v in (value if value is not None else [])]


def staged_frame(store: StagingStore, entity: str, run_id: str | None = None) -> pd.DataFrame:
    """This run's staged rows of an entity (all rows when ``run_id`` is None)."""
    table = {"constituents": "stg_constituents", "transactions": "stg_transactions", "funds": "stg_funds"}[entity]
    if run_id is None:
        frame = store.read_frame(f"SELECT * FROM {table}")  # table from a fixed map
    else:
        frame = store.read_frame(f"SELECT * FROM {table} WHERE run_id = ?", [run_id])
    if entity == "transactions" and len(frame):
        # DuckDB hands DATE / DECIMAL back as timestamps / Decimals; the canonical frame has ISO text / floats
        frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
        frame["amount"] = frame["amount"].astype(float)
    return frame


SOURCE_ENTITIES = {"wegive": "wegive.donors", "handbid": "handbid.contacts"}


def sourced_values(org: OrgConfig, people: pd.DataFrame) -> pd.DataFrame:
    """Staged donors with every placeholder (a rule default standing in for a missing value: FNU, LNU, the
    default country) blanked: what the source really has. Creates still send the placeholders (they are
    in the payload); identity, update diffs and the merge see only real values, so a default never
    overwrites what a person typed in Bloomerang and never counts as a change."""
    if people.empty:
        return people
    people = people.copy()
    for source, name in SOURCE_ENTITIES.items():
        rows = people["source"] == source
        for column, placeholder in org.placeholders(name).items():
            if column in people and rows.any():
                filled = rows & (people[column].astype(object) == placeholder)
                people.loc[filled, column] = None
    return people


def validate_gates(org: OrgConfig, store: StagingStore, run_id: str, gates: dict[str, EntityGate]) -> None:
    """pandera over each staged table of the run, then the org's reject threshold; fills the gates."""
    limit = org.thresholds.max_reject_share
    for entity, gate in gates.items():
        report = validate_staged(entity, staged_frame(store, entity, run_id))
        gate.schema_ok = bool(report.ok)
        gate.failure_cases = getattr(report, "failure_cases", None)
        if not report.ok:
            gate.blocked_reason = f"stg_{entity} failed schema validation ({_describe(report)})"
        elif gate.reject_share > limit:
            gate.blocked_reason = (
                f"{gate.rejected} of {gate.extracted - gate.excluded} {entity} records were rejected "
                f"({gate.reject_share:.1%}), over the org's limit of {limit:.1%}"
            )


def _describe(report: Any) -> str:
    reasons = getattr(report, "top_reasons", None) or []
    return "; ".join(f"{reason} ×{count}" for reason, count in list(reasons)[:3]) or "see failure cases"
