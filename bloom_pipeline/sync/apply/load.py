"""Plan and apply the push into Bloomerang, in dependency order: funds → constituents → transactions.

The plan is computed from the staged tables, ``sync_state`` and the staged Bloomerang snapshot — no
API call per record — and stored in ``push_plan`` so a run applies exactly what it planned (and a dry
run shows exactly that). Linked donors are not planned here: they go through the three-way merge
(``linked.py``), which handles both directions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.store import StagingStore, transaction
from bloom_pipeline.sync import linked, planning, schedules
from bloom_pipeline.sync.apply import RecordResult, apply_plan, summarise
from bloom_pipeline.sync.canonical import names_by_id, snapshot_frame
from bloom_pipeline.sync.echo import CANONICAL_FIELDS
from bloom_pipeline.sync.extract import Extracted, stored_records
from bloom_pipeline.sync.journal import Journal
from bloom_pipeline.sync.ledger import StoreLedger
from bloom_pipeline.sync.plan import PLAN_COLUMNS
from bloom_pipeline.sync.refs import RefResolver
from bloom_pipeline.sync.stage import EntityGate, staged_frame
from bloom_pipeline.sync.writers import ConstituentWriter, FundWriter, TransactionWriter

log = logging.getLogger("bloom_pipeline.sync.push")

PLAN_DDL = """
CREATE TABLE IF NOT EXISTS push_plan (
    run_id VARCHAR NOT NULL, entity VARCHAR NOT NULL, source VARCHAR NOT NULL, source_id VARCHAR NOT NULL,
    bloomerang_id BIGINT, action VARCHAR NOT NULL, diff JSON, payload JSON, payload_hash VARCHAR, reason VARCHAR,
    create_key VARCHAR, target_ref VARCHAR, link BOOLEAN, planned_at TIMESTAMPTZ NOT NULL
)"""


def writers(clients: Any, field_ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        "funds": FundWriter(clients.bloomerang),
        "constituents": ConstituentWriter(clients.bloomerang, field_ids.get("constituent", {})),
        "transactions": TransactionWriter(clients.bloomerang, field_ids.get("transaction", {})),
    }


def ledger(con: duckdb.DuckDBPyConnection, run_id: str, journal: Journal) -> StoreLedger:
    return StoreLedger(con, run_id, journal)


def _policies(org: OrgConfig) -> dict[str, str]:
    return {name: rule.policy for name, rule in linked.field_rules(org).items()}


def _linked_mask(staged: pd.DataFrame, states: pd.DataFrame) -> pd.Series:
    """Staged donors already linked with a stored snapshot (they go through the merge instead)."""
    if staged.empty or states.empty:
        return pd.Series(False, index=staged.index)
    done = states.dropna(subset=["bloomerang_id"])
    done = done[done["source_snapshot"].notna()]
    keys = set(zip(done["source"], done["source_id"].astype(str), strict=True))
    return pd.Series([(s, str(i)) in keys for s, i in zip(staged["source"], staged["source_id"], strict=True)],
                     index=staged.index)


def _blocked_donor_refs(store: StagingStore, states: pd.DataFrame) -> dict[str, str]:
    """``ref:`` of every quarantined donor / contact never linked: its gifts wait, with the reason."""
    rows = store.read_frame(
        "SELECT source, entity, source_id, any_value(reasons ORDER BY quarantined_at DESC) AS reasons "
        "FROM quarantine WHERE entity IN ('donors', 'contacts') AND kind = 'invalid' GROUP BY ALL"
    )
    linked_keys = set(zip(states["source"], states["source_id"].astype(str), strict=True)) if len(states) else set()
    return {
        f"ref:{r['source']}.{r['entity']}:{r['source_id']}": f"blocked: its donor is quarantined ({_reasons(r)})"
        for r in rows.to_dict("records") if (r["source"], str(r["source_id"])) not in linked_keys
    }


def _reasons(row: dict[str, Any]) -> str:
    reasons = row.get("reasons")
    if isinstance(reasons, str):
        try:
            reasons = json.loads(reasons)
        except ValueError:
            return reasons
    return "; ".join(map(str, reasons or [])) or "invalid record"


def plan_run(org: OrgConfig, store: StagingStore, run_id: str, field_ids: dict[str, dict[str, int]],
             gates: dict[str, EntityGate]) -> pd.DataFrame:
    """Every staged record of the run → create / update / unchanged / blocked / skipped, stored."""
    with store.connect() as con:
        states = {e: ledgers.states_frame(con, e) for e in ("funds", "constituents", "transactions")}
    snapshot = snapshot_frame(stored_records(store, "bloomerang", "constituents"), field_ids.get("constituent", {}))
    bloom_funds = stored_records(store, "bloomerang", "funds")
    frames = [planning.plan_funds(staged_frame(store, "funds", run_id), states["funds"], bloom_funds)]
    people = staged_frame(store, "constituents", run_id)
    unlinked = people[~_linked_mask(people, states["constituents"])]
    links = states["constituents"].dropna(subset=["bloomerang_id"])[["source", "source_id", "bloomerang_id"]]
    resolved = planning.resolve_constituents(unlinked, snapshot, links)
    frames.append(planning.plan_constituents(unlinked, resolved, states["constituents"], snapshot,
                                             policies=_policies(org)))
    frames.append(planning.plan_transactions(staged_frame(store, "transactions", run_id), states["transactions"],
                                             blocked_refs=_blocked_donor_refs(store, states["constituents"])))
    plan = pd.concat([f.reindex(columns=list(PLAN_COLUMNS)) for f in frames], ignore_index=True)
    for entity, gate in gates.items():
        if not gate.passed:
            blocked = plan["entity"] == entity
            plan.loc[blocked & plan["action"].isin(["create", "update"]), "reason"] = gate.blocked_reason
            plan.loc[blocked & plan["action"].isin(["create", "update"]), "action"] = "blocked"
    with store.write() as con:
        con.execute(PLAN_DDL)
        con.execute("DELETE FROM push_plan WHERE run_id = ?", [run_id])
        frame = plan.assign(run_id=run_id, planned_at=datetime.now(UTC))
        for column in ("diff", "payload"):
            frame[column] = [v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                             for v in frame[column]]
        con.register("plan_frame", frame)
        con.execute("INSERT INTO push_plan BY NAME SELECT * FROM plan_frame")
        con.unregister("plan_frame")
    return plan


@dataclass
class PushOutcome:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: int = 0
    review_items: int = 0
    results: list[RecordResult] = field(default_factory=list)


def _named_creator(clients: Any):
    create = {"funds": clients.bloomerang.create_fund, "campaigns": clients.bloomerang.create_campaign,
              "appeals": clients.bloomerang.create_appeal}

    def on_missing(entity: str, name: str) -> int | None:
        if entity not in create:
            return None
        log.info("creating Bloomerang %s %r named in the org YAML", entity[:-1], name)
        return int(create[entity]({"Name": name, "IsActive": True})["Id"])

    return on_missing


def _resolver(store: StagingStore, clients: Any) -> RefResolver:
    resolver = RefResolver(on_missing_name=_named_creator(clients))
    for entity in ("funds", "campaigns", "appeals"):
        resolver.add_names(entity, names_by_id(stored_records(store, "bloomerang", entity)))
    return resolver


def _link_states(con: duckdb.DuckDBPyConnection, resolver: RefResolver) -> None:
    """Every linked record's Bloomerang id becomes resolvable as ``ref:<source>.<entity>:<id>``."""
    aliases = {"constituents": {"wegive": "donors", "handbid": "contacts"}, "funds": {"wegive": "funds"}}
    for entity, by_source in aliases.items():
        states = ledgers.states_frame(con, entity).dropna(subset=["bloomerang_id"])
        for source, source_id, bloomerang_id in states[["source", "source_id", "bloomerang_id"]].itertuples(
                index=False):
            if source in by_source:
                resolver.add(source, by_source[source], source_id, int(bloomerang_id))


def _canonical_by_id(snapshot: pd.DataFrame) -> dict[int, dict[str, Any]]:
    rows = snapshot[["bloomerang_id", *CANONICAL_FIELDS]].astype(object).where(snapshot.notna(), None)
    return {int(r.pop("bloomerang_id")): r for r in rows.to_dict("records")}


def apply_run(org: OrgConfig, store: StagingStore, clients: Any, run_id: str, plan: pd.DataFrame,
              field_ids: dict[str, dict[str, int]], extracted: Extracted, *, direction: str) -> PushOutcome:
    outcome = PushOutcome()
    resolver = _resolver(store, clients)
    write = writers(clients, field_ids)
    snapshot = snapshot_frame(stored_records(store, "bloomerang", "constituents"), field_ids.get("constituent", {}))
    people = staged_frame(store, "constituents", run_id)

    def remember(result: RecordResult, written: dict[str, Any]) -> None:
        resolver.add(result.source, planning.ref_entity(result.entity, result.source), result.source_id,
                     int(result.bloomerang_id))

    pushing = direction in ("push", "both")
    journal = Journal.beside(store.path)
    with store.connect() as con:
        book = StoreLedger(con, run_id, journal, snapshots=planning.canonical_snapshots(people),
                           bloomerang_current=_canonical_by_id(snapshot), field_ids=field_ids.get("constituent", {}))
        _link_states(con, resolver)
        for entity in ("funds", "constituents"):
            if pushing:
                rows = planning.leaders_first(plan[plan["entity"] == entity])
                outcome.results += apply_plan(rows, write[entity], resolver, book, on_written=remember)
        book.flush()
        _write_back_correlation(clients, con, extracted)
        touched = set(zip(plan.loc[plan["entity"] == "constituents", "source"],
                          plan.loc[plan["entity"] == "constituents", "source_id"].astype(str), strict=True))
        merged = _reconcile(org, store, con, clients, run_id, field_ids, direction, skip=touched)
        _log_untouched(con, run_id, people)
        outcome.conflicts, outcome.review_items = len(merged.conflicts), len(merged.review_ids)
        if pushing:
            rows = plan[plan["entity"] == "transactions"]
            _ensure_schedules(clients, con, run_id, rows, extracted, resolver, field_ids, journal)
            outcome.results += apply_plan(rows, write["transactions"], resolver, book)
        book.flush()
    journal.close()
    outcome.counts = summarise(outcome.results)
    if merged.pushed or merged.pulled or merged.failed:
        counts = outcome.counts.setdefault("constituents", {})
        counts["merged_push"] = merged.pushed
        counts["merged_pull"] = merged.pulled
        counts["failed"] = counts.get("failed", 0) + merged.failed
    return outcome


def _ensure_schedules(clients: Any, con: duckdb.DuckDBPyConnection, run_id: str, rows: pd.DataFrame,
                      extracted: Extracted, resolver: RefResolver, field_ids: dict[str, dict[str, int]],
                      journal: Journal) -> None:
    """Recurring schedules and pledges the planned payments reference, created once, before them."""
    known = ledgers.states_frame(con, "schedules").dropna(subset=["bloomerang_id"])
    for source, source_id, bloomerang_id in known[["source", "source_id", "bloomerang_id"]].itertuples(index=False):
        entity, _, key = str(source_id).partition(":")
        resolver.add(source, entity, key, int(bloomerang_id))
    raw = {str(r["id"]): r for r in extracted.records.get("wegive.transactions", [])}
    plan = schedules.schedule_plan(rows, raw, resolver)
    if plan.empty:
        return
    writer = schedules.ScheduleWriter(clients.bloomerang, field_ids.get("transaction", {}).get("wegive"))
    book = StoreLedger(con, run_id, journal)
    results = apply_plan(plan, writer, resolver, book)
    book.flush()
    schedules.register(resolver, plan, results)


def _write_back_correlation(clients: Any, con: duckdb.DuckDBPyConnection, extracted: Extracted) -> None:
    """WeGive keeps the Bloomerang id on donors and funds (``bloomerang_id``): write it where it differs."""
    for entity, records, update in (
        ("constituents", extracted.records.get("wegive.donors", []), clients.wegive.update_donor),
        ("funds", extracted.records.get("wegive.funds", []), clients.wegive.update_fund),
    ):
        current = {str(r["id"]): r.get("bloomerang_id") for r in records}
        states = ledgers.states_frame(con, entity, "wegive").dropna(subset=["bloomerang_id"])
        for source_id, bloomerang_id in states[["source_id", "bloomerang_id"]].itertuples(index=False):
            if source_id in current and str(current[source_id] or "") != str(int(bloomerang_id)):
                try:
                    update(int(source_id), {"bloomerang_id": int(bloomerang_id)})
                except Exception as exc:  # noqa: BLE001 - a failed write-back is retried next run
                    log.warning("could not write bloomerang_id back to WeGive %s %s: %s", entity, source_id, exc)


def _log_untouched(con: duckdb.DuckDBPyConnection, run_id: str, people: pd.DataFrame) -> None:
    """Every staged donor of the run gets its sync_log row: linked ones the merge found unchanged too.

    A pull-only run plans creates and updates but may not push them: those donors are logged as skipped
    with that reason (a later push or both run applies them), never as unchanged.
    """
    logged = {(s, str(i)) for s, i in con.execute(
        "SELECT source, source_id FROM sync_log WHERE run_id = ? AND entity = 'constituents'", [run_id]).fetchall()}
    found = con.execute("SELECT direction FROM sync_runs WHERE run_id = ?", [run_id]).fetchone()
    pending: dict[tuple[str, str], str] = {}
    if found is not None and found[0] == "pull":
        pending = {(s, str(i)): a for s, i, a in con.execute(
            "SELECT source, source_id, action FROM push_plan WHERE run_id = ? AND entity = 'constituents' "
            "AND action IN ('create', 'update')", [run_id]).fetchall()}
    states = ledgers.states_frame(con, "constituents").dropna(subset=["bloomerang_id"])
    ids = {(s, str(i)): int(b) for s, i, b in states[["source", "source_id", "bloomerang_id"]].itertuples(index=False)}

    def entry(key: tuple[str, str]) -> ledgers.LogEntry:
        if key in pending:
            action, error = "skipped", f"pull-only run: the planned {pending[key]} is left for a push run"
        elif key in ids:
            action, error = "unchanged", None
        else:
            action, error = "skipped", "not linked and not planned"
        return ledgers.LogEntry(entity="constituents", source=key[0], source_id=key[1], bloomerang_id=ids.get(key),
                                action=action, error=error)

    keys = zip(people["source"], people["source_id"].astype(str), strict=True)
    entries = [entry((s, i)) for s, i in keys if (s, i) not in logged]
    with transaction(con):
        ledgers.append_log(con, run_id, entries)


def _reconcile(org: OrgConfig, store: StagingStore, con: duckdb.DuckDBPyConnection, clients: Any, run_id: str,
               field_ids: dict[str, dict[str, int]], direction: str,
               skip: set[tuple[str, str]]) -> linked.LinkedOutcome:
    snapshot = snapshot_frame(stored_records(store, "bloomerang", "constituents"), field_ids.get("constituent", {}))
    staged = con.execute("SELECT * FROM stg_constituents").df()
    states = ledgers.states_frame(con, "constituents")
    frame = linked.merge_input(states, staged, snapshot)
    if len(frame) and skip:
        keys = pd.Series(list(zip(frame["source"], frame["source_id"].astype(str), strict=True)), index=frame.index)
        frame = frame[~keys.isin(skip)]
    decisions_frame = review.resolved_decisions(con, "constituents")
    decisions: dict[tuple[str, str], dict[str, Any]] = {}
    for row in decisions_frame.to_dict("records"):
        take = row["decision"] if row["decision"] != "value" else ("value", json.loads(row["decided_value"]))
        decisions.setdefault((row["source"], str(row["source_id"])), {})[row["field"]] = take
    return linked.reconcile_linked(org, con, clients, run_id, frame, direction=direction, decisions=decisions,
                                   review_rows=decisions_frame)
