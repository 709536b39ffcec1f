"""The writes of one run, entity by entity: what ``runner`` calls in dependency order.

``Load`` owns what the writes of a run share — the ``ref:`` resolver that turns source references
into Bloomerang ids as records are created, one writer per entity, the write journal and the DuckDB
ledger — so that funds, constituents, recurring schedules and transactions each go through the same
crash-safe loop (``loop.apply_plan``). The order itself (funds → constituents → merge → transactions)
is the runner's.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.apply import recurring, tributes
from bloom_pipeline.sync.apply.journal import Journal
from bloom_pipeline.sync.apply.loop import RecordResult, Writer, apply_plan, summarise
from bloom_pipeline.sync.apply.outcomes import StoreLedger, WhenAsked
from bloom_pipeline.sync.apply.pool import PoolSize
from bloom_pipeline.sync.apply.refs import RefResolver
from bloom_pipeline.sync.apply.writers import ConstituentWriter, FundWriter, TransactionWriter
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.extract.records import stored_records
from bloom_pipeline.sync.fields import CANONICAL_FIELDS
from bloom_pipeline.sync.plan import entities
from bloom_pipeline.sync.snapshot import names_by_id
from bloom_pipeline.sync.stage import sourced_values, staged_frame

log = logging.getLogger(__name__)


def writers(ctx: RunContext) -> dict[str, Writer]:
    """One Bloomerang writer per entity, each stamping the org's correlation custom value."""
    bloomerang, fields = ctx.clients.bloomerang, ctx.fields
    return {
        "funds": FundWriter(bloomerang),
        "constituents": ConstituentWriter(bloomerang, dict(fields.constituent)),
        "transactions": TransactionWriter(bloomerang, dict(fields.transaction)),
        "schedules": recurring.ScheduleWriter(bloomerang, fields.transaction.get("wegive")),
    }


@dataclass
class PushOutcome:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: int = 0
    review_items: int = 0
    results: list[RecordResult] = field(default_factory=list)


def _named_creator(ctx: RunContext):
    bloomerang = ctx.clients.bloomerang
    create = {"funds": bloomerang.create_fund, "campaigns": bloomerang.create_campaign,
              "appeals": bloomerang.create_appeal}

    def on_missing(entity: str, name: str) -> int | None:
        if entity not in create:
            return None
        log.info("creating Bloomerang %s %r named in the org YAML", entity[:-1], name)
        return int(create[entity]({"Name": name, "IsActive": True})["Id"])

    return on_missing


def tribute_default_type(org: Any) -> str:
    """The mapping's default ``Tribute.TributeType`` (WeGive documents no tribute type values), else InHonorOf."""
    try:
        rule = org.entity("wegive.transactions").designations.fields.get("Tribute.TributeType")
    except (KeyError, AttributeError):
        rule = None
    default = getattr(rule, "default", None)
    return default if default in tributes.TRIBUTE_TYPES else tributes.DEFAULT_TYPE


def _canonical_by_id(snapshot: pd.DataFrame) -> dict[int, dict[str, Any]]:
    rows = snapshot[["bloomerang_id", *CANONICAL_FIELDS]].astype(object).where(snapshot.notna(), None)
    return {int(r.pop("bloomerang_id")): r for r in rows.to_dict("records")}


class Load:
    """The writes of one run, sharing one resolver, one journal and one DuckDB ledger."""

    def __init__(self, ctx: RunContext, con: duckdb.DuckDBPyConnection) -> None:
        self.ctx, self.con = ctx, con
        self.results: list[RecordResult] = []
        self.writers = writers(ctx)
        # writes in flight at once: up to the org's write_connections, as many as the shared budget can use
        self.pool = PoolSize(ctx.org.bloomerang.write_connections, getattr(ctx.clients.bloomerang, "http", None))
        self.journal = Journal.beside(ctx.store.path)
        self.resolver = RefResolver(on_missing_name=_named_creator(ctx) if ctx.org.bloomerang.create_missing else None)
        for entity in ("funds", "campaigns", "appeals"):
            self.resolver.add_names(entity, names_by_id(stored_records(ctx.store, "bloomerang", entity)))
        self.book = StoreLedger(
            con, ctx.run_id, self.journal, field_ids=dict(ctx.fields.constituent),
            snapshots=WhenAsked(lambda: entities.canonical_snapshots(
                sourced_values(ctx.org, staged_frame(ctx.store, "constituents", ctx.run_id)))),
            bloomerang_current=WhenAsked(lambda: _canonical_by_id(ctx.bloomerang_snapshot())))
        self._link_states()

    def _link_states(self) -> None:
        """Every linked record's Bloomerang id becomes resolvable as ``ref:<source>.<entity>:<id>``."""
        aliases = {"constituents": {"wegive": "donors", "handbid": "contacts"}, "funds": {"wegive": "funds"}}
        for entity, by_source in aliases.items():
            states = ledgers.links_frame(self.con, entity)
            for source, source_id, bloomerang_id in states[["source", "source_id", "bloomerang_id"]].itertuples(
                    index=False):
                if source in by_source:
                    self.resolver.add(source, by_source[source], source_id, int(bloomerang_id))

    def _remember(self, result: RecordResult, written: dict[str, Any]) -> None:
        self.resolver.add(result.source, entities.ref_entity(result.entity, result.source), result.source_id,
                          int(result.bloomerang_id))

    def apply(self, plan: pd.DataFrame, entity: str) -> None:
        """Apply the plan's rows of ``entity`` (funds or constituents), leaders before their followers."""
        rows = entities.leaders_first(plan[plan["entity"] == entity])
        self.results += apply_plan(rows, self.writers[entity], self.resolver, self.book, on_written=self._remember,
                                   pool=self.pool)

    def apply_transactions(self, plan: pd.DataFrame) -> None:
        """The recurring schedules and pledges the planned payments reference, then the payments."""
        rows = plan[plan["entity"] == "transactions"]
        schedules = self._ensure_schedules(rows)
        rows = recurring.hold_payments(rows, schedules)
        self._ensure_tributes(rows)
        self.results += apply_plan(rows, self.writers["transactions"], self.resolver, self.book, pool=self.pool)

    def _ensure_schedules(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Create the schedules the payments need from WeGive's records of them; the schedule plan."""
        known = ledgers.links_frame(self.con, "schedules")
        for source, source_id, bloomerang_id in known[["source", "source_id", "bloomerang_id"]].itertuples(
                index=False):
            entity, _, key = str(source_id).partition(":")
            self.resolver.add(source, entity, key, int(bloomerang_id))
        self._schedules_in_bloomerang()
        raw = {str(r["id"]): r for r in self.ctx.extracted.records.get("wegive.transactions", [])}
        records = {entity: {str(r.get("id")): r for r in self.ctx.extracted.records.get(f"wegive.{entity}", [])}
                   for entity in recurring.SCHEDULE_KEYS.values()}
        plan = recurring.schedule_plan(rows, raw, self.resolver, records)
        if plan.empty:
            return plan
        book = StoreLedger(self.con, self.ctx.run_id, self.journal)
        results = apply_plan(plan, self.writers["schedules"], self.resolver, book, pool=self.pool)
        book.flush()
        recurring.register(self.resolver, plan, results)
        return plan

    def _ensure_tributes(self, rows: pd.DataFrame) -> None:
        """Every tribute the planned gifts name exists in Bloomerang (found by name, else created once) and
        resolves as ``ref:bloomerang.tributes:name=…`` (``apply/tributes.py``)."""
        writing = rows[rows["action"].isin(["create", "update"])]
        payloads = [jsontext.loads(p) if isinstance(p, str) else p for p in writing["payload"]]
        wanted = tributes.wanted_tributes(payloads, tribute_default_type(self.ctx.org))
        if not wanted:
            return
        known = tributes.by_name(stored_records(self.ctx.store, "bloomerang", "tributes"))
        self.resolver.add_names("tributes", tributes.ensure_tributes(self.ctx.clients.bloomerang, wanted, known))

    def _schedules_in_bloomerang(self) -> None:
        """Schedules Bloomerang already holds (their correlation value ``wegive:<entity>:<id>``) resolve
        whatever the local state: a lost data folder never creates a pledge or a recurring schedule twice."""
        held = self.ctx.bloomerang_transactions()
        for value, designation in zip(held["corr_wegive"], held["designation_id"], strict=True):
            source, _, rest = str(value or "").partition(":")
            entity, _, key = rest.partition(":")
            if source == "wegive" and entity in recurring.SCHEDULE_KEYS.values() and key and designation:
                self.resolver.add(source, entity, key, int(designation))

    def flush(self) -> None:
        self.book.flush()

    def close(self) -> PushOutcome:
        self.pool.close()
        self.book.flush()
        if self.pool.peak:
            log.info("apply: at most %d Bloomerang writes in flight at once (write_connections %d)", self.pool.peak,
                     self.pool.cap)
        self.journal.close()
        return PushOutcome(counts=summarise(self.results), results=self.results)


def log_untouched(con: duckdb.DuckDBPyConnection, run_id: str, people: pd.DataFrame) -> None:
    """Every staged donor of the run gets its sync_log row: linked ones the merge found unchanged too.

    A pull-only run plans creates and updates but may not push them: those donors are logged as skipped
    with that reason (a later push or both run applies them), never as unchanged.

    One ``INSERT ... SELECT`` (a row per staged donor not logged yet in the run, in the frame's order): built in
    Python, the rows of 100,000 untouched donors cost 2 s of a quiet night.
    """
    if people.empty:
        return
    found = con.execute("SELECT direction FROM sync_runs WHERE run_id = ?", [run_id]).fetchall()  # result finished
    pull_only = bool(found) and found[0][0] == "pull"
    keys = pd.DataFrame({"source": people["source"].astype(str).to_numpy(),
                         "source_id": people["source_id"].astype(str).to_numpy(),
                         "position": range(len(people))})
    # a pull-only run's planned creates and updates (the last row of a donor, as the plan lists them)
    pending = ("SELECT source, CAST(source_id AS VARCHAR) AS source_id, arg_max(action, rowid) AS action "
               "FROM push_plan WHERE run_id = ? AND entity = 'constituents' AND action IN ('create', 'update') "
               "GROUP BY ALL") if pull_only else \
        "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS source_id, NULL::VARCHAR AS action WHERE false"
    view = f"untouched_{uuid.uuid4().hex}"
    con.register(view, keys)
    try:
        with transaction(con):
            con.execute(
                "INSERT INTO sync_log (run_id, entity, source, source_id, bloomerang_id, direction, action, "
                "field_diff, error, logged_at) "
                "SELECT ?, 'constituents', k.source, k.source_id, s.bloomerang_id, 'push', "
                "CASE WHEN p.action IS NOT NULL THEN 'skipped' WHEN s.bloomerang_id IS NOT NULL THEN 'unchanged' "
                "ELSE 'skipped' END, NULL, "
                "CASE WHEN p.action IS NOT NULL THEN 'pull-only run: the planned ' || p.action || "
                "' is left for a push run' WHEN s.bloomerang_id IS NOT NULL THEN NULL "
                "ELSE 'not linked and not planned' END, ? "
                f"FROM {view} k "
                "LEFT JOIN (SELECT source, source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                "AND bloomerang_id IS NOT NULL) s ON s.source = k.source AND s.source_id = k.source_id "
                f"LEFT JOIN ({pending}) p ON p.source = k.source AND p.source_id = k.source_id "
                "WHERE NOT EXISTS (SELECT 1 FROM sync_log l WHERE l.run_id = ? AND l.entity = 'constituents' "
                "AND l.source = k.source AND CAST(l.source_id AS VARCHAR) = k.source_id) "
                "ORDER BY k.position",
                [run_id, ledgers.now(), *([run_id] if pull_only else []), run_id])
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(view)
