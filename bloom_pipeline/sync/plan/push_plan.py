"""The run's push plan for every entity, computed from the staged tables and stored in ``push_plan``.

The plan is computed from the staged tables, ``sync_state`` and the run's Bloomerang snapshot — no API
call per record — and stored so a run applies exactly what it planned (and a dry run shows exactly
that). Linked donors are not planned here: they go through the three-way merge (``sync.merge``),
which handles both directions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.extract.records import stored_records
from bloom_pipeline.sync.identity.constituents import gift_accounts
from bloom_pipeline.sync.merge.linked import field_rules
from bloom_pipeline.sync.plan import entities, named
from bloom_pipeline.sync.plan.records import PLAN_COLUMNS
from bloom_pipeline.sync.stage import EntityGate, sourced_values, staged_frame

PLAN_DDL = """
CREATE TABLE IF NOT EXISTS push_plan (
    run_id VARCHAR NOT NULL, entity VARCHAR NOT NULL, source VARCHAR NOT NULL, source_id VARCHAR NOT NULL,
    bloomerang_id BIGINT, action VARCHAR NOT NULL, diff JSON, payload JSON, payload_hash VARCHAR, reason VARCHAR,
    create_key VARCHAR, target_ref VARCHAR, link BOOLEAN, planned_at TIMESTAMPTZ NOT NULL
)"""


def _policies(org: OrgConfig) -> dict[str, str]:
    return {name: rule.policy for name, rule in field_rules(org).items()}


def linked_mask(staged: pd.DataFrame, states: pd.DataFrame) -> pd.Series:
    """Staged donors already linked with a stored snapshot (they go through the merge instead)."""
    if staged.empty or states.empty:
        return pd.Series(False, index=staged.index)
    done = states.dropna(subset=["bloomerang_id"])
    done = done[done["source_snapshot"].notna()]
    keys = set(zip(done["source"], done["source_id"].astype(str), strict=True))
    return pd.Series([(s, str(i)) in keys for s, i in zip(staged["source"], staged["source_id"], strict=True)],
                     index=staged.index)


def unlinked_people(store: StagingStore, run_id: str) -> pd.DataFrame:
    """The run's staged donors and contacts that ``linked_mask`` leaves to the push plan (no link with a stored
    snapshot: new, or linked by an earlier plan but never merged), in the staged table's order, read in DuckDB
    instead of every staged donor read and then set aside (a quiet night plans none of the linked ones)."""
    return store.read_frame(
        "SELECT s.* FROM stg_constituents s WHERE s.run_id = ? AND NOT EXISTS (SELECT 1 FROM sync_state t "
        "WHERE t.entity = 'constituents' AND t.source = s.source AND t.source_id = s.source_id "
        "AND t.bloomerang_id IS NOT NULL AND t.source_snapshot IS NOT NULL) ORDER BY s.rowid", [run_id])


def _blocked_donor_refs(store: StagingStore, states: pd.DataFrame) -> dict[str, str]:
    """``ref:`` of every quarantined donor / contact never linked: its gifts wait, with the reason (``states``: the
    ``source``, ``source_id`` of every constituent pair in ``sync_state``)."""
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


def missing_named(ctx: RunContext, gifts: pd.DataFrame, states: pd.DataFrame
                  ) -> tuple[dict[str, named.MissingName], dict[tuple[str, str], str]]:
    """The funds / campaigns / appeals the staged gifts not yet in Bloomerang name (from the org YAML) that
    Bloomerang lacks, and the gifts to block for them (none with ``bloomerang.create_missing: true``)."""
    known = {e: [str(r.get("Name") or "") for r in stored_records(ctx.store, "bloomerang", e)]
             for e in named.CHECKED_ENTITIES}
    done = states.dropna(subset=["bloomerang_id"]) if len(states) else states
    linked = set(zip(done["source"], done["source_id"].astype(str), strict=True)) if len(done) else set()
    pending = [((s, str(i)), p) for s, i, p in zip(gifts["source"], gifts["source_id"], gifts["payload"], strict=True)
               if (s, str(i)) not in linked] if len(gifts) else []
    missing = named.missing_names([p for _, p in pending], known, create_missing=ctx.org.bloomerang.create_missing)
    return missing, named.blocked_gifts(pending, missing)


def plan_run(ctx: RunContext, gates: dict[str, EntityGate]) -> pd.DataFrame:
    """Every staged record of the run → create / update / unchanged / blocked / skipped, stored."""
    store, run_id = ctx.store, ctx.run_id
    unlinked = sourced_values(ctx.org, unlinked_people(store, run_id))
    with store.connect() as con:
        # each record is planned against its own pair only (by source and source id): the pairs of the donors
        # and gifts planned here, not every pair the org ever synced (a quiet night plans a few)
        states = {"funds": ledgers.states_frame(con, "funds"),
                  "constituents": ledgers.states_of(con, "constituents", unlinked),
                  "transactions": ledgers.run_states_frame(con, "transactions", run_id)}
        paired = con.execute("SELECT source, source_id FROM sync_state WHERE entity = 'constituents'").df()
    snapshot = ctx.bloomerang_snapshot()
    bloom_funds = stored_records(store, "bloomerang", "funds")
    frames = [entities.plan_funds(staged_frame(store, "funds", run_id), states["funds"], bloom_funds)]
    links = states["constituents"].dropna(subset=["bloomerang_id"])[["source", "source_id", "bloomerang_id"]]
    transactions = staged_frame(store, "transactions", run_id)
    accounts = gift_accounts(transactions, ctx.bloomerang_transactions())  # where their gifts already are
    resolved = entities.resolve_constituents(unlinked, snapshot, links, store=store, run_id=run_id,
                                             accounts=accounts)
    people_plan = entities.plan_constituents(unlinked, resolved, states["constituents"], snapshot,
                                             policies=_policies(ctx.org))
    frames.append(people_plan)
    ctx.missing_names, waiting = missing_named(ctx, transactions, states["transactions"])
    frames.append(entities.plan_transactions(transactions, states["transactions"],
                                             blocked_refs={**_blocked_donor_refs(store, paired),
                                                           **entities.awaiting_review_refs(people_plan)},
                                             bloomerang=ctx.bloomerang_transactions(), blocked=waiting))
    plan = pd.concat([f.reindex(columns=list(PLAN_COLUMNS)) for f in frames], ignore_index=True)
    for entity, gate in gates.items():
        if not gate.passed:
            blocked = plan["entity"] == entity
            plan.loc[blocked & plan["action"].isin(["create", "update"]), "reason"] = gate.blocked_reason
            plan.loc[blocked & plan["action"].isin(["create", "update"]), "action"] = "blocked"
    store_plan(store, run_id, plan)
    return plan


def store_plan(store: StagingStore, run_id: str, plan: pd.DataFrame) -> None:
    """Replace the run's rows of ``push_plan`` with ``plan``."""
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


def stored_plan(store: StagingStore, run_id: str) -> pd.DataFrame:
    """The plan a run stored (what the Dagster load asset applies after the plan asset computed it)."""
    plan = store.read_frame("SELECT * FROM push_plan WHERE run_id = ?", [run_id])
    for column in ("diff", "payload"):
        plan[column] = [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in plan[column]]
    return plan
